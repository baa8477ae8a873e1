"""Classification objective: cross-entropy over token windows, scored per document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from landfall.data.batching import collate, pad_multiple
from landfall.tasks.classification.metrics import compute_metrics


def class_weights(y: list[int], k: int, rule: str) -> torch.Tensor | None:
    """Per-class loss weights: ``balanced`` = n / (k * count) (scikit-learn's rule), ``sqrt``
    its square root; None for ``none``. A class absent from ``y`` gets weight 0."""
    if rule == "none":
        return None
    counts = torch.bincount(torch.as_tensor(y), minlength=k).float()
    w = torch.where(counts > 0, len(y) / (k * counts.clamp(min=1)), torch.zeros(()))
    return w.sqrt() if rule == "sqrt" else w


@dataclass
class Classification:
    """Single-label classification of token windows; evaluation per document."""

    windows: list[list[int]]  # training windows, special tokens included
    y: list[int]  # label of each window (its document's)
    val_docs: list[list[int]]  # validation documents, token ids without special tokens
    val_y: list[int]
    predictor: Any  # an inference Predictor over the model being trained (validation windows)
    metric: str = "accuracy"
    weight: torch.Tensor | None = None  # per-class loss weights (train.class_weight)
    soft: list[list[float]] | None = None  # per window: target distribution (vote_weight)

    @property
    def lengths(self) -> list[int]:
        return [len(w) for w in self.windows]

    def loss(self, model, idx, n, device, autocast) -> torch.Tensor:
        batch = collate([self.windows[i] for i in idx], self.predictor.pad_id,
                        pad_multiple(device))
        batch = {k: v.to(device) for k, v in batch.items()}
        if self.soft is None:
            labels = torch.as_tensor([self.y[i] for i in idx], device=device)
        else:  # probability targets: the loss is -sum_c weight_c * target_c * log p_c
            labels = torch.as_tensor([self.soft[i] for i in idx], device=device)
        with autocast():
            logits = model(**batch).logits
        weight = None if self.weight is None else self.weight.to(device)
        return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weight,
                                                 reduction="sum") / n

    def evaluate(self) -> tuple[dict, float]:
        pred = self.predictor.predict_tokens(self.val_docs)
        m = compute_metrics(self.val_y, pred.probs, self.predictor.labels)
        record = {"eval_loss": m["nll"], "eval_accuracy": m["accuracy"],
                  "eval_macro_f1": m["macro_f1"], "eval_ece": m["ece"]}
        return record, m[self.metric]
