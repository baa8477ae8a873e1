"""Half-precision (bf16) weights: computed in bf16 where the hardware has bf16 units, else
upcast to fp32 at load.

A bf16 run directory is a plain transformers model saved with ``dtype = "bfloat16"`` (half
the bytes of fp32 on disk). On a CUDA GPU with bf16, or a CPU with AVX512-BF16 / AMX, it runs
in bf16. Elsewhere PyTorch would emulate bf16 matrix products, several times slower than
fp32, so the loader upcasts the weights once: the disk saving stays, the speed is fp32's,
and the accuracy is that of the rounded weights.
"""

from __future__ import annotations

import sys
from functools import cache

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_has_bf16() -> bool:
    """True when this CPU has bf16 dot-product units (Linux ``/proc/cpuinfo`` flags)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def bf16_native(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_bf16()


def why_not_bf16(device: torch.device) -> str:
    """'' when bf16 runs natively on ``device``, else the reason it does not."""
    if bf16_native(device):
        return ""
    if device.type == "cpu":
        return f"this CPU has no bf16 units (none of the flags {', '.join(BF16_CPU_FLAGS)})"
    return f"{device} has no native bf16"


def settle_dtype(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Upcast half-precision weights to fp32 unless ``device`` computes bf16 natively."""
    dtype = next(model.parameters()).dtype
    if dtype == torch.bfloat16 and bf16_native(device):
        return model
    if dtype in (torch.bfloat16, torch.float16):
        return model.float()
    return model
