"""PNG plots of a run: training curves, confusion matrix, reliability diagram.

Every function writes its PNG atomically (a temporary file in the same folder, then
``os.replace``, via ``landfall.runs.atomic_path``), so a reader never sees a half-written image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from landfall.runs import atomic_path  # noqa: E402
from landfall.tasks.classification.metrics import (  # noqa: E402
    expected_calibration_error,
    reliability_bins,
)

_MAX_ANNOTATED = 30


def _save(fig: Figure, out_png: str | Path) -> Path:
    """Write ``fig`` to ``out_png`` atomically and close it."""
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(out_png)


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the records that carry ``key`` with a numeric value."""
    pts = [
        (float(r["step"]), float(r[key]))
        for r in records
        if isinstance(r.get(key), int | float) and isinstance(r.get("step"), int | float)
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_training_curves(records: Sequence[dict[str, Any]], out_png: str | Path) -> Path:
    """Loss (train line, eval markers) and eval accuracy / macro-F1 against the step."""
    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(11, 4))
    steps, loss = _series(records, "loss")
    if steps:
        ax_loss.plot(steps, loss, lw=1, label="train loss")
    steps, loss = _series(records, "eval_loss")
    if steps:
        ax_loss.plot(steps, loss, "o--", color="C3", label="eval loss")
    ax_loss.set(title="Loss", xlabel="step", ylabel="loss")
    for key, name in (("eval_accuracy", "accuracy"), ("eval_macro_f1", "macro-F1")):
        steps, vals = _series(records, key)
        if steps:
            ax_eval.plot(steps, vals, "o-", label=name)
    ax_eval.set(title="Evaluation", xlabel="step", ylabel="score")
    for ax in (ax_loss, ax_eval):
        if ax.has_data():
            ax.legend(loc="best")
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, out_png)


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    out_png: str | Path,
    title: str = "Confusion matrix (validation)",
) -> Path:
    """Heat-map of the confusion matrix, colours normalised per true-class row."""
    cm = np.asarray(confusion, dtype=np.float64)
    k = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = min(4 + 0.25 * k, 24)
    fig, ax = plt.subplots(figsize=(side, side * 0.85))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fontsize = 10 if k <= 10 else max(5, 10 - k // 10)
    ax.set_xticks(range(k), labels, rotation=90 if k > 10 else 0, fontsize=fontsize)
    ax.set_yticks(range(k), labels, fontsize=fontsize)
    ax.set(title=title, xlabel="predicted", ylabel="true")
    if k <= _MAX_ANNOTATED:
        for i, j in np.ndindex(cm.shape):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(
                j, i, f"{int(cm[i, j])}", ha="center", va="center", color=colour, fontsize=fontsize
            )
    return _save(fig, out_png)


def plot_pr_curves(y_true: Sequence[int], probs: np.ndarray, labels: Sequence[str],
                   out_png: str | Path) -> Path:
    """Each class's precision/recall curve (one-vs-rest, its own probability as the score),
    with its average precision and share: a rare class's trade-off at a glance."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = np.asarray(y_true)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for k, name in enumerate(labels):
        hit = y == k
        if not hit.any():
            continue
        prec, rec, _ = precision_recall_curve(hit, probs[:, k])
        ap = average_precision_score(hit, probs[:, k])
        ax.plot(rec, prec, label=f"{name} (AP {ap:.2f}, {hit.mean():.1%} of rows)")
    ax.set(title="Precision / recall per class (validation)", xlabel="recall",
           ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    return _save(fig, out_png)


def plot_reliability(
    y_true: Sequence[int], probs: np.ndarray, out_png: str | Path, n_bins: int = 15
) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with counts."""
    bins = reliability_bins(y_true, probs, n_bins)
    ece = expected_calibration_error(bins)
    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    lo = np.array([b["lo"] for b in bins])
    width = np.array([b["hi"] - b["lo"] for b in bins])
    acc = np.array([b["accuracy"] or 0.0 for b in bins])
    counts = np.array([b["count"] for b in bins])
    ax.bar(lo, acc, width=width, align="edge", edgecolor="black", alpha=0.8, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"Reliability (ECE = {ece:.3f})")
    ax.legend(loc="upper left")
    ax_n.bar(lo, counts, width=width, align="edge", color="gray", edgecolor="black")
    ax_n.set(xlabel="confidence (max probability)", ylabel="count")
    return _save(fig, out_png)


def plot_pareto(rows: Sequence[dict[str, Any]], out_png: str | Path, *, chosen: str = "",
                floor: float | None = None, x: str = "latency_ms_b1", y: str = "accuracy",
                x_label: str = "latency at batch 1 (ms, median)", y_label: str = "accuracy (%)",
                higher_x: bool = False) -> Path:
    """Quality (``y``, default accuracy) against speed (``x``, default batch-1 latency) of
    compression candidates; the Pareto front (no other candidate both better on ``x`` (lower,
    or higher with ``higher_x``) and on ``y``) joined by a line, ``floor`` (the lowest
    quality the budget allows) dashed."""
    pts = [(r[x], 100 * r[y], r["method"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lat, acc, name in pts:
        ax.scatter(lat, acc, s=60 if name == chosen else 30,
                   color="tab:red" if name == chosen else "tab:blue", zorder=3)
        ax.annotate(name, (lat, acc), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front, best = [], -np.inf
    for lat, acc, _ in sorted(pts, key=lambda p: -p[0] if higher_x else p[0]):
        if acc > best:
            front.append((lat, acc))
            best = acc
    ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:gray", lw=1, zorder=2,
            label="Pareto front")
    if floor is not None:
        ax.axhline(100 * floor, color="tab:red", ls="--", lw=1, label="quality budget")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title("Compression candidates" + (f" (chosen: {chosen})" if chosen else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, out_png)
