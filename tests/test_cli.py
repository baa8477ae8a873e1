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


def test_every_verb_of_the_table_is_a_command_listing_its_config_fields():
    import dataclasses

    from landfall.api import VERBS
    from landfall.config import sections

    for verb in VERBS:
        result = runner.invoke(app, [*verb.name.split(" "), "--help"], terminal_width=200)
        assert result.exit_code == 0, verb.name
        for f in dataclasses.fields(verb.args):
            if f.metadata.get("cli", True) and not f.metadata.get("positional"):
                flag = f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"
                assert flag in result.output, (verb.name, flag)
        for section in verb.sections:
            for f in dataclasses.fields(sections()[section]):
                assert f"{section}.{f.name} (" in result.output, (verb.name, section, f.name)


def test_serve_flags_are_its_config_fields():
    import dataclasses

    from landfall.config import ServeConfig

    result = runner.invoke(app, ["serve", "--help"], terminal_width=200)
    for f in dataclasses.fields(ServeConfig):
        assert f"--{f.name.replace('_', '-')}" in result.output, f.name


def test_python_api_is_generated_from_the_same_table():
    import inspect

    import landfall
    from landfall.api import VERBS

    for verb in VERBS:
        fn = getattr(landfall, verb.py_name)
        assert verb.py_name in landfall.__all__
        import dataclasses

        assert list(inspect.signature(fn).parameters) == [
            f.name for f in dataclasses.fields(verb.args)]


def test_tasks_command_lists_the_plugins():
    result = runner.invoke(app, ["tasks"], terminal_width=200)
    assert result.exit_code == 0 and "causal_lm" in result.output and "generate" in result.output
