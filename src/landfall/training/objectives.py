"""What the loop optimises and how it scores: one class per kind of training.

The loop (``training.loop``) knows nothing about labels or heads; it asks an objective for
the lengths of its training items (to batch them), the loss of a batch, and an evaluation.
A new kind of training (masked-LM pretraining, distillation) is a new class here, not a new
``if`` in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from landfall.data.batching import collate
from landfall.inference.predictor import Predictor
from landfall.tasks.classification import compute_metrics


class Objective(Protocol):
    lengths: list[int]  # one per training item, for length-grouped batching

    def loss(self, model, idx: list[int], n: int, device, autocast) -> torch.Tensor:
        """Loss of the items ``idx``, summed over them and divided by ``n`` (the step's items)."""

    def evaluate(self) -> tuple[dict, float]:
        """(record for metrics.jsonl, score where higher is better)."""


@dataclass
class Classification:
    """Single-label classification of token windows; evaluation per document."""

    windows: list[list[int]]  # training windows, special tokens included
    y: list[int]  # label of each window (its document's)
    val_docs: list[list[int]]  # validation documents, token ids without special tokens
    val_y: list[int]
    predictor: Predictor  # wraps the model being trained; makes the validation windows
    metric: str = "accuracy"

    @property
    def lengths(self) -> list[int]:
        return [len(w) for w in self.windows]

    def loss(self, model, idx, n, device, autocast) -> torch.Tensor:
        batch = collate([self.windows[i] for i in idx], self.predictor.pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = torch.as_tensor([self.y[i] for i in idx], device=device)
        with autocast():
            logits = model(**batch).logits
        return torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum") / n

    def evaluate(self) -> tuple[dict, float]:
        pred = self.predictor.predict_tokens(self.val_docs)
        m = compute_metrics(self.val_y, pred.probs, self.predictor.labels)
        record = {"eval_loss": m["nll"], "eval_accuracy": m["accuracy"],
                  "eval_macro_f1": m["macro_f1"], "eval_ece": m["ece"]}
        return record, m[self.metric]
