"""The CLI: every command has --help; user errors exit 2 with one clear line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from landfall.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command", ["train", "pretrain", "evaluate", "predict", "ensemble", "demo", "config"]
)
def test_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_config_lists_fields():
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0 and "train.lr" in result.output


def test_bad_data_exits_2_with_a_message(tmp_path):
    result = runner.invoke(app, ["train", "--set", f"data.train={tmp_path}/nope.jsonl",
                                 "--output", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output and "does not exist" in result.output


def test_single_class_training_set_is_refused(tmp_path):
    f = tmp_path / "one.jsonl"
    f.write_text('{"text": "good", "label": "pos"}\n{"text": "fine", "label": "pos"}\n')
    result = runner.invoke(app, ["train", "--set", f"data.train={f}", "--output",
                                 str(tmp_path / "run")])
    assert result.exit_code == 2 and "single-class" in result.output
