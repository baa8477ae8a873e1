"""Paraphrase augmentation: seeded, cached (a second run generates nothing), training only.

A tiny random Llama stands in for SmolLM2: what is tested is the plumbing, not the prose.
"""

from __future__ import annotations

import csv
import json

import pytest

from conftest import DATA, need_data, tiny_config
from landfall.data.paraphrase import Paraphraser, clean

CHAT = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory, tiny_model):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = CHAT
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    out = tmp_path_factory.mktemp("tiny-llm")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def banking_texts(n: int) -> list[str]:
    need_data()
    with open(DATA / "banking77" / "train.csv", encoding="utf-8") as fh:
        return [row["text"] for _, row in zip(range(n), csv.DictReader(fh), strict=False)]


def test_clean_rejects_copies_and_rambling():
    src = "How do I top up my card?"
    assert clean("  How do I top up my card?  ", src) == ""
    assert clean("What is the way to add money to my card?", src)
    assert clean("The rewritten text is: How can I add funds to my card?", src) == (
        "How can I add funds to my card?")
    assert clean("Card? " * 40, src) == ""
    assert clean("Top up?\n\nNote: I kept the meaning.", src) == ""  # too short once cut


def test_paraphrases_are_seeded_and_cached(tiny_llm, tmp_path):
    texts = banking_texts(6)
    cache = tmp_path / "para.jsonl"
    first = Paraphraser(str(tiny_llm), seed=1, cache_path=cache, max_input_tokens=16)
    a = first.paraphrase(texts, per_text=2, progress=False)
    assert first.generated == 12 and len(a) == 6 and all(len(p) == 2 for p in a)
    again = Paraphraser(str(tiny_llm), seed=1, cache_path=cache, max_input_tokens=16)
    assert again.paraphrase(texts, per_text=2, progress=False) == a
    assert again.generated == 0 and again._lm is None  # the LLM was never even loaded
    fresh = Paraphraser(str(tiny_llm), seed=1, cache_path=tmp_path / "other.jsonl",
                        max_input_tokens=16)
    assert fresh.paraphrase(texts, per_text=2, progress=False) == a  # same seed, same text


def test_paraphrases_reach_training_only(tiny_model, tiny_llm, tmp_path):
    from transformers import AutoTokenizer

    from landfall.config import build_config
    from landfall.data.prepare import prepare

    data = tmp_path / "banking.jsonl"
    rows = []
    with open(DATA / "banking77" / "train.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["category"] in ("card_arrival", "top_up_failed"):
                rows.append({"text": row["text"], "label": row["category"]})
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:24] + rows[-24:]))
    plain_cfg = tiny_config(tiny_model, data)
    para_cfg = tiny_config(tiny_model, data)
    para_cfg["data"].update(augment="paraphrase", augment_model=str(tiny_llm))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    plain = prepare(build_config(plain_cfg).data, tok, seed=0)
    out = prepare(build_config(para_cfg).data, tok, seed=0)
    assert [e.text for e in out.validation.examples] == [
        e.text for e in plain.validation.examples]
    originals = plain.train.examples
    assert out.train.examples[: len(originals)] == originals
    extra = out.train.examples[len(originals):]
    val_texts = {e.text for e in plain.validation.examples}
    assert all(e.text not in val_texts for e in extra)
    by_line = {(e.source, e.line): e.label for e in originals}
    assert all(by_line[(e.source, e.line)] == e.label for e in extra)
