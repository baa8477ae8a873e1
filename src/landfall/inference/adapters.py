"""Loading and merging peft adapters saved by a parameter-efficient run."""

from __future__ import annotations

from pathlib import Path

import torch

from landfall.errors import LandfallError

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).exists()


def load_adapter_model(path: Path, base_dir: Path,
                       auto_class: str = "AutoModelForSequenceClassification") -> torch.nn.Module:
    """The base model (as the task's transformers Auto class; a classifier takes its label
    names from ``path``'s config.json) + the saved adapter."""
    import transformers
    from peft import PeftModel
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    base = getattr(transformers, auto_class).from_pretrained(base_dir, config=config)
    return PeftModel.from_pretrained(base, path)


def merged(model: torch.nn.Module) -> torch.nn.Module:
    """LoRA / IA³ folded into the base weights: a plain transformers model again."""
    if not hasattr(model, "merge_and_unload"):
        raise LandfallError("only LoRA and IA³ adapters can be merged into the base weights")
    return model.merge_and_unload()
