"""Several fine-tuned runs as one predictor: the weighted mean of their class probabilities.

An ensemble directory holds ``ensemble.json`` (members, weights, labels) and a copy of each
member under ``members/<i>/`` (``model/`` and ``landfall.toml``), so it moves on its own.
``load_run`` returns an ``EnsemblePredictor`` for such a directory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landfall import runs
from landfall.errors import LandfallError
from landfall.inference.predictor import Prediction, Predictor


def is_ensemble(path: str | Path) -> bool:
    return (Path(path) / runs.ENSEMBLE).is_file()


def normalise_weights(weights: Sequence[float] | None, n: int, where: str = "weights") -> list:
    """Weights that sum to 1 (equal without ``weights``); non-negative, one per member."""
    if weights is None:
        return [1.0 / n] * n
    w = list(weights)
    if len(w) != n:
        raise LandfallError(f"{where}: {len(w)} weights for {n} members")
    if any(isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x)
           or x < 0 for x in w):
        raise LandfallError(f"{where}: weights must be finite numbers >= 0, got {w}")
    total = float(sum(w))
    if total <= 0:
        raise LandfallError(f"{where}: weights must not all be 0")
    return [float(x) / total for x in w]


def read_manifest(path: str | Path) -> dict[str, Any]:
    """``ensemble.json`` of an ensemble directory, checked."""
    file = Path(path) / runs.ENSEMBLE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LandfallError(f"{file}: cannot read: {exc}") from None
    members = data.get("members") if isinstance(data, dict) else None
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(members, list) or not members or \
            not all(isinstance(m, dict) and isinstance(m.get("path"), str) for m in members):
        raise LandfallError(f"{file}: field 'members' must be a non-empty list of "
                            "{\"path\": ...} objects")
    root = Path(path).resolve()
    for m in members:  # a member must be a folder inside the ensemble, never the ensemble
        where = (root / m["path"]).resolve()
        if Path(m["path"]).is_absolute() or root not in where.parents:
            raise LandfallError(f"{file}: member path {m['path']!r} must be a folder inside "
                                f"{path} (members/<i>)")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise LandfallError(f"{file}: field 'labels' must be a list of strings")
    data["weights"] = normalise_weights(data.get("weights"), len(members), f"{file}: 'weights'")
    return data


def member_dirs(path: str | Path) -> list[Path]:
    """The member directories of an ensemble, in order."""
    return [Path(path) / m["path"] for m in read_manifest(path)["members"]]


class EnsemblePredictor:
    """Average the class probabilities of several predictors that share one label list.

    Same surface as ``Predictor`` for its callers: ``labels`` and ``predict``. The returned
    ``Prediction.logits`` are the log of the averaged probabilities, ``windows`` the most any
    member used (members may tokenise differently).
    """

    def __init__(self, members: Sequence[Predictor | EnsemblePredictor],
                 weights: Sequence[float] | None = None,
                 labels: Sequence[str] | None = None) -> None:
        if not members:
            raise LandfallError("an ensemble needs at least one member")
        self.members = list(members)
        self.labels = list(labels) if labels is not None else list(self.members[0].labels)
        for i, m in enumerate(self.members):
            if list(m.labels) != self.labels:
                raise LandfallError(f"ensemble member {i} has labels {m.labels}, "
                                    f"expected {self.labels}")
        self.weights = np.asarray(normalise_weights(weights, len(self.members)))

    def predict(
        self, texts: Sequence[str], progress: bool = False, cache: bool = False
    ) -> Prediction:
        preds = [m.predict(texts, progress=progress, cache=cache) for m in self.members]
        probs = sum(w * np.asarray(p.probs, dtype=np.float64)
                    for w, p in zip(self.weights, preds, strict=True))
        windows = np.max(np.stack([p.windows for p in preds]), axis=0)
        logits = np.log(np.clip(probs, 1e-300, None))
        return Prediction(probs, windows, self.labels, logits)
