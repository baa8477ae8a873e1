"""Plots of a generation evaluation: systems side by side, per category, lengths."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from landfall.reports.plots import _save, plot_training_curves  # noqa: E402


def plot_generation(plots: Path, scores: dict, records, systems: dict[str, list[str]],
                    metrics: list[dict]) -> dict[str, str]:
    made = {}
    names = [n for n in scores if n != "reference"]
    keys = ["rouge1", "rouge2", "rougeL", "similarity"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        vals = [scores[name][k] for k in keys]
        bars = ax.bar(np.arange(len(keys)) + j * width, vals, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys)
    ax.set_ylim(0, 1)
    ax.set_title("Responses against the references (higher is better)")
    ax.legend(fontsize=8)
    _save(fig, plots / "systems.png")
    made["Systems side by side"] = "plots/systems.png"

    first = names[0]
    cats = scores[first]["per_category"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(cats) + 1.5))
    order = sorted(cats, key=lambda c: cats[c]["rougeL"])
    for j, name in enumerate(names[:2]):
        per = scores[name]["per_category"]
        ax.barh(np.arange(len(order)) + j * 0.4, [per[c]["rougeL"] for c in order], 0.4,
                label=name)
    ax.set_yticks(np.arange(len(order)) + 0.2, [f"{c} (n={cats[c]['n']})" for c in order])
    ax.set_xlabel("ROUGE-L")
    ax.set_title("ROUGE-L per category")
    ax.legend(fontsize=8)
    _save(fig, plots / "per_category.png")
    made["ROUGE-L per category"] = "plots/per_category.png"

    fig, ax = plt.subplots(figsize=(8, 4))
    refs = [len(r.response.split()) for r in records]
    top = max([*refs, *(len(t.split()) for t in systems[first])], default=1)
    bins = np.linspace(0, top + 1, 30)
    ax.hist(refs, bins=bins, alpha=0.5, label="reference")
    ax.hist([len(t.split()) for t in systems[first]], bins=bins, alpha=0.5, label=first)
    ax.set_xlabel("words per response")
    ax.legend()
    ax.set_title("Response lengths")
    _save(fig, plots / "lengths.png")
    made["Response lengths"] = "plots/lengths.png"
    if metrics:
        plot_training_curves(metrics, plots / "training_curves.png")
        made["Training curves"] = "plots/training_curves.png"
    return made
