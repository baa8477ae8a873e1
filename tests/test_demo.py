"""The demo: a held-out file that nothing is selected on, and next steps that work as printed."""

from __future__ import annotations

import json
import math
import shlex
from collections import Counter

from typer.testing import CliRunner

from conftest import need_data
from landfall.api import demo_config, demo_data
from landfall.cli import app


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_holds_out_a_stratified_split_scored_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDFALL_DATA", str(need_data()))
    train, heldout = demo_data(tmp_path / "run")
    tr, ho = _rows(train), _rows(heldout)
    assert len(tr) + len(ho) == 10003 and len(ho) == math.ceil(0.1 * 10003)
    # stratified: every intent in both parts, in about the same share
    ct, ch = Counter(r["category"] for r in tr), Counter(r["category"] for r in ho)
    assert set(ct) == set(ch) and len(ct) == 77
    assert all(abs(ch[c] / len(ho) - ct[c] / len(tr)) < 0.002 for c in ct)
    cfg = demo_config(tmp_path / "run")
    assert cfg.data.train == str(train) and cfg.data.validation == str(heldout)
    # one evaluation, after the last step: the held-out file picks no checkpoint
    steps = math.ceil(len(tr) / cfg.train.batch_size) * cfg.train.epochs
    assert cfg.train.eval_every > steps and cfg.train.patience == 0


def test_demo_prints_next_steps_that_reproduce_its_figure(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("LANDFALL_DATA", str(need_data()))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--output", "runs/demo", "--set",
                                 f"model.name={tiny_model}", "--set", "data.limit=400",
                                 "--set", "train.epochs=1", "--set", "train.batch_size=64"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "baseline" in out and "Try next on this run" in out
    commands = [line.strip() for line in out.splitlines() if line.startswith("  landfall ")]
    verbs = [c.split()[1] for c in commands]
    assert verbs == ["evaluate", "predict", "serve", "compress"]
    assert "curl -s localhost:8000/v1/classify" in out
    # the printed evaluate command scores the held-out file: the demo's own figure again
    shown = json.loads((tmp_path / "runs/demo/eval.json").read_text())["validation"]
    again = runner.invoke(app, shlex.split(commands[0])[1:] + ["--output", "ev"])
    assert again.exit_code == 0, again.output
    metrics = json.loads((tmp_path / "ev" / "eval.json").read_text())["metrics"]
    assert metrics["n"] == shown["n"] == 1001
    assert abs(metrics["accuracy"] - shown["accuracy"]) < 1e-9
    # a second demo into the same directory is refused before anything is rewritten
    before = (tmp_path / "runs/demo/data/heldout.jsonl").stat().st_mtime_ns
    twice = runner.invoke(app, ["demo", "--output", "runs/demo"])
    assert twice.exit_code == 2 and "already holds a run" in twice.output
    assert (tmp_path / "runs/demo/data/heldout.jsonl").stat().st_mtime_ns == before
