"""Parameter-efficient fine-tuning through peft: LoRA, IA³, prefix and prompt tuning.

peft has no bottleneck (Houlsby/Pfeiffer) adapter for encoder classifiers, so none is
offered. Prefix tuning needs a model whose forward takes ``past_key_values``; the BERT and
MPNet encoders of transformers 5 no longer do, so for them it fails with a clear message.
The task names its peft task type: ``SEQ_CLS`` makes peft train and save the classification
head (``modules_to_save``), so a reloaded adapter predicts exactly like the trained model;
``CAUSAL_LM`` adapts a decoder (the LM head stays tied and frozen).
"""

from __future__ import annotations

import torch

from landfall.config import PeftConfig
from landfall.errors import LandfallError


def _peft_config(cfg: PeftConfig, task_type: str):
    try:
        import peft
    except ImportError:
        raise LandfallError("peft.method needs peft: pip install 'landfall[peft]'") from None
    targets = [t.strip() for t in cfg.target_modules.split(",") if t.strip()] or None
    task = getattr(peft.TaskType, task_type)
    if cfg.method == "lora":
        return peft.LoraConfig(task_type=task, r=cfg.r, lora_alpha=cfg.alpha,
                               lora_dropout=cfg.dropout, target_modules=targets)
    if cfg.method == "ia3":
        return peft.IA3Config(task_type=task, target_modules=targets,
                              feedforward_modules=[] if targets else None)
    if cfg.method == "prefix":
        return peft.PrefixTuningConfig(task_type=task, num_virtual_tokens=cfg.virtual_tokens)
    return peft.PromptTuningConfig(task_type=task, num_virtual_tokens=cfg.virtual_tokens)


def wrap(model: torch.nn.Module, cfg: PeftConfig, task_type: str = "SEQ_CLS") -> torch.nn.Module:
    """The model with adapters (only they and, for a classifier, the head train), or unchanged
    for ``none``. ``task_type`` is the task's peft.TaskType name."""
    if cfg.method == "none":
        return model
    if cfg.method == "prefix" and not _takes_past_key_values(model):
        raise LandfallError(
            f"peft.method=prefix: {type(model).__name__} in transformers 5 takes no "
            "past_key_values, which prefix tuning injects into every layer; use prompt "
            "(input-level soft prompt), lora or ia3"
        )
    from peft import get_peft_model

    try:
        return get_peft_model(model, _peft_config(cfg, task_type))
    except ValueError as exc:  # e.g. target modules that the model does not have
        raise LandfallError(f"peft.method={cfg.method}: {exc}") from None


def _takes_past_key_values(model: torch.nn.Module) -> bool:
    """What peft's prefix tuning needs of the model or of its transformer backbone."""
    import inspect

    backbone = getattr(model, getattr(model, "base_model_prefix", ""), model)
    return any("past_key_values" in inspect.signature(m.forward).parameters
               for m in (model, backbone))


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total}
