"""Metrics, plots, report and the classic baseline, on small synthetic or real inputs."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from landfall.errors import DataError
from landfall.reports.plots import plot_confusion, plot_reliability, plot_training_curves
from landfall.tasks.classification.metrics import compute_metrics, reliability_bins
from landfall.tasks.classification.report import write_report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _onehotish(pred: list[int], k: int, p: float = 0.7) -> np.ndarray:
    """Probabilities with ``p`` on the predicted class and the rest spread evenly."""
    probs = np.full((len(pred), k), (1 - p) / (k - 1))
    probs[np.arange(len(pred)), pred] = p
    return probs


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 100 and path.read_bytes()[:8] == PNG_MAGIC


# -- metrics -------------------------------------------------------------------------------


def test_metrics_known_case() -> None:
    y = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    probs = _onehotish(pred, 3)
    m = compute_metrics(y, probs, ["a", "b", "c"])
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # per class: a P=1/2 R=1/2, b P=2/3 R=1, c P=1 R=1/2
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["a"]["support"] == 2
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    nll = -np.mean([math.log(0.7 if t == p else 0.15) for t, p in zip(y, pred, strict=True)])
    assert m["nll"] == pytest.approx(nll)
    assert m["labels"] == ["a", "b", "c"]
    json.dumps(m)  # JSON-serialisable


def test_metrics_absent_class_keeps_its_row() -> None:
    m = compute_metrics([0, 1, 1], _onehotish([0, 1, 0], 4), ["a", "b", "c", "d"])
    assert len(m["confusion"]) == 4 and all(len(r) == 4 for r in m["confusion"])
    assert m["confusion"][3] == [0, 0, 0, 0]
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # classes absent from gold and predictions do not drag macro-F1 down
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_ece_zero_when_calibrated_by_construction() -> None:
    # bin at confidence 0.8 with 8/10 right, bin at 0.6 with 3/5 right
    y = [0] * 8 + [1] * 2 + [1] * 3 + [0] * 2
    probs = np.array([[0.8, 0.2]] * 10 + [[0.4, 0.6]] * 5)
    m = compute_metrics(y, probs, ["neg", "pos"])
    assert m["ece"] == pytest.approx(0.0, abs=1e-12)
    bins = [b for b in reliability_bins(y, probs, 10) if b["count"]]
    assert [b["count"] for b in bins] == [5, 10]
    assert bins[1]["accuracy"] == pytest.approx(0.8)


def test_ece_positive_when_overconfident() -> None:
    y = [0, 1] * 10
    probs = np.array([[0.99, 0.01]] * 20)  # always "neg" at 99 %, right half of the time
    m = compute_metrics(y, probs, ["neg", "pos"])
    assert m["ece"] == pytest.approx(0.49)
    bins = reliability_bins(y, probs, 15)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 20
    assert bins[-1]["count"] == 20 and bins[0]["accuracy"] is None


def test_metrics_rejects_out_of_range_label() -> None:
    with pytest.raises(DataError):
        compute_metrics([0, 2], _onehotish([0, 1], 2), ["a", "b"])


# -- plots ---------------------------------------------------------------------------------


def test_plot_training_curves(tmp_path: Path) -> None:
    records = [{"step": s, "loss": 1.0 / s, "lr": 1e-5, "samples_per_s": 50.0} for s in (1, 2, 3)]
    records += [{"step": 3, "eval_loss": 0.4, "eval_accuracy": 0.8, "eval_macro_f1": 0.79}]
    out = plot_training_curves(records, tmp_path / "plots" / "curves.png")
    assert _is_png(out)
    # train records only (no evaluation yet), and no records at all
    assert _is_png(plot_training_curves(records[:3], tmp_path / "train_only.png"))
    assert _is_png(plot_training_curves([], tmp_path / "empty.png"))
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp leftovers


def test_plot_confusion_small_and_many_classes(tmp_path: Path) -> None:
    assert _is_png(plot_confusion([[5, 1], [0, 4]], ["neg", "pos"], tmp_path / "c2.png"))
    k = 40
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 5, size=(k, k))
    cm[3] = 0  # a class absent from validation
    labels = [f"intent_{i}" for i in range(k)]
    assert _is_png(plot_confusion(cm.tolist(), labels, tmp_path / "c40.png", title="many"))


def test_plot_reliability(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=200)
    y = rng.integers(0, 3, size=200).tolist()
    assert _is_png(plot_reliability(y, probs, tmp_path / "rel.png", n_bins=10))


# -- report --------------------------------------------------------------------------------


def _metrics() -> dict:
    return compute_metrics([0, 0, 1, 1], _onehotish([0, 1, 1, 1], 2, 0.9), ["neg", "pos"])


def test_report_has_baseline_row_verdict_and_images(tmp_path: Path) -> None:
    base = {
        "name": "nbsvm-uni+bigram",
        "train_seconds": 12.3,
        "metrics": compute_metrics([0, 0, 1, 1], _onehotish([0, 1, 0, 1], 2), ["neg", "pos"]),
    }
    config = {
        "model": {"name": "tiny-bert", "dropout": 0.1},
        "data": {"train": "imdb.jsonl"},
        "train": {"lr": 3e-5, "precision": "auto", "extra": None},
    }
    plots = {"confusion": "plots/confusion.png", "reliability": "plots/reliability.png"}
    out = write_report(
        tmp_path,
        title="IMDb run",
        config=config,
        eval_metrics=_metrics(),
        baseline=base,
        train_summary={"train_seconds": 61.0, "samples_per_s": 42.5},
        plots=plots,
    )
    text = out.read_text()
    assert out == tmp_path / "report.md"
    assert text.startswith("# IMDb run")
    assert "| nbsvm-uni+bigram (baseline) | 50.00 %" in text
    assert "| tiny-bert | 75.00 %" in text and "42.5" in text
    assert "beats the baseline by 25.00" in text
    assert "![confusion](plots/confusion.png)" in text
    assert "![reliability](plots/reliability.png)" in text
    assert "[train]" in text and 'precision = "auto"' in text
    assert "| pos |" in text  # per-class table


def test_report_tolerates_missing_parts(tmp_path: Path) -> None:
    out = write_report(
        tmp_path,
        title="bare",
        config={},
        eval_metrics=_metrics(),
        baseline=None,
        train_summary=None,
        plots={},
    )
    text = out.read_text()
    assert "75.00 %" in text and "baseline" not in text and "![" not in text


# -- baseline ------------------------------------------------------------------------------


@pytest.mark.skipif(not (DATA / "imdb" / "train.jsonl.gz").exists(), reason="no shared data")
def test_baseline_on_imdb_slice() -> None:
    from sklearn.model_selection import train_test_split

    from landfall.baseline.nbsvm import run_baseline

    with gzip.open(DATA / "imdb" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    pick = np.random.default_rng(0).choice(len(rows), size=2000, replace=False)
    texts = [rows[i]["text"] for i in pick]
    y = [int(rows[i]["label"] == "pos") for i in pick]
    tx, vx, ty, vy = train_test_split(texts, y, test_size=0.2, stratify=y, random_state=0)
    out = run_baseline(tx, ty, vx, vy, ["neg", "pos"])
    assert out["name"] == "nbsvm-uni+bigram" and out["train_seconds"] > 0
    assert out["metrics"]["n"] == 400
    assert out["metrics"]["accuracy"] > 0.75


def test_non_finite_probabilities_are_a_clear_error():
    import numpy as np

    from landfall.errors import LandfallError

    with pytest.raises(LandfallError, match="non-finite probabilities"):
        compute_metrics([0, 1], np.array([[0.5, np.nan], [0.2, 0.8]]), ["a", "b"])
