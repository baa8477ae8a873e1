"""Ensembles: two tiny runs (different seeds) averaged into one self-contained directory."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import landfall
from conftest import tiny_config
from landfall.cli import app
from landfall.config import build_config
from landfall.errors import LandfallError
from landfall.inference.ensemble import EnsemblePredictor
from landfall.inference.loading import load_run, run_config

WEIGHTS = [1.0, 3.0]


def _train(tiny_model, data, out, seed: int, **data_fields):
    cfg = tiny_config(tiny_model, data, train={"epochs": 1.0, "eval_every": 0, "seed": seed},
                      report={"baseline": False, "plots": False})
    cfg["data"].update(data_fields)
    landfall.train(build_config(cfg), out)
    return out


@pytest.fixture(scope="module")
def members(tiny_model, imdb_small, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [_train(tiny_model, imdb_small, root / f"seed{s}", s) for s in (1, 2)]


@pytest.fixture(scope="module")
def ens(members, tmp_path_factory):
    """An ensemble built from copies of the runs, which are then deleted."""
    root = tmp_path_factory.mktemp("ens")
    copies = [shutil.copytree(m, root / m.name) for m in members]
    out = root / "ensemble"
    landfall.ensemble(copies, out, WEIGHTS)
    for c in copies:
        shutil.rmtree(c)
    return out


@pytest.fixture(scope="module")
def texts(imdb_small):
    return [json.loads(line)["text"] for line in imdb_small.read_text().splitlines()[:12]]


def test_directory_is_self_contained(ens, members):
    manifest = json.loads((ens / "ensemble.json").read_text())
    assert manifest["labels"] == ["neg", "pos"]
    assert manifest["weights"] == [0.25, 0.75]
    assert [m["path"] for m in manifest["members"]] == ["members/0", "members/1"]
    for i in (0, 1):
        assert (ens / "members" / str(i) / "model" / "model.safetensors").exists()
        assert (ens / "members" / str(i) / "landfall.toml").exists()
    assert run_config(ens).train.seed == 1  # member 0's config


def test_probabilities_are_the_weighted_mean_of_the_members(ens, members, texts):
    predictor = load_run(ens)
    assert isinstance(predictor, EnsemblePredictor) and predictor.labels == ["neg", "pos"]
    pred = predictor.predict(texts)
    a, b = (load_run(m).predict(texts) for m in members)
    assert not np.allclose(a.probs, b.probs)  # different seeds, different models
    np.testing.assert_allclose(pred.probs, 0.25 * a.probs + 0.75 * b.probs, atol=1e-6)
    np.testing.assert_array_equal(pred.windows, np.maximum(a.windows, b.windows))
    np.testing.assert_allclose(np.exp(pred.logits), pred.probs, atol=1e-9)


def test_predict_and_evaluate_take_an_ensemble(ens, imdb_small, tmp_path):
    out = tmp_path / "pred.jsonl"
    landfall.predict(ens, imdb_small, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 97))
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-4 for r in rows)
    assert {r["label"] for r in rows} <= {"neg", "pos"}
    res = landfall.evaluate(ens, imdb_small, tmp_path / "ev")
    assert res["metrics"]["n"] == 96 and (tmp_path / "ev" / "eval.json").exists()


def test_members_with_other_labels_are_refused(members, tmp_path):
    odd = shutil.copytree(members[1], tmp_path / "odd")
    config = odd / "model" / "config.json"
    data = json.loads(config.read_text())
    data["id2label"] = {"0": "pos", "1": "neg"}  # same labels, other order
    config.write_text(json.dumps(data))
    with pytest.raises(LandfallError, match=r"odd: its labels .* differ from those of"):
        landfall.ensemble([members[0], odd], tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_cli(members, tmp_path):
    runner = CliRunner()
    a, b = map(str, members)
    ok = runner.invoke(app, ["ensemble", a, b, "--output", str(tmp_path / "e"),
                             "--weights", "1,1"])
    assert ok.exit_code == 0, ok.output
    assert "ensemble of 2 runs" in ok.output
    for args, message in (
        ([a, b, "--output", str(tmp_path / "e")], "already exists"),
        ([a, b, "--output", str(tmp_path / "f"), "--weights", "1,x"], "--weights"),
        ([a, b, "--output", str(tmp_path / "f"), "--weights", "1,2,3"], "3 weights for 2"),
        ([a, b, "--output", str(tmp_path / "f"), "--weights", "1,-1"], ">= 0"),
        ([a, "--output", str(tmp_path / "f")], "at least two"),
        ([a, str(tmp_path / "nope"), "--output", str(tmp_path / "f")], "does not exist"),
    ):
        res = runner.invoke(app, ["ensemble", *args])
        said = " ".join(res.output.split())  # rich wraps long lines
        assert res.exit_code == 2 and message in said, (args, res.output)


def test_members_validated_on_other_rows_are_warned_of(members, tiny_model, imdb_small,
                                                       tmp_path):
    """Seeds 1 and 2 carved different validation rows; seed 3 over split seed 1 did not."""
    pinned = _train(tiny_model, imdb_small, tmp_path / "seed3", 3, split_seed=1)
    assert run_config(pinned).train.seed == 3
    out = landfall.ensemble([members[0], pinned], tmp_path / "same")
    assert out["warnings"] == []
    assert not np.allclose(load_run(pinned).predict(["a fine film"]).probs,
                           load_run(members[0]).predict(["a fine film"]).probs)
    res = CliRunner().invoke(app, ["ensemble", str(members[0]), str(members[1]),
                                   "--output", str(tmp_path / "other")])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "seed2: validated on another split than" in said, res.output


@pytest.mark.parametrize("bad", ["/etc", "../elsewhere", ".", "members/../.."])
def test_member_paths_must_stay_inside_the_ensemble(tmp_path, bad):
    from landfall.inference.ensemble import read_manifest

    (tmp_path / "ensemble.json").write_text(json.dumps(
        {"labels": ["a", "b"], "members": [{"path": bad}]}))
    with pytest.raises(LandfallError, match="must be a folder inside"):
        read_manifest(tmp_path)


def test_an_ensemble_is_a_guard(ens, texts):
    """``serve --guard`` takes an ensemble: its verdicts score the averaged probabilities."""
    from landfall.safety.guard import load_guard

    guard = load_guard(ens, labels="neg", threshold=0.5)
    probs = load_run(ens).predict(texts).probs[:, 0]
    verdicts = guard.check(texts)
    np.testing.assert_allclose([v.score for v in verdicts], probs, atol=1e-6)
    assert [v.harmful for v in verdicts] == list(probs >= 0.5)
