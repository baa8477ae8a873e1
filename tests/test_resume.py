"""Kill training with SIGKILL, resume, and end with the same weights as an unbroken run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import tomli_w
import torch
from safetensors.torch import load_file

from conftest import tiny_config


def _train(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANDFALL_PROGRESS": "0", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "landfall", "train", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _whole_and_killed(tiny_model, imdb_small, tmp_path):
    """An unbroken run and the same run SIGKILLed after step 11 (mid second epoch: 72
    training docs / batch 8 = 9 steps per epoch, 2 epochs, checkpoints every 3 steps)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(tiny_config(tiny_model, imdb_small,
                                             report={"baseline": False, "plots": False})))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert _train(["--config", str(cfg), "--output", str(whole)]).returncode == 0
    killed = _train(["--config", str(cfg), "--output", str(broken)],
                    {"LANDFALL_KILL_AT_STEP": "11"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    return whole, broken


def test_sigkill_then_resume_matches_uninterrupted_run(tiny_model, imdb_small, tmp_path):
    whole, broken = _whole_and_killed(tiny_model, imdb_small, tmp_path)
    # the last checkpoint is step 9
    assert (broken / "checkpoints" / "step-0000009").is_dir()
    changed = _train(["--resume", str(broken), "--set", "train.lr=0.5"])
    assert changed.returncode == 2 and "train.lr" in changed.stderr
    resumed = _train(["--resume", str(broken), "--set", "train.threads=1"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a = load_file(str(whole / "model" / "model.safetensors"))
    b = load_file(str(broken / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    def logged(run):  # everything but wall-clock speed
        lines = (run / "metrics.jsonl").read_text().splitlines()
        rows = map(json.loads, lines)
        return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]

    assert logged(whole) == logged(broken)
    lines = (broken / "metrics.jsonl").read_text().splitlines()
    steps = [r["step"] for r in map(json.loads, lines)]
    assert steps == sorted(steps)  # nothing logged twice after the resume
    again = _train(["--resume", str(broken)])
    assert again.returncode == 2 and "already finished" in again.stderr


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tiny_model, imdb_small, tmp_path):
    whole, broken = _whole_and_killed(tiny_model, imdb_small, tmp_path)
    ckpts = sorted(p.name for p in (broken / "checkpoints").glob("step-*"))
    assert ckpts == ["step-0000006", "step-0000009"]  # the previous one is kept
    newest = broken / "checkpoints" / "step-0000009" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a full disk
    resumed = _train(["--resume", str(broken)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "step-0000009" in resumed.stderr and "falling back" in resumed.stderr
    a = load_file(str(whole / "model" / "model.safetensors"))
    b = load_file(str(broken / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigkill_at_random_moments_then_resume_matches(tiny_model, imdb_small, tmp_path):
    """Killed at random wall-clock moments (mid-step, mid-checkpoint, mid-evaluation, mid-
    report), resumed until done: the same weights as an unbroken run, for several seeds."""
    import random
    import time

    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(tiny_config(tiny_model, imdb_small,
                                             report={"baseline": False, "plots": False})))
    whole = tmp_path / "whole"
    t0 = time.monotonic()
    assert _train(["--config", str(cfg), "--output", str(whole)]).returncode == 0
    span = time.monotonic() - t0
    reference = load_file(str(whole / "model" / "model.safetensors"))
    env = {**os.environ, "LANDFALL_PROGRESS": "0"}
    tried = matched = 0
    for seed in range(3):
        rng = random.Random(seed)
        out = tmp_path / f"broken{seed}"
        args = ["--config", str(cfg), "--output", str(out)]
        for _ in range(2):  # up to two kills, then let it finish
            proc = subprocess.Popen([sys.executable, "-m", "landfall", "train", *args], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.3, 0.8 * span))
            if proc.poll() is None:
                proc.kill()
                tried += 1
            proc.wait()
            if (out / "eval.json").exists():
                break
            # a checkpoint to resume from, or (killed before the first one) a fresh start
            if (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("step-*")):
                args = ["--resume", str(out)]
            else:
                import shutil

                shutil.rmtree(out, ignore_errors=True)
                args = ["--config", str(cfg), "--output", str(out)]
        if not (out / "eval.json").exists():
            done = _train(args)
            assert done.returncode == 0, done.stderr[-2000:]
        got = load_file(str(out / "model" / "model.safetensors"))
        assert all(torch.equal(reference[k], got[k]) for k in reference), seed
        matched += 1
    print(f"fault injection: {tried} SIGKILLs over 3 seeds, {matched}/3 resumed to the "
          "unbroken run's weights")
    assert tried >= 3 and matched == 3, (tried, matched)  # at least one kill per seed


def test_a_full_disk_keeps_the_previous_artifact_and_says_so(tiny_model, imdb_small, tmp_path,
                                                             monkeypatch):
    import errno

    from typer.testing import CliRunner

    import landfall
    from landfall import runs
    from landfall.cli import app
    from landfall.config import build_config

    run = tmp_path / "run"
    landfall.train(build_config(tiny_config(tiny_model, imdb_small, train={"max_steps": 2},
                                            report={"baseline": False, "plots": False})), run)
    out = tmp_path / "ev"
    landfall.evaluate(run, imdb_small, out)
    before = (out / "eval.json").read_text()

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "_fsync_tree", full)
    result = CliRunner().invoke(app, ["evaluate", str(run), "--data", str(imdb_small),
                                      "--output", str(out)])
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert (out / "eval.json").read_text() == before  # the previous artifact is intact
    assert not [p for p in out.iterdir() if p.name.startswith(".eval.json")]  # no debris
