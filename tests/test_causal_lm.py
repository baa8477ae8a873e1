"""Causal-LM task end to end on a tiny random decoder and real Bitext rows: train, resume
bit-exactly, generate reproducibly, evaluate beside the baselines, refuse bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import tomli_w
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import landfall
from conftest import tiny_config, tiny_lm_config
from landfall.config import build_config
from landfall.errors import ConfigError, DataError, LandfallError


@pytest.fixture(scope="module")
def lm_run(tiny_lm, bitext_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "run"
    landfall.train(build_config(tiny_lm_config(tiny_lm, bitext_small)), out)
    return out


def test_run_is_a_plain_transformers_causal_lm_with_an_evaluation(lm_run):
    assert 'name = "causal_lm"' in (lm_run / "landfall.toml").read_text()
    model = AutoModelForCausalLM.from_pretrained(lm_run / "model")
    assert model.config.model_type == "llama"
    ev = json.loads((lm_run / "eval.json").read_text())
    systems = ev["validation"]["systems"]
    assert set(systems) == {"fine-tuned", "retrieval (TF-IDF nearest request)",
                            "base model zero-shot", "base model 1-shot"}
    for s in systems.values():
        assert 0.0 <= s["rougeL"] <= 1.0 and -1.0 <= s["similarity"] <= 1.0 and s["n"] == 6
    assert ev["validation"]["per_category"]
    assert ev["validation_loss"]["loss"] > 0
    for png in ("systems.png", "per_category.png", "lengths.png", "training_curves.png"):
        assert (lm_run / "plots" / png).exists(), png
    rows = (lm_run / "generations.jsonl").read_text().splitlines()
    assert len(rows) == 6 and "reference" in json.loads(rows[0])
    assert "ROUGE-L" in (lm_run / "report.md").read_text()


def test_loss_counts_response_tokens_only(tiny_lm):
    from landfall.tasks.causal_lm.data import IGNORE, Tokenised
    from landfall.tasks.causal_lm.objective import collate_sft, response_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    items = [Tokenised([5, 6, 7, 8, 9, 10], 4), Tokenised([11, 12, 13, 14], 1)]
    ids, mask, labels = collate_sft(items, pad_id=0)
    assert labels[0, :4].eq(IGNORE).all() and labels[1, 4:].eq(IGNORE).all()
    import contextlib

    with torch.no_grad():
        loss, count = response_loss(model, ids, mask, labels, contextlib.nullcontext)
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert count == 2 + 3  # response tokens: 9, 10 and 12, 13, 14
    target = labels[:, 1:]
    keep = target != IGNORE
    manual = torch.nn.functional.cross_entropy(logits[:, :-1][keep], target[keep],
                                               reduction="sum")
    assert torch.allclose(loss, manual, atol=1e-4)
    # a different prompt changes nothing but the context: still five tokens scored
    items[0] = Tokenised([99, 98, 97, 96, 9, 10], 4)
    assert response_loss(model, *collate_sft(items, 0), contextlib.nullcontext)[1] == 5


def _requests(tmp_path, n=5):
    path = tmp_path / "requests.jsonl"
    texts = ["how do i cancel my order", "I want a refund", "where is my invoice",
             "change my shipping address", "talk to a human", "reset my password"][:n]
    path.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in texts))
    return path


def test_generate_is_reproducible_for_a_seed_and_resumes(lm_run, tmp_path):
    src = _requests(tmp_path)
    sample = ["generate.do_sample=true", "generate.seed=3", "generate.temperature=1.5"]
    a = landfall.generate(lm_run, src, tmp_path / "a.jsonl", overrides=sample)
    b = landfall.generate(lm_run, src, tmp_path / "b.jsonl", overrides=sample)
    rows_a = (tmp_path / "a.jsonl").read_text()
    assert a["n"] == 5 and rows_a == (tmp_path / "b.jsonl").read_text() and b["n"] == 5
    rows = [json.loads(r) for r in rows_a.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(r["finish"] in ("stop", "length") and r["new_tokens"] <= 12 for r in rows)
    other = landfall.generate(lm_run, src, tmp_path / "c.jsonl",
                              overrides=[*sample[:1], "generate.seed=4", sample[2]])
    assert other["n"] == 5 and (tmp_path / "c.jsonl").read_text() != rows_a
    # greedy equals what the Python API's Generator returns
    from landfall.inference.generate import settings_for
    from landfall.inference.loading import load_generation_run

    landfall.generate(lm_run, src, tmp_path / "g.jsonl")
    gen = load_generation_run(lm_run)
    direct = gen.generate(["how do i cancel my order"], settings_for(lm_run))[0].text
    assert json.loads((tmp_path / "g.jsonl").read_text().splitlines()[0])["response"] == direct


def test_generation_refuses_bad_input(lm_run, tiny_model, imdb_small, tmp_path):
    src = _requests(tmp_path)
    with pytest.raises(ConfigError, match="generate.temperature"):
        landfall.generate(lm_run, src, tmp_path / "o.jsonl", overrides=["generate.temperature=0"])
    with pytest.raises(ConfigError, match="generate.top_p"):
        landfall.generate(lm_run, src, tmp_path / "o.jsonl", overrides=["generate.top_p=1.5"])
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"instruction": "refund " * 400}) + "\n")
    with pytest.raises(DataError, match=r"long.jsonl:1: field 'instruction'.*max_prompt_tokens"):
        landfall.generate(lm_run, long, tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()
    clf = tmp_path / "clf"
    landfall.train(build_config(tiny_config(tiny_model, imdb_small, train={"max_steps": 1},
                                            report={"baseline": False, "plots": False})), clf)
    with pytest.raises(LandfallError, match="`generate` is not supported by a classification"):
        landfall.generate(clf, src, tmp_path / "o.jsonl")
    with pytest.raises(LandfallError, match="`predict` is not supported by a causal_lm"):
        landfall.predict(lm_run, src, tmp_path / "p.jsonl", text_field="instruction")


def test_training_data_errors_name_file_line_and_field(tiny_lm, bitext_small, tmp_path):
    rows = bitext_small.read_text(encoding="utf-8")
    header, *_ = rows.splitlines()
    no_resp = tmp_path / "noresp.csv"
    no_resp.write_text(header.replace(",response", ",answer") + "\n"
                       + rows.split("\n", 1)[1], encoding="utf-8")
    with pytest.raises(DataError, match=r"noresp.csv:2: field 'response'"):
        landfall.train(build_config(tiny_lm_config(tiny_lm, no_resp)), tmp_path / "r1")
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"instruction": "hi", "response": "ok", "intent": "a"}) + "\n"
                     + json.dumps({"instruction": "hello", "response": " ", "intent": "a"})
                     + "\n")
    with pytest.raises(DataError, match=r"empty.jsonl:2: field 'response': response is empty"):
        landfall.train(build_config(tiny_lm_config(tiny_lm, empty)), tmp_path / "r2")


def _train(args, env_extra=None):
    env = {**os.environ, "LANDFALL_PROGRESS": "0", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "landfall", "train", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_sigkill_then_resume_matches_uninterrupted_causal_lm(tiny_lm, bitext_small, tmp_path):
    cfg = tmp_path / "c.toml"
    # 48 training rows / batch 8 = 6 steps per epoch, 2 epochs, checkpoints every 2 steps
    raw = tiny_lm_config(tiny_lm, bitext_small, report={"baseline": False, "plots": False,
                                                       "generation_limit": 2})
    cfg.write_text(tomli_w.dumps(raw))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = _train(["--config", str(cfg), "--output", str(whole)])
    assert done.returncode == 0, done.stderr[-2000:]
    killed = _train(["--config", str(cfg), "--output", str(broken)],
                    {"LANDFALL_KILL_AT_STEP": "7"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _train(["--resume", str(broken)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(str(whole / "model" / "model.safetensors"))
    b = load_file(str(broken / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lora_run_saves_an_adapter_that_export_merged_folds(tiny_lm, bitext_small, tmp_path):
    pytest.importorskip("peft")
    raw = tiny_lm_config(tiny_lm, bitext_small, peft={"method": "lora", "r": 4, "alpha": 8,
                                                      "target_modules": "q_proj,v_proj"},
                         train={"max_steps": 2}, report={"baseline": False, "plots": False,
                                                         "generation_limit": 2})
    run = tmp_path / "lora"
    out = landfall.train(build_config(raw), run)
    assert (run / "model" / "adapter_config.json").exists()
    assert out["train"]["trainable_params"] < out["train"]["total_params"] / 10
    merged = landfall.export_merged(run, tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(merged / "model")
    tok = AutoTokenizer.from_pretrained(merged / "model")
    assert plain.config.model_type == "llama" and tok.chat_template
    src = _requests(tmp_path, 2)
    landfall.generate(run, src, tmp_path / "a.jsonl")
    landfall.generate(merged, src, tmp_path / "b.jsonl")
    ra = [json.loads(r)["response"] for r in (tmp_path / "a.jsonl").read_text().splitlines()]
    rb = [json.loads(r)["response"] for r in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert ra == rb


def test_log_likelihood_scores_text_the_model_was_trained_on_higher(lm_run, bitext_small):
    from landfall.inference.loading import load_generation_run

    gen = load_generation_run(lm_run)
    seen = "I'm here to help you cancel your order. Please follow the steps below."
    scrambled = " ".join(reversed(seen.split()))
    a, b = gen.log_likelihood([seen, scrambled])
    assert a < 0 and b < 0 and a > b
