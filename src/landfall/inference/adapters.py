"""Loading and merging peft adapters saved by a parameter-efficient run."""

from __future__ import annotations

from pathlib import Path

import torch

from landfall.errors import LandfallError

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).exists()


def load_adapter_model(path: Path, base_dir: Path) -> torch.nn.Module:
    """Base classifier (label names from ``path``'s config.json) + the saved adapter."""
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, config=config)
    return PeftModel.from_pretrained(base, path)


def merged(model: torch.nn.Module) -> torch.nn.Module:
    """LoRA / IA³ folded into the base weights: a plain transformers model again."""
    if not hasattr(model, "merge_and_unload"):
        raise LandfallError("only LoRA and IA³ adapters can be merged into the base weights")
    return model.merge_and_unload()


def export_merged(run_dir: str | Path, output: str | Path) -> Path:
    """Write a run directory whose ``model/`` is the LoRA/IA³ run with the adapter folded into
    the base weights: plain transformers loads it, no peft needed, no adapter overhead."""
    import tomli_w

    from landfall import runs
    from landfall.inference.loading import load_run, run_config

    run_dir, output = Path(run_dir), Path(output)
    if (output / runs.MODEL).exists():
        raise LandfallError(f"{output}: already holds a model")
    predictor = load_run(run_dir)
    plain = merged(predictor.model)
    cfg = run_config(run_dir)
    cfg.peft.method = "none"

    def write(tmp: Path) -> None:
        plain.save_pretrained(tmp)
        predictor.tokenizer.save_pretrained(tmp)

    runs.save_dir(output / runs.MODEL, write)
    runs.write_text(output / runs.CONFIG, tomli_w.dumps(cfg.to_dict()))
    return output
