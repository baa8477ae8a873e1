"""What a prediction means to a caller: one row per text — label (the run's out-of-scope rule
applied), class probabilities, window count and oos score. ``predict`` and the server both
answer with these rows."""

from __future__ import annotations

from pathlib import Path

from landfall.inference.predictor import Prediction
from landfall.inference.rejection import OOSRule, load_rule


class Labeller:
    """Turns Predictions into rows, with the run's ``oos.json`` rule when it has one."""

    def __init__(self, rule: OOSRule | None = None) -> None:
        self.rule = rule

    @classmethod
    def for_run(cls, run_dir: str | Path) -> Labeller:
        return cls(load_rule(run_dir))

    def rows(self, pred: Prediction) -> list[dict]:
        labels, rule = pred.labels, self.rule
        names = rule.label_names(labels) if rule else labels
        ids = rule.label_ids(pred) if rule else pred.label_ids
        scores = rule.scores(pred) if rule else None
        out = []
        for i, (p, w) in enumerate(zip(pred.probs, pred.windows, strict=True)):
            row = {"label": names[int(ids[i])],
                   "probs": {lab: round(float(q), 6) for lab, q in zip(labels, p, strict=True)},
                   "windows": int(w)}
            if scores is not None:
                row["oos_score"] = round(float(scores[i]), 6)
            out.append(row)
        return out
