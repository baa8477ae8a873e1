"""The one door to a trained model: texts in, class probabilities (and logits) out.

Long texts become windows (``data.windows``), windows are batched by length
(``data.batching``), window logits are aggregated per document. Evaluation during training,
``landfall evaluate``, ``landfall predict`` and the server all pass through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from landfall.data.batching import collate, inference_batches, pad_multiple
from landfall.data.tokens import tokenize
from landfall.data.windows import WindowSpec, aggregate_logits, make_windows, special_tokens
from landfall.utils.progress import progress_bar


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Prediction:
    probs: np.ndarray  # (n_docs, n_labels)
    windows: np.ndarray  # (n_docs,) windows per document
    labels: list[str]
    logits: np.ndarray | None = None  # (n_docs, n_labels) aggregated logits; softmax = probs

    @property
    def label_ids(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


class Predictor:
    """Run a sequence-classification model over documents of any length."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        labels: Sequence[str],
        spec: WindowSpec,
        *,
        batch_size: int = 64,
        max_tokens: int = 0,
        device: torch.device | str | None = None,
        bf16: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.spec = spec
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.bf16 = bf16  # autocast to bf16 on a GPU (the run's train.precision)
        self.is_torch = isinstance(model, torch.nn.Module)  # else: ONNX Runtime (CPU)
        if not self.is_torch:
            self.device = torch.device("cpu")
        else:
            self.device = torch.device(device) if device else next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._prefix, self._suffix = special_tokens(tokenizer)

    def add_special(self, ids: list[int]) -> list[int]:
        return self._prefix + list(ids) + self._suffix

    @torch.inference_mode()
    def window_logits(self, windows: Sequence[Sequence[int]], progress: bool = False) -> np.ndarray:
        """Logits of each window (already wrapped in special tokens)."""
        was_training = self.is_torch and self.model.training
        if self.is_torch:
            self.model.eval()
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float32)
        batches = inference_batches([len(w) for w in windows], self.batch_size, self.max_tokens)
        use_bf16 = self.bf16 and self.device.type == "cuda"
        try:
            with progress_bar(total=len(windows), desc="predicting", disable=not progress) as bar:
                for idx in batches:
                    batch = collate([windows[i] for i in idx], self.pad_id,
                                    pad_multiple(self.device))
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    with torch.autocast(self.device.type, torch.bfloat16, enabled=use_bf16):
                        logits = self.model(**batch).logits
                    out[idx] = logits.float().cpu().numpy()
                    bar.update(len(idx))
        finally:
            if was_training:
                self.model.train()
        return out

    def predict_tokens(self, docs: Sequence[Sequence[int]], progress: bool = False) -> Prediction:
        windows, owner = make_windows(docs, self.spec, self.add_special)
        logits = self.window_logits(windows, progress)
        agg = aggregate_logits(logits, owner, len(docs), self.spec.aggregate)
        counts = np.bincount(np.asarray(owner, dtype=np.int64), minlength=len(docs))
        return Prediction(softmax(agg), counts, self.labels, agg)

    def predict(
        self, texts: Sequence[str], progress: bool = False, cache: bool = False
    ) -> Prediction:
        docs = tokenize(texts, self.tokenizer, cache=cache)
        return self.predict_tokens(docs, progress)
