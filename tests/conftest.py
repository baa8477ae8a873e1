"""Shared fixtures: a tiny randomly initialised BERT and real slices of ../shared/data."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

os.environ.setdefault("LANDFALL_PROGRESS", "0")


def need_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"{DATA} not present")
    return DATA


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Token caches and unpacked models go to a temporary folder, not ~/.cache."""
    os.environ["LANDFALL_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's real WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from landfall.hub import MINILM, resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(MINILM))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    out = tmp_path_factory.mktemp("tiny-bert")
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def imdb_rows(n_per_class: int) -> list[dict]:
    """The first ``n_per_class`` reviews of each label from the real IMDb file."""
    need_data()
    rows, counts = [], {"pos": 0, "neg": 0}
    with gzip.open(DATA / "imdb" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if counts[row["label"]] < n_per_class:
                counts[row["label"]] += 1
                rows.append(row)
            if min(counts.values()) >= n_per_class:
                break
    return rows


@pytest.fixture(scope="session")
def imdb_small(tmp_path_factory) -> Path:
    """96 real IMDb reviews (48 per class), shuffled, as JSONL."""
    import random

    rows = imdb_rows(48)
    random.Random(0).shuffle(rows)
    path = tmp_path_factory.mktemp("imdb") / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_config(model: Path, data: Path, **sections) -> dict:
    """A config dict for a fast run of the tiny model."""
    cfg = {
        "model": {"name": str(model)},
        "data": {"train": str(data), "validation_fraction": 0.25, "max_length": 64,
                 "truncation": "head+tail", "head_tokens": 32},
        "train": {"epochs": 2.0, "batch_size": 8, "lr": 1e-3, "eval_every": 4,
                  "checkpoint_every": 3, "patience": 0, "eval_batch_size": 16, "threads": 1},
        "report": {"baseline": True, "plots": True},
    }
    for sec, values in sections.items():
        cfg[sec].update(values)
    return cfg


def sliding_run(out: Path, model_dir: Path, seed: int) -> Path:
    """A run directory at ``out`` around a random 2-label tiny BERT (``model_dir``'s weights,
    a fresh head seeded by ``seed``), with sliding windows of 32 tokens."""
    import tomli_w
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from landfall.config import build_config

    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    model.save_pretrained(out / "model")
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out / "model")
    raw = tiny_config(model_dir, Path("unused.jsonl"))
    raw["data"].update(max_length=32, truncation="sliding", stride=8, max_windows=0)
    (out / "landfall.toml").write_text(tomli_w.dumps(build_config(raw).to_dict()))
    return out
