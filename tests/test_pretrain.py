"""Masked-LM pretraining: the masking recipe, and pretrain -> fine-tune on a tiny model."""

from __future__ import annotations

import json

import torch

import landfall
from conftest import tiny_config
from landfall.config import build_config
from landfall.tasks.mlm.masking import IGNORE, mask_tokens, word_starts


def test_bert_masking_statistics():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (64, 256), generator=g)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False  # [CLS] ... [SEP]
    inputs, labels = mask_tokens(ids, maskable, mask_id=103, vocab_size=30522, generator=g)
    chosen = labels != IGNORE
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert torch.equal(labels[chosen], ids[chosen])
    n = chosen.sum().item()
    as_mask = (inputs[chosen] == 103).sum().item() / n
    unchanged = (inputs[chosen] == ids[chosen]).sum().item() / n
    assert abs(as_mask - 0.8) < 0.02
    assert abs(unchanged - 0.1) < 0.02  # (plus the rare random draw of the same id)
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_masked_positions_only_gives_the_full_heads_logits(tiny_model):
    from transformers import AutoModelForMaskedLM

    from landfall.tasks.mlm.objective import masked_logits

    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_pretrained(tiny_model).eval()
    ids = torch.randint(1000, 20000, (3, 40))
    mask = torch.ones_like(ids)
    mask[2, 30:] = 0
    labels = torch.full_like(ids, IGNORE)
    labels[0, 5] = labels[1, 7] = labels[2, 29] = 42
    batch = {"input_ids": ids, "attention_mask": mask}
    logits, kept = masked_logits(model, batch, labels)
    full = model(**batch).logits
    assert kept.tolist() == [42, 42, 42]
    assert torch.allclose(logits, full[labels != IGNORE], atol=1e-5)


def test_whole_word_masking_masks_all_pieces_together(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    starts = word_starts(tok)
    text = "unbelievably tokenization " * 40
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    maskable = torch.ones_like(ids, dtype=torch.bool)
    g = torch.Generator().manual_seed(1)
    _, labels = mask_tokens(ids, maskable, mask_id=103, vocab_size=len(tok), starts=starts,
                            prob=0.3, generator=g)
    chosen = (labels != IGNORE)[0].tolist()
    word = torch.cumsum(starts[ids[0]].long(), 0).tolist()
    by_word = {}
    for w, c in zip(word, chosen, strict=True):
        by_word.setdefault(w, set()).add(c)
    assert all(len(v) == 1 for v in by_word.values())  # a word is all in or all out
    assert 0 < sum(chosen) < len(chosen)


def test_pretrain_then_finetune(tiny_model, imdb_small, tmp_path):
    cfg = tiny_config(tiny_model, imdb_small, train={"epochs": 1.0, "eval_every": 3},
                      report={"baseline": False, "plots": True})
    cfg["pretrain"] = {"heldout_fraction": 0.1, "whole_word": True}
    out = landfall.pretrain(build_config(cfg), tmp_path / "pt")
    h = out["heldout"]
    assert h["perplexity"] < h["initial_perplexity"]
    assert (tmp_path / "pt" / "model" / "model.safetensors").exists()
    assert (tmp_path / "pt" / "plots" / "training_curves.png").exists()
    assert json.loads((tmp_path / "pt" / "eval.json").read_text())["heldout"]["chunks"] > 0
    report = (tmp_path / "pt" / "report.md").read_text()  # the mlm task's own report
    assert f"{h['initial_perplexity']:.2f}" in report and "training_curves.png" in report

    ft = tiny_config(tmp_path / "pt" / "model", imdb_small, train={"epochs": 1.0},
                     report={"baseline": False, "plots": False})
    result = landfall.train(build_config(ft), tmp_path / "ft")
    assert result["validation"]["n"] == 24


def test_from_scratch_config(tiny_model, imdb_small, tmp_path):
    cfg = tiny_config(tiny_model, imdb_small, train={"max_steps": 2, "eval_every": 2},
                      report={"baseline": False, "plots": False})
    cfg["pretrain"] = {"from_scratch": True, "layers": 1, "hidden": 16, "heads": 2}
    landfall.pretrain(build_config(cfg), tmp_path / "scratch")
    conf = json.loads((tmp_path / "scratch" / "model" / "config.json").read_text())
    assert conf["num_hidden_layers"] == 1 and conf["hidden_size"] == 16
