"""Helpers that several tasks share."""

from __future__ import annotations

from landfall.config import Config


def dropout_overrides(model_config, cfg: Config) -> dict:
    """Dropout names differ between architectures: set the ones this config has."""
    kw = {}
    for name in ("hidden_dropout_prob", "dropout", "classifier_dropout", "seq_classif_dropout"):
        if hasattr(model_config, name):
            kw[name] = cfg.model.dropout
    for name in ("attention_probs_dropout_prob", "attention_dropout"):
        if hasattr(model_config, name):
            kw[name] = cfg.model.attention_dropout
    return kw
