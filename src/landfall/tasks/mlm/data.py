"""Unlabelled text → held-out split → fixed-length chunks with special tokens."""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import Config, expand_env
from landfall.data.readers import read_texts
from landfall.data.splits import stratified_split
from landfall.data.tokens import tokenize
from landfall.data.windows import WindowSpec, make_windows, special_tokens


@dataclass
class Chunks:
    train: list[list[int]]
    heldout: list[list[int]]
    documents: int
    source: str
    initial_perplexity: float | None = None  # before training, set by the objective


def _chunks(docs, spec: WindowSpec, add) -> list[list[int]]:
    windows, _ = make_windows(docs, spec, add)
    return [w for w in windows if len(w) > spec.specials]


def prepare_chunks(cfg: Config, tokenizer) -> Chunks:
    source = expand_env(cfg.data.train, "data.train")
    texts = read_texts(source, text_field=cfg.data.text_field, limit=cfg.data.limit or None)
    train, held = stratified_split(texts, cfg.pretrain.heldout_fraction, cfg.train.seed)
    prefix, suffix = special_tokens(tokenizer)
    spec = WindowSpec(max_length=cfg.data.max_length, truncation="sliding", stride=0,
                      max_windows=0, specials=len(prefix) + len(suffix))
    spec.validate()

    def add(w: list[int]) -> list[int]:
        return prefix + w + suffix

    chunks = _chunks(tokenize([t.text for t in train], tokenizer, desc="tokenising"), spec, add)
    heldout = _chunks(tokenize([t.text for t in held], tokenizer), spec, add)
    return Chunks(chunks, heldout, len(train), source)
