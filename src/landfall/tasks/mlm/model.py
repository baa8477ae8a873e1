"""The masked-LM model: a pretrained encoder with an MLM head, or a small BERT from scratch."""

from __future__ import annotations

from landfall.config import Config
from landfall.errors import ConfigError
from landfall.hub import resolve_model
from landfall.tasks.common import dropout_overrides


def load_mlm(cfg: Config, tokenizer):
    """The model with an MLM head. Checkpoints shipped without one (all-MiniLM-L6-v2,
    all-mpnet-base-v2) get a fresh head whose decoder is tied to the input embeddings, so
    only the small transform layer starts from random."""
    from transformers import AutoConfig, AutoModelForMaskedLM, BertConfig

    if cfg.pretrain.from_scratch:
        p = cfg.pretrain
        if p.hidden % p.heads:
            raise ConfigError(f"pretrain.hidden={p.hidden} is not divisible by heads={p.heads}")
        conf = BertConfig(vocab_size=len(tokenizer), hidden_size=p.hidden,
                          num_hidden_layers=p.layers, num_attention_heads=p.heads,
                          intermediate_size=4 * p.hidden,
                          max_position_embeddings=max(512, cfg.data.max_length),
                          pad_token_id=tokenizer.pad_token_id,
                          hidden_dropout_prob=cfg.model.dropout,
                          attention_probs_dropout_prob=cfg.model.attention_dropout)
        return AutoModelForMaskedLM.from_config(conf)
    path = resolve_model(cfg.model.name)
    kw = dropout_overrides(AutoConfig.from_pretrained(path), cfg)
    model = AutoModelForMaskedLM.from_pretrained(path, tie_word_embeddings=True, **kw)
    model.tie_weights()
    return model
