"""PEFT: each method trains, saves, reloads to identical predictions; LoRA merges exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification

import landfall
from conftest import tiny_config
from landfall.config import build_config
from landfall.errors import LandfallError
from landfall.inference.loading import load_run

TEXTS = ["A wonderful film, moving and funny.", "Dull, long and badly acted. " * 30]


def _run(tiny_model, imdb_small, tmp_path, method):
    # one evaluation, at the last step: the best model is the final one
    cfg = tiny_config(tiny_model, imdb_small, train={"epochs": 1.0, "eval_every": 10**6},
                      report={"baseline": False, "plots": False})
    cfg["peft"] = {"method": method, "virtual_tokens": 4}
    out = tmp_path / method
    return out, landfall.train(build_config(cfg), out)


@pytest.mark.parametrize("method", ["lora", "ia3", "prompt"])
def test_reloaded_adapter_predicts_like_the_trained_model(tiny_model, imdb_small, tmp_path,
                                                          method):
    run, result = _run(tiny_model, imdb_small, tmp_path, method)
    t = result["train"]
    assert 0 < t["trainable_params"] < t["total_params"] and t["peft"] == method
    # eval.json's metrics come from the model reloaded from disk; the last metrics.jsonl
    # evaluation from the model in memory: they must agree to float precision
    last = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["eval_loss"] == pytest.approx(result["validation"]["nll"], abs=1e-5)
    assert last["eval_accuracy"] == result["validation"]["accuracy"]
    a = load_run(run).predict(TEXTS).probs
    b = load_run(run).predict(TEXTS).probs
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_prefix_tuning_on_bert_is_refused_clearly(tiny_model, imdb_small, tmp_path):
    with pytest.raises(LandfallError, match="prefix.*past_key_values"):
        _run(tiny_model, imdb_small, tmp_path, "prefix")


def test_lora_merge_equals_unmerged(tiny_model, imdb_small, tmp_path):
    run, _ = _run(tiny_model, imdb_small, tmp_path, "lora")
    merged = landfall.export_merged(run, tmp_path / "merged")
    plain = AutoModelForSequenceClassification.from_pretrained(merged / "model")
    assert not any("lora" in n for n, _ in plain.named_parameters())
    np.testing.assert_allclose(load_run(merged).predict(TEXTS).probs,
                               load_run(run).predict(TEXTS).probs, atol=1e-5)
