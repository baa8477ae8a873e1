"""Metrics for single-label text classification.

``compute_metrics`` turns gold labels and predicted class probabilities into one
JSON-serialisable dict (accuracy, macro-F1, per-class scores, calibration, log loss,
confusion matrix). The scores come from scikit-learn; the expected calibration error,
which scikit-learn lacks, is computed here from ``reliability_bins``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from landfall.errors import DataError, LandfallError


def _check_inputs(y_true: Sequence[int], probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and label range; return int labels and row-normalised float64 probs."""
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be a 2-D array (n, k), got shape {p.shape}")
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"{y.shape[0]} labels but {p.shape[0]} rows of probabilities")
    if y.shape[0] == 0:
        raise DataError("no examples to evaluate")
    k = p.shape[1]
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise DataError(f"label id {int(y[bad][0])} is outside the {k} classes of the model")
    if not np.isfinite(p).all():
        raise LandfallError("the model produced non-finite probabilities (NaN or inf): its "
                            "weights are damaged or training diverged; nothing was written")
    if (p < 0).any():
        raise ValueError("probs must be non-negative")
    sums = p.sum(axis=1, keepdims=True)
    if (sums <= 0).any():
        raise ValueError("every row of probs must have a positive sum")
    return y, p / sums


def reliability_bins(
    y_true: Sequence[int], probs: np.ndarray, n_bins: int = 15
) -> list[dict[str, Any]]:
    """Bin the max-probability (confidence) into ``n_bins`` equal-width bins on [0, 1].

    Bin ``i`` holds confidences in ``(lo, hi]`` (the first also holds 0). Each bin reports
    its ``count``, mean ``confidence`` and ``accuracy``; both are ``None`` for empty bins.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    y, p = _check_inputs(y_true, probs)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    bins: list[dict[str, Any]] = []
    for i in range(n_bins):
        mask = idx == i
        count = int(mask.sum())
        bins.append(
            {
                "lo": float(edges[i]),
                "hi": float(edges[i + 1]),
                "count": count,
                "confidence": float(conf[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(bins: list[dict[str, Any]]) -> float:
    """ECE: the count-weighted mean gap between accuracy and confidence over the bins."""
    n = sum(b["count"] for b in bins)
    if n == 0:
        return 0.0
    gap = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])
    return float(gap / n)


def compute_metrics(
    y_true: Sequence[int], probs: np.ndarray, labels: list[str], n_bins: int = 15
) -> dict[str, Any]:
    """Score predictions (argmax of ``probs``) against ``y_true``; a JSON-serialisable dict."""
    y, p = _check_inputs(y_true, probs)
    k = p.shape[1]
    if len(labels) != k:
        raise ValueError(f"{len(labels)} label names for {k} columns of probabilities")
    if k < 2:
        raise ValueError("classification needs at least 2 classes")
    classes = list(range(k))
    pred = p.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(
        y, pred, labels=classes, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(labels)
    }
    # Macro-F1 averages over the classes seen in gold or predictions: a class absent from both
    # (common in a small validation split of 77 intents) says nothing and would only score 0.
    seen = sorted(set(y.tolist()) | set(pred.tolist()))
    return {
        "n": int(y.shape[0]),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=seen, average="macro", zero_division=0)),
        "per_class": per_class,
        "ece": expected_calibration_error(reliability_bins(y, p, n_bins)),
        "nll": float(log_loss(y, p, labels=classes)),
        "confusion": confusion_matrix(y, pred, labels=classes).tolist(),
        "labels": list(labels),
    }
