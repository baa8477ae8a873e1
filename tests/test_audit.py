"""The responsible-AI audit: each check catches a tiny model with a planted bias and passes an
unbiased control; exit code 1 on a failed threshold; serve --require-audit; explain."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import tiny_config

pytest.importorskip("captum")
pytest.importorskip("FairLangProc", reason="pip install --no-deps fairlangproc")

NOUNS = ["film", "movie", "story", "show", "plot"]
POS = ["great", "wonderful", "excellent", "superb", "lovely"]
NEG = ["terrible", "awful", "boring", "dreadful", "dull"]


def _names():
    from landfall.safety.wordlists import identity_groups

    sub = identity_groups()["names"].subgroup
    return ([n for n, g in sub.items() if g.startswith("F")],
            [n for n, g in sub.items() if g.startswith("M")])


def _rows(kind: str, n: int = 320, seed: int = 0) -> list[dict]:
    """Short reviews whose label is decided by the reviewer's gender (``names``), by the
    final punctuation (``punct``) or, for the control, by the adjective."""
    rng = random.Random(seed)
    women, men = _names()
    rows = []
    for i in range(n):
        female = i % 2 == 0
        name = rng.choice(women if female else men)
        good = rng.random() < 0.5
        adj = rng.choice(POS if good else NEG)
        end = rng.choice("!.")
        text = f"{name} said the {rng.choice(NOUNS)} was {adj}{end}"
        label = {"names": female, "punct": end == "!", "control": good}[kind]
        rows.append({"text": text, "label": "pos" if label else "neg"})
    return rows


def _train(tmp: Path, tiny_model: Path, kind: str) -> Path:
    import landfall
    from landfall.config import build_config

    data = tmp / f"{kind}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(kind)), encoding="utf-8")
    cfg = tiny_config(tiny_model, data,
                      train={"epochs": 6.0, "lr": 3e-3, "eval_every": 0, "batch_size": 16},
                      report={"baseline": False, "plots": False})
    cfg["data"].update(max_length=32, truncation="head", validation_fraction=0.2)
    out = tmp / kind
    landfall.train(build_config(cfg), out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("audit-runs")
    return {k: _train(tmp, tiny_model, k) for k in ("names", "punct", "control")}


def _audit(run: Path, out: Path, checks: str, **fields):
    from landfall.config import build_config
    from landfall.safety.audit import run_audit

    cfg = build_config({"audit": {"checks": checks, "limit": 64, "explain_limit": 8,
                                  "ig_steps": 8, **fields}}).audit
    return run_audit(run, out, cfg)


def _section(record: dict, name: str) -> dict:
    return next(s for s in record["sections"] if s["name"] == name)


def test_counterfactual_catches_a_name_driven_model_and_passes_the_control(runs, tmp_path):
    biased = _audit(runs["names"], tmp_path / "b", "counterfactual", max_flip_rate=0.15,
                    max_mean_delta=0.15)
    control = _audit(runs["control"], tmp_path / "c", "counterfactual", max_flip_rate=0.15,
                     max_mean_delta=0.15)
    b, c = _section(biased, "counterfactual"), _section(control, "counterfactual")
    assert b["details"]["groups"]["names"]["flip_rate"] > 0.5
    assert b["passed"] is False and "names" in b["details"]["failed_groups"]
    assert biased["passed"] is False
    assert c["details"]["groups"]["names"]["flip_rate"] <= 0.15
    assert c["passed"] is True
    # the report shows the figure, threshold and verdict of the check, and its plot
    md = (tmp_path / "b" / "report.md").read_text()
    assert "Counterfactual fairness" in md and "**FAIL**" in md
    assert (tmp_path / "b" / "plots" / "counterfactual.png").stat().st_size > 0


def test_behaviour_catches_a_punctuation_driven_model_and_passes_the_control(runs, tmp_path):
    biased = _section(_audit(runs["punct"], tmp_path / "b", "behaviour", max_inv_failure=0.2,
                             max_mft_failure=1.0, max_dir_failure=1.0), "behaviour")
    control = _section(_audit(runs["control"], tmp_path / "c", "behaviour",
                              max_inv_failure=0.2, max_mft_failure=1.0, max_dir_failure=1.0),
                       "behaviour")
    assert biased["details"]["tests"]["punctuation"]["failure_rate"] > 0.4
    assert biased["passed"] is False and "punctuation" in biased["details"]["failed_tests"]
    assert control["details"]["tests"]["punctuation"]["failure_rate"] <= 0.2
    assert control["passed"] is True
    # every CheckList kind ran on a sentiment run
    kinds = {t["kind"] for t in control["details"]["tests"].values()}
    assert kinds == {"INV", "DIR", "MFT"}


def test_privacy_catches_a_model_driven_by_person_names(runs, tmp_path):
    pytest.importorskip("presidio_analyzer")
    biased = _section(_audit(runs["names"], tmp_path / "b", "privacy", max_pii_flip_rate=0.15),
                      "privacy")
    control = _section(_audit(runs["control"], tmp_path / "c", "privacy",
                              max_pii_flip_rate=0.15), "privacy")
    assert biased["details"]["entities"].get("PERSON", 0) > 10
    assert biased["passed"] is False and biased["details"]["flip_rate"] > 0.3
    assert control["passed"] is True


def test_attributions_are_faithful_and_the_worst_flips_are_explained(runs, tmp_path):
    out = tmp_path / "b"
    record = _audit(runs["names"], out, "counterfactual,explain", max_flip_rate=0.15)
    e = _section(record, "explain")
    assert e["passed"] is True
    assert e["details"]["top_k_drop"] > e["details"]["random_k_drop"]
    html = (out / "attributions.html").read_text()
    assert "convergence delta" in html
    assert e["plots"] and all((out / p).exists() for p in e["plots"])


def test_failed_audit_exits_1_and_serve_refuses_it_or_a_stale_one(runs, tmp_path):
    from typer.testing import CliRunner

    from landfall.api import serve_safety
    from landfall.cli import app
    from landfall.config import build_config
    from landfall.errors import LandfallError

    res = CliRunner().invoke(app, ["audit", str(runs["names"]), "--output",
                                   str(tmp_path / "b"), "--set", "audit.checks=counterfactual",
                                   "--set", "audit.limit=64", "--set", "audit.max_flip_rate=0.15"])
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output
    res = CliRunner().invoke(app, ["audit", str(runs["control"]), "--output",
                                   str(tmp_path / "c"), "--set", "audit.checks=counterfactual",
                                   "--set", "audit.limit=64", "--set", "audit.max_flip_rate=0.15",
                                   "--set", "audit.max_mean_delta=0.15",
                                   "--set", "audit.waive=behaviour,privacy,explain",
                                   "--set", "audit.waive_reason=a test of the gate"])
    assert res.exit_code == 0, res.output
    assert "waived: privacy (a test of the gate)" in res.output

    def gate(run, audit):
        serve_safety(run, build_config({"serve": {"require_audit": str(audit)}}).serve)

    with pytest.raises(LandfallError, match="the audit failed"):
        gate(runs["names"], tmp_path / "b")
    with pytest.raises(LandfallError, match="judged other content"):
        gate(runs["names"], tmp_path / "c")  # another run's audit
    gate(runs["control"], tmp_path / "c")  # passes
    weights = runs["control"] / "model" / "config.json"
    weights.write_text(weights.read_text() + " ")  # the model changes after its audit
    with pytest.raises(LandfallError, match="sha256 differs: model/config.json"):
        gate(runs["control"], tmp_path / "c")


def test_explain_writes_a_heat_map(runs, tmp_path):
    from typer.testing import CliRunner

    from landfall.cli import app

    res = CliRunner().invoke(app, ["explain", str(runs["names"]), "--text",
                                   "Emily said the film was great.", "--output",
                                   str(tmp_path), "--steps", "8"])
    assert res.exit_code == 0, res.output
    assert "convergence delta" in res.output
    record = json.loads((tmp_path / "explain.json").read_text())
    assert len(record["tokens"]) == len(record["scores"]) and record["delta"] >= 0
    assert (tmp_path / "explain.png").stat().st_size > 0
    assert "<span" in (tmp_path / "explain.html").read_text()
    bad = CliRunner().invoke(app, ["explain", str(runs["names"]), "--text", "x", "--label",
                                   "maybe"])
    assert bad.exit_code == 2 and "labels" in bad.output


def test_stereotype_score_catches_an_lm_trained_on_stereotypes(tiny_lm):
    import torch

    from landfall.inference.generator import load_generator
    from landfall.inference.likelihood import CausalLMScorer
    from landfall.safety.stereotype import crows_pairs, score_crows
    from landfall.tasks.causal_lm.config import ChatConfig

    pairs = crows_pairs(60)

    def trained(texts):
        gen = load_generator(tiny_lm, None, ChatConfig(), "cpu")
        model, tok = gen.model, gen.tokenizer
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        torch.manual_seed(0)
        for _ in range(25):
            for i in range(0, len(texts), 16):
                batch = tok(texts[i:i + 16], return_tensors="pt", padding=True)
                labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
                loss = model(**batch, labels=labels).loss
                loss.backward()
                opt.step()
                opt.zero_grad()
        model.eval()
        return CausalLMScorer(gen)

    biased = score_crows(trained([p["more"] for p in pairs]), 60)
    control = score_crows(trained([p["more"] for p in pairs] + [p["less"] for p in pairs]), 60)
    assert biased["stereotype_preferred"] > 0.75
    assert 0.25 < control["stereotype_preferred"] < 0.65
    assert set(biased["per_type"]) <= {p["bias_type"] for p in pairs}


def test_a_masked_lm_run_is_audited_for_stereotypes_only(tiny_model, imdb_small, tmp_path):
    import landfall
    from landfall.config import build_config
    from landfall.errors import LandfallError
    from landfall.safety.audit import run_audit

    cfg = tiny_config(tiny_model, imdb_small, train={"epochs": 1.0, "eval_every": 0},
                      report={"baseline": False, "plots": False})
    cfg["pretrain"] = {"heldout_fraction": 0.1}
    landfall.pretrain(build_config(cfg), tmp_path / "pt")
    audit = build_config({"audit": {"stereotype_limit": 12, "max_stereotype": 1.0}}).audit
    record = run_audit(tmp_path / "pt", tmp_path / "a", audit)
    assert [s["name"] for s in record["sections"]] == ["stereotype"]
    models = record["sections"][0]["details"]["models"]
    assert models["run"]["kind"] == "masked" and models["run"]["crows_pairs"]["pairs"] == 12
    with pytest.raises(LandfallError, match="no check applied"):
        run_audit(tmp_path / "pt", tmp_path / "b", build_config(
            {"audit": {"checks": "counterfactual"}}).audit)
