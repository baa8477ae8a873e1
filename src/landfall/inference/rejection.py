"""A run's out-of-scope rule (``oos.json``): calibrate it, read it, apply it to predictions."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landfall import runs
from landfall.errors import LandfallError
from landfall.inference.predictor import Prediction
from landfall.tasks.classification import oos
from landfall.tasks.classification.config import OOS_METHODS, OOSConfig


def _logits(pred: Prediction) -> np.ndarray:
    """The prediction's logits (log-probabilities when it carries none: same softmax)."""
    if pred.logits is not None:
        return np.asarray(pred.logits, dtype=np.float64)
    return np.log(np.clip(np.asarray(pred.probs, dtype=np.float64), 1e-300, None))


@dataclass(frozen=True)
class OOSRule:
    """Reject as ``label`` when the score of ``method`` is below ``threshold``."""

    label: str
    method: str
    threshold: float | None = None

    def oos_id(self, labels: Sequence[str]) -> int:
        return oos.oos_index(labels, self.label)

    def label_names(self, labels: Sequence[str]) -> list[str]:
        """Names for the ids of ``label_ids`` (the oos label appended if the model lacks it)."""
        return list(labels) if self.label in labels else [*labels, self.label]

    def label_ids(self, pred: Prediction) -> np.ndarray:
        return oos.predict_ids(_logits(pred), pred.labels, self.label, self.method,
                               self.threshold)

    def scores(self, pred: Prediction) -> np.ndarray | None:
        """Each document's in-scope score (None for the ``class`` method)."""
        if self.method == "class":
            return None
        return oos.scores(_logits(pred), pred.labels, self.label, self.method)

    def evaluate(self, pred: Prediction, y: Sequence[int]) -> dict[str, Any]:
        """The rule and its in-scope accuracy / oos recall, precision, F1 against ``y``."""
        metrics = oos.oos_metrics(y, self.label_ids(pred), self.oos_id(pred.labels))
        return {"label": self.label, "method": self.method, "threshold": self.threshold,
                **metrics}


def fit_rule(cfg: OOSConfig, pred: Prediction, y: Sequence[int]) -> dict[str, Any]:
    """Calibrate the rule on validation predictions; the content of ``oos.json``."""
    labels = pred.labels
    if cfg.label not in labels:
        raise LandfallError(f"oos.label={cfg.label!r} is not one of the model's labels")
    threshold = None
    if cfg.method != "class":
        logits = _logits(pred)
        threshold = oos.calibrate(
            oos.scores(logits, labels, cfg.label, cfg.method), y,
            oos.in_scope_argmax(logits, labels, cfg.label), oos.oos_index(labels, cfg.label),
            cfg.target_recall,
        )
    rule = OOSRule(cfg.label, cfg.method, threshold)
    result = rule.evaluate(pred, y)
    return {"label": rule.label, "method": rule.method, "threshold": rule.threshold,
            "target_recall": cfg.target_recall,
            "validation": {k: v for k, v in result.items() if k not in ("label", "method",
                                                                          "threshold")}}


def load_rule(run_dir: str | Path) -> OOSRule | None:
    """The rule in ``run_dir/oos.json``, or None when the run has none."""
    path = Path(run_dir) / runs.OOS
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LandfallError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LandfallError(f"{path}: expected a JSON object")
    label, method, threshold = data.get("label"), data.get("method"), data.get("threshold")
    if not isinstance(label, str) or not label:
        raise LandfallError(f"{path}: field 'label' must be a non-empty string")
    if method not in OOS_METHODS:
        raise LandfallError(f"{path}: field 'method' must be one of {OOS_METHODS}, "
                            f"got {method!r}")
    if method != "class":
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not math.isfinite(threshold):
            raise LandfallError(f"{path}: field 'threshold' must be a finite number for "
                                f"method {method!r}, got {threshold!r}")
        threshold = float(threshold)
    return OOSRule(label, method, threshold if method != "class" else None)
