"""Out-of-scope (OOS) rejection for intent detection: scores, threshold, metrics.

Pure numpy. A score says how in-scope a text looks (higher = more in-scope); a text whose
score falls below a threshold calibrated on validation is rejected as out-of-scope.

* ``max_prob``: the largest softmax probability over the in-scope classes (renormalised
  without the oos class when the model has one).
* ``energy``: the negative energy, ``logsumexp`` of the in-scope logits (Liu et al., 2020).

Label ids: the oos class is ``labels.index(oos_label)`` when the model has one, else the extra
id ``len(labels)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landfall.errors import LandfallError
from landfall.tasks.classification.config import OOSConfig

SCORE_METHODS = ("max_prob", "energy")


def oos_index(labels: Sequence[str], oos_label: str) -> int:
    """The id of the oos label: its column, or ``len(labels)`` when the model has none."""
    labels = list(labels)
    return labels.index(oos_label) if oos_label in labels else len(labels)


def in_scope_columns(labels: Sequence[str], oos_label: str) -> np.ndarray:
    """Indices of the in-scope classes (every label but ``oos_label``)."""
    return np.array([i for i, lab in enumerate(labels) if lab != oos_label], dtype=np.int64)


def _logits(logits: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(labels):
        raise ValueError(f"logits must have shape (n, {len(labels)}), got {z.shape}")
    return z


def scores(
    logits: np.ndarray, labels: Sequence[str], oos_label: str, method: str
) -> np.ndarray:
    """How in-scope each row looks (higher = more in-scope), over the in-scope classes only."""
    z = _logits(logits, labels)[:, in_scope_columns(labels, oos_label)]
    if z.shape[1] == 0:
        raise ValueError("no in-scope classes")
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    if method == "max_prob":
        return np.exp(top[:, 0] - lse)  # max softmax probability = exp(max - logsumexp)
    if method == "energy":
        return lse
    raise ValueError(f"unknown oos score method {method!r} (known: {', '.join(SCORE_METHODS)})")


def in_scope_argmax(logits: np.ndarray, labels: Sequence[str], oos_label: str) -> np.ndarray:
    """The most likely in-scope class of each row (ids into ``labels``)."""
    cols = in_scope_columns(labels, oos_label)
    return cols[_logits(logits, labels)[:, cols].argmax(axis=1)]


def predict_ids(
    logits: np.ndarray,
    labels: Sequence[str],
    oos_label: str,
    method: str,
    threshold: float | None,
) -> np.ndarray:
    """Label ids with rejection: ``class`` = plain argmax; otherwise the in-scope argmax,
    replaced by the oos id where the score is below ``threshold``."""
    if method == "class":
        return _logits(logits, labels).argmax(axis=1)
    if threshold is None:
        raise ValueError(f"method {method!r} needs a threshold")
    s = scores(logits, labels, oos_label, method)
    return np.where(s < threshold, oos_index(labels, oos_label),
                    in_scope_argmax(logits, labels, oos_label))


def _candidates(s: np.ndarray) -> np.ndarray:
    """Thresholds between consecutive distinct scores, plus reject-none and reject-all."""
    u = np.unique(s)
    mid = (u[:-1] + u[1:]) / 2
    mid = np.where(mid > u[:-1], mid, u[1:])  # adjacent floats: the midpoint rounds down
    return np.concatenate([u[:1], mid, [np.nextafter(u[-1], np.inf)]])


def _curves(
    s: np.ndarray, y: np.ndarray, pred: np.ndarray, oos_id: int, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """In-scope accuracy and oos recall at each threshold of ``t`` (reject when s < t)."""
    is_oos = y == oos_id
    kept_right = np.sort(s[~is_oos & (pred == y)])
    in_acc = (len(kept_right) - np.searchsorted(kept_right, t, side="left")) / (~is_oos).sum()
    already = int((is_oos & (pred == oos_id)).sum())  # predicted oos whatever the threshold
    oos_scores = np.sort(s[is_oos & (pred != oos_id)])
    recall = (already + np.searchsorted(oos_scores, t, side="left")) / is_oos.sum()
    return in_acc, recall


def calibrate(
    scores: np.ndarray,
    y_true: Sequence[int],
    in_scope_pred: Sequence[int],
    oos_id: int,
    target_recall: float = 0.0,
) -> float:
    """The rejection threshold (reject when score < threshold) chosen on validation.

    ``in_scope_pred`` is each row's prediction before rejection. ``target_recall`` 0: the
    threshold maximising the mean of in-scope accuracy and oos recall; > 0: the threshold with
    the highest in-scope accuracy whose oos recall reaches ``target_recall``. Ties go to the
    lowest threshold (fewest rejections).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(in_scope_pred, dtype=np.int64).reshape(-1)
    if not (s.shape == y.shape == pred.shape):
        raise ValueError(f"shapes differ: scores {s.shape}, y_true {y.shape}, pred {pred.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if not 0.0 <= target_recall <= 1.0:
        raise ValueError(f"target_recall must be in [0, 1], got {target_recall}")
    n_oos = int((y == oos_id).sum())
    if n_oos == 0 or n_oos == len(y):
        raise ValueError("calibration needs both in-scope and out-of-scope examples")
    t = _candidates(s)
    in_acc, recall = _curves(s, y, pred, oos_id, t)
    if target_recall > 0:
        objective = np.where(recall >= target_recall - 1e-12, in_acc, -1.0)
    else:
        objective = (in_acc + recall) / 2
    return float(t[int(np.argmax(objective))])


def oos_metrics(y_true: Sequence[int], y_pred: Sequence[int], oos_id: int) -> dict[str, float]:
    """In-scope accuracy, oos recall, precision and F1 (0.0 where a denominator is empty)."""
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"{y.shape[0]} labels but {p.shape[0]} predictions")
    true_oos, pred_oos = y == oos_id, p == oos_id
    hits = int((true_oos & pred_oos).sum())

    def ratio(a: float, b: float) -> float:
        return float(a / b) if b else 0.0

    recall = ratio(hits, int(true_oos.sum()))
    precision = ratio(hits, int(pred_oos.sum()))
    return {
        "in_scope_accuracy": ratio(int((~true_oos & (p == y)).sum()), int((~true_oos).sum())),
        "oos_recall": recall,
        "oos_precision": precision,
        "oos_f1": ratio(2 * precision * recall, precision + recall) if hits else 0.0,
        "n_in_scope": int((~true_oos).sum()),
        "n_oos": int(true_oos.sum()),
    }


def check_oos_data(cfg: OOSConfig, labels: Sequence[str], y_val: Sequence[int],
                   source: str) -> None:
    """Before training: the oos label must be a training label and occur in validation."""
    if not cfg.label:
        return
    if cfg.label not in labels:
        raise LandfallError(
            f"oos.label={cfg.label!r} is not a label of the training data ({source}); "
            "out-of-scope calibration needs examples labelled with it"
        )
    oos_id = list(labels).index(cfg.label)
    n_oos = sum(1 for y in y_val if y == oos_id)
    if n_oos == 0 or n_oos == len(y_val):
        raise LandfallError(
            f"oos.label={cfg.label!r}: the validation split needs both in-scope examples and "
            f"examples labelled {cfg.label!r} to calibrate the rejection threshold"
        )
