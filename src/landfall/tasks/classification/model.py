"""The classifier: a pretrained encoder with a fresh sequence-classification head."""

from __future__ import annotations

from landfall.config import Config
from landfall.hub import resolve_model
from landfall.tasks.common import dropout_overrides


def max_positions(config) -> int:
    """Longest input the model's position embeddings cover (0 = unknown)."""
    n = getattr(config, "max_position_embeddings", 0) or 0
    if n and config.model_type in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        n -= (config.pad_token_id or 0) + 1  # positions start after the padding index
    return n


def load_classifier(cfg: Config, labels: list[str]):
    """``model.name`` with a classification head for ``labels`` (no adapters yet)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_model(cfg.model.name)
    base = AutoConfig.from_pretrained(path)
    return AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        **dropout_overrides(base, cfg),
    )
