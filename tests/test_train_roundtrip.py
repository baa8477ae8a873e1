"""Tiny model: train -> save -> reload with plain transformers -> predict / evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import landfall
from conftest import tiny_config
from landfall.config import build_config
from landfall.errors import LandfallError
from landfall.inference.loading import load_run
from landfall.inference.predictor import Predictor


@pytest.fixture(scope="module")
def run_dir(tiny_model, imdb_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    landfall.train(build_config(tiny_config(tiny_model, imdb_small)), out)
    return out


def test_run_directory_holds_the_product(run_dir):
    for name in ("landfall.toml", "metrics.jsonl", "eval.json", "report.md",
                 "plots/training_curves.png", "plots/confusion.png", "plots/reliability.png",
                 "model/model.safetensors", "model/config.json", "model/tokenizer.json"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "checkpoints").exists()
    assert not list(run_dir.rglob("*.bin")) and not list(run_dir.rglob("*.pt"))
    ev = json.loads((run_dir / "eval.json").read_text())
    assert ev["validation"]["n"] == 24 and ev["baseline"]["name"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in records) and any("eval_accuracy" in r for r in records)
    report = (run_dir / "report.md").read_text()
    assert "baseline" in report and "plots/confusion.png" in report


def test_plain_transformers_loads_the_model_and_agrees_with_predictor(run_dir):
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    assert model.config.id2label == {0: "neg", 1: "pos"}
    text = "A wonderful, moving film with a great cast."
    with torch.no_grad():
        probs = model(**tok(text, return_tensors="pt")).logits.softmax(-1).numpy()[0]
    ours = load_run(run_dir).predict([text]).probs[0]
    np.testing.assert_allclose(ours, probs, atol=1e-5)


def test_predict_keeps_input_order_and_evaluate_needs_no_options(run_dir, imdb_small, tmp_path):
    out = tmp_path / "pred.jsonl"
    landfall.predict(run_dir, imdb_small, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 97))
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-4 for r in rows)
    assert {r["label"] for r in rows} <= {"neg", "pos"}
    res = landfall.evaluate(run_dir, imdb_small, tmp_path / "ev")
    assert res["metrics"]["n"] == 96 and (tmp_path / "ev" / "plots" / "confusion.png").exists()


def test_interrupted_predict_resumes_after_the_last_complete_row(run_dir, imdb_small, tmp_path,
                                                                 monkeypatch):
    from landfall.inference import predict as predict_mod

    full = tmp_path / "full.jsonl"
    landfall.predict(run_dir, imdb_small, full)
    monkeypatch.setattr(predict_mod, "CHUNK", 40)
    calls = {"n": 0}
    real = Predictor.predict

    def dies_on_second_chunk(self, texts, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the process were stopped here
        return real(self, texts, *a, **kw)

    out = tmp_path / "pred.jsonl"
    monkeypatch.setattr(Predictor, "predict", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        landfall.predict(run_dir, imdb_small, out)
    assert not out.exists() and len((tmp_path / "pred.jsonl.partial").read_text()
                                     .splitlines()) == 40
    with open(tmp_path / "pred.jsonl.partial", "a") as fh:
        fh.write('{"line": 41, "lab')  # a torn row is cut off, not kept
    res = landfall.predict(run_dir, imdb_small, out)
    assert res["resumed_from"] == 40 and res["n"] == 96
    ours = [json.loads(x) for x in out.read_text().splitlines()]
    ref = [json.loads(x) for x in full.read_text().splitlines()]
    assert [r["line"] for r in ours] == [r["line"] for r in ref]
    assert [r["label"] for r in ours] == [r["label"] for r in ref]
    assert not (tmp_path / "pred.jsonl.partial").exists()


def test_long_text_strategy_can_change_at_inference_only(run_dir, imdb_small, tmp_path):
    out = tmp_path / "sliding.jsonl"
    landfall.predict(run_dir, imdb_small, out, overrides=["data.truncation=sliding",
                                                          "data.stride=16"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert max(r["windows"] for r in rows) > 1
    res = landfall.evaluate(run_dir, imdb_small, tmp_path / "ev",
                            overrides=["data.truncation=tail"])
    assert res["strategy"] == ["data.truncation=tail"] and res["metrics"]["n"] == 96
    with pytest.raises(LandfallError, match="only the long-text strategy"):
        landfall.evaluate(run_dir, imdb_small, overrides=["train.lr=1"])


def test_sliding_prediction_is_the_mean_of_its_windows(run_dir):
    from dataclasses import replace

    pred = load_run(run_dir)
    pred.spec = replace(pred.spec, truncation="sliding", stride=8, max_windows=0)
    text = "great " * 150 + "awful " * 150
    doc = pred.tokenizer(text, add_special_tokens=False)["input_ids"]
    out = pred.predict_tokens([doc])
    assert out.windows[0] > 4
    from landfall.data.windows import split_windows

    windows = [pred.add_special(w) for w in split_windows(doc, pred.spec)]
    mean = pred.window_logits(windows).mean(axis=0)
    np.testing.assert_allclose(out.probs[0], np.exp(mean) / np.exp(mean).sum(), atol=1e-5)


def test_unknown_label_at_evaluation_is_a_clear_error(run_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "pos"}\n{"text": "meh", "label": "neutral"}\n')
    with pytest.raises(LandfallError, match=r"bad.jsonl:2.*label.*neutral"):
        landfall.evaluate(run_dir, bad, tmp_path / "ev")


def test_refuses_to_overwrite_a_run(run_dir, tiny_model, imdb_small):
    with pytest.raises(LandfallError, match="already holds a run"):
        landfall.train(build_config(tiny_config(tiny_model, imdb_small)), run_dir)


def test_input_gradients_match_a_finite_difference(run_dir):
    from landfall.inference.gradients import input_gradients

    pred = load_run(run_dir)
    g = input_gradients(pred, "A wonderful, moving film.")
    assert g.gradients.shape == g.embeddings.shape and len(g.tokens) == g.embeddings.shape[0]
    assert g.tokens[0] == "[CLS]" and g.saliency.shape == (len(g.tokens),)
    # moving one token's embedding along its gradient raises the target logit
    model = pred.model
    emb = torch.tensor(g.embeddings)[None] + 1e-2 * torch.tensor(g.gradients)[None]
    with torch.no_grad():
        up = model(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2],
                                                                dtype=torch.long)).logits[0]
    assert up[g.target] > g.logits[g.target]


def test_a_partial_output_resumes_only_for_the_same_model_field_and_input(run_dir, tmp_path):
    import os

    from landfall.inference import resume

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"text": "a"}\n{"text": "b"}\n')

    def fp(field="text"):
        return resume.fingerprint(run_dir, src, field=field, overrides=[])

    assert resume.start(src, out, fp) == 0
    resume.paths(out)[0].write_text('{"line": 1}\n')
    assert resume.start(src, out, fp) == 1  # same run, input and field: continue
    resume.paths(out)[0].write_text('{"line": 1}\n')
    assert resume.start(src, out, lambda: fp("other")) == 0  # another field: start over
    resume.paths(out)[0].write_text('{"line": 1}\n')
    resume.start(src, out, fp)
    resume.paths(out)[0].write_text('{"line": 1}\n')
    weights = run_dir / "model" / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the model was replaced
    assert resume.start(src, out, fp) == 0
