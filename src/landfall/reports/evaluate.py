"""Evaluate a run directory on labelled data; write JSON, plots and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from landfall import runs
from landfall.config import Config
from landfall.data.labels import encode_labels
from landfall.data.readers import read_examples
from landfall.inference.loading import load_run, run_config
from landfall.inference.rejection import fit_rule, load_rule
from landfall.reports.plots import (
    plot_confusion,
    plot_pr_curves,
    plot_reliability,
    plot_training_curves,
)
from landfall.tasks.classification.metrics import compute_metrics


def _plots(out_dir: Path, y: list[int], probs, metrics: dict, records: list | None) -> dict:
    plots_dir = out_dir / runs.PLOTS
    made = {}
    if records:
        plot_training_curves(records, plots_dir / "training_curves.png")
        made["Training curves"] = f"{runs.PLOTS}/training_curves.png"
    plot_confusion(metrics["confusion"], metrics["labels"], plots_dir / "confusion.png")
    made["Confusion matrix"] = f"{runs.PLOTS}/confusion.png"
    plot_reliability(y, probs, plots_dir / "reliability.png")
    made["Reliability diagram"] = f"{runs.PLOTS}/reliability.png"
    if len(metrics["labels"]) <= 10:  # few classes: each one's trade-off (imbalance)
        plot_pr_curves(y, probs, metrics["labels"], plots_dir / "pr_curves.png")
        made["Precision / recall per class"] = f"{runs.PLOTS}/pr_curves.png"
    return made


def evaluate_and_report(run_dir: Path, cfg: Config, data: Any, summary: dict) -> dict:
    """Final step of training: reload the best model from disk, evaluate, compare, report."""
    predictor = load_run(run_dir, batch_size=cfg.train.eval_batch_size)
    pred = predictor.predict_tokens(data.validation.docs, progress=True)
    metrics = compute_metrics(data.validation.y, pred.probs, data.labels)
    baseline = None
    if cfg.report.baseline:
        from landfall.baseline.nbsvm import run_baseline

        baseline = run_baseline(data.train.texts, data.train.y, data.validation.texts,
                                data.validation.y, data.labels, seed=cfg.train.seed)
    result = {
        "validation": metrics,
        "baseline": baseline,
        "train": summary,
        "data": {"train": data.train_source, "validation": data.validation_source,
                 "n_train": len(data.train.y), "n_validation": len(data.validation.y)},
    }
    oos = None
    if cfg.oos.label:  # calibrate the out-of-scope rule on validation
        oos = fit_rule(cfg.oos, pred, data.validation.y)
        runs.write_json(run_dir / runs.OOS, oos)
        result["oos"] = oos
    runs.write_json(run_dir / runs.EVAL, result)
    plots = {}
    if cfg.report.plots:
        records = runs.read_jsonl(run_dir / runs.METRICS)
        plots = _plots(run_dir, data.validation.y, pred.probs, metrics, records)
    from landfall.tasks.classification.report import write_report

    shown = cfg.to_dict()  # with ${VAR}s resolved, as the run read them
    shown["data"]["train"] = data.train_source
    if cfg.data.validation:
        shown["data"]["validation"] = data.validation_source
    write_report(run_dir, title=f"Landfall run: {run_dir.name}", config=shown,
                 eval_metrics=metrics, baseline=baseline, train_summary=summary, plots=plots,
                 oos=oos)
    return result


def evaluate(
    run_dir: str | Path,
    data: str | Path,
    output: str | Path | None = None,
    *,
    text_field: str | None = None,
    label_field: str | None = None,
    batch_size: int = 64,
    overrides: list[str] | None = None,
    engine: Any = None,
) -> dict:
    """Accuracy, macro-F1, per-class P/R, ECE and confusion of a run on a labelled file
    (plus in-scope accuracy and oos recall/precision when the run has an ``oos.json``).
    ``overrides`` (e.g. ``data.truncation=sliding``) change the long-text strategy;
    ``engine`` (``inference.chunks``: Ray's, ``landfall.scale.ray_batch``) scores the texts
    chunk by chunk elsewhere, to the same figures."""
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    tf = text_field or cfg.data.text_field
    lf = label_field or cfg.data.label_field
    predictor = load_run(run_dir, batch_size=batch_size, overrides=overrides)
    examples = read_examples(data, text_field=tf, label_field=lf,
                             label_names=cfg.data.names())
    y = encode_labels(examples, predictor.labels, label_field=lf)
    texts = [e.text for e in examples]
    if engine is None:
        pred = predictor.predict(texts, progress=True)
    else:
        from landfall.inference.predict import predict_chunked

        pred = predict_chunked(predictor, run_dir, texts, batch_size=batch_size,
                               overrides=overrides, engine=engine)
    metrics = compute_metrics(y, pred.probs, predictor.labels)
    out_dir = Path(output) if output else run_dir / f"eval-{Path(str(data)).name.split('.')[0]}"
    result = {"data": str(data), "run": str(run_dir), "metrics": metrics,
              "strategy": overrides or []}
    rule = load_rule(run_dir)
    if rule:
        result["oos"] = rule.evaluate(pred, y)
    runs.write_json(out_dir / runs.EVAL, result)
    result["plots"] = {k: str(out_dir / v) for k, v in _plots(out_dir, y, pred.probs, metrics,
                                                                 None).items()}
    result["output"] = str(out_dir)
    return result
