"""AdamW with the usual parameter groups, and the warm-up + decay schedule."""

from __future__ import annotations

import torch
from transformers import get_scheduler

from landfall.config import TrainConfig

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith(NO_DECAY) or p.ndim < 2 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    on_gpu = next(model.parameters()).is_cuda
    # fused AdamW is the fastest on GPU; on CPU the foreach implementation is.
    kind = {"fused": True} if on_gpu else {"foreach": True}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, **kind)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    warmup = round(cfg.warmup_ratio * total_steps)
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
    return get_scheduler(
        name[cfg.schedule], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
