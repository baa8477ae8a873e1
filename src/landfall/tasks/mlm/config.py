"""The masked-LM task's config section ``[pretrain]``."""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import help_field as _f
from landfall.config import register_section


@dataclass
class PretrainConfig:
    mlm_probability: float = _f(0.15, "Share of tokens (or words) chosen for prediction.",
                                gt=0.0, lt=1.0)
    whole_word: bool = _f(False, "Mask whole words (all WordPiece pieces of a word together).")
    heldout_fraction: float = _f(0.02, "Share of documents held out to measure perplexity.",
                                 gt=0.0, lt=1.0)
    from_scratch: bool = _f(
        False, "Start from random weights of the size below (model.name gives the tokenizer)."
    )
    layers: int = _f(4, "From scratch: transformer layers.", ge=1)
    hidden: int = _f(256, "From scratch: hidden size (the feed-forward is 4x wider).", ge=8)
    heads: int = _f(4, "From scratch: attention heads (must divide hidden).", ge=1)


register_section("pretrain", PretrainConfig, task="mlm")
