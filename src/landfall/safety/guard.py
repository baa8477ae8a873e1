"""The harmful-content guard: a Landfall classifier run (e.g. ``examples/davidson-minilm.toml``)
that scores inputs (and a generation service's outputs); a text is harmful when the guard's
probability of the configured classes reaches the threshold. The service refuses (422) or
flags such a request (``landfall serve RUN --guard GUARD_RUN``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from landfall.errors import LandfallError


@dataclass
class Verdict:
    harmful: bool
    score: float  # probability of the harmful classes together
    label: str  # the likeliest of the harmful classes

    def to_json(self) -> dict:
        return {"harmful": self.harmful, "score": round(self.score, 4), "label": self.label}


class Guard:
    def __init__(self, predictor, labels: Sequence[str], threshold: float = 0.5,
                 source: str = "") -> None:
        unknown = [x for x in labels if x not in predictor.labels]
        if unknown or not labels:
            raise LandfallError(f"guard {source}: harmful classes {list(labels)} must be among "
                                f"its labels {predictor.labels}")
        self.predictor = predictor
        self.index = [predictor.labels.index(x) for x in labels]
        self.labels = list(labels)
        self.threshold = threshold
        self.source = source

    def check(self, texts: Sequence[str]) -> list[Verdict]:
        """A verdict per text; an empty text (an empty response) says nothing, so it is not
        harmful and never reaches the model."""
        out = [Verdict(False, 0.0, "") for _ in texts]
        said = [i for i, t in enumerate(texts) if t.strip()]
        if not said:
            return out
        probs = self.predictor.predict([texts[i] for i in said]).probs
        score = probs[:, self.index].sum(1)
        top = probs[:, self.index].argmax(1)  # the likeliest harmful class names the verdict
        for i, s, t in zip(said, score, top, strict=True):
            out[i] = Verdict(bool(s >= self.threshold), float(s), self.labels[int(t)])
        return out


def load_guard(run_dir: str | Path, labels: str = "hate_speech", threshold: float = 0.5,
               device: str | None = None) -> Guard:
    """A Guard over a classifier run; ``labels``: comma-separated harmful classes."""
    from landfall.inference.loading import load_run

    names = [x.strip() for x in labels.split(",") if x.strip()]
    return Guard(load_run(run_dir, device=device), names, threshold, str(run_dir))
