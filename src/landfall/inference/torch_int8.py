"""PyTorch dynamic int8 (``torch.ao.quantization.quantize_dynamic`` on every Linear).

A quantised module's packed weights are not tensors safetensors can hold, so such a run keeps
its fp32 weights on disk (plain transformers still loads them) and ``config.json`` carries
``landfall_quantize = "torch-dynamic-int8"``: Landfall quantises at load time, in about a
second. It is faster on a CPU, not smaller on disk; the ONNX int8 path is both.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

KEY = "landfall_quantize"
VALUE = "torch-dynamic-int8"


def is_torch_int8(path: str | Path) -> bool:
    cfg = Path(path) / "config.json"
    return cfg.exists() and json.loads(cfg.read_text()).get(KEY) == VALUE


def quantize_linear(model: torch.nn.Module) -> torch.nn.Module:
    model = model.float().cpu().eval()
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
