"""ONNX Runtime as a Predictor backend.

A model directory that holds ``model.onnx`` (next to the transformers ``config.json`` and the
tokenizer files) is run by ONNX Runtime instead of PyTorch. ``OnnxClassifier`` answers the
one call the Predictor makes of a model — ``model(input_ids=..., attention_mask=...).logits``
— so tokenisation, long-text windows, length batching and aggregation are the very same code
for both backends.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from landfall.errors import LandfallError

ONNX_FILE = "model.onnx"


def is_onnx_dir(path: str | Path) -> bool:
    return (Path(path) / ONNX_FILE).is_file()


class OnnxClassifier:
    """An ONNX Runtime session with graph optimisation on, called like a HF classifier."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise LandfallError("the ONNX backend needs onnxruntime: "
                                "pip install 'landfall[onnx]'") from None
        from transformers import AutoConfig

        path = Path(path)
        file = path / ONNX_FILE if path.is_dir() else path
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(file), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise LandfallError(f"{file}: ONNX Runtime cannot load it: {exc}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = AutoConfig.from_pretrained(file.parent)

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        feed = {k: v.detach().cpu().numpy().astype(np.int64) for k, v in batch.items()
                if k in self.input_names}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        (logits,) = self.session.run(["logits"], feed)
        return SimpleNamespace(logits=torch.from_numpy(logits))
