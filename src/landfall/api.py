"""The Python API. ``landfall.train(cfg, output)`` does what ``landfall train`` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from landfall.config import Config, build_config
from landfall.compression.merge import export_merged
from landfall.inference.assemble import build_ensemble
from landfall.inference.predict import predict_file as predict
from landfall.training.run import train

# The main job's budget: about 10 minutes on 2 CPU cores (see README).
DEMO = {
    "data": {"limit": 3400, "validation_fraction": 0.25, "max_length": 256,
             "truncation": "head+tail"},
    "train": {"epochs": 1.0, "batch_size": 16, "lr": 5e-5, "eval_every": 0},
}


def evaluate(run_dir: str | Path, data: str | Path, output: str | Path | None = None,
             **kw) -> dict:
    """Score a run on a labelled file: a classifier's accuracy, macro-F1, calibration... (see
    ``reports.evaluate.evaluate``); a causal-LM run's ROUGE, embedding similarity, lengths and
    entity carry-over beside the baselines (``reports.generation.evaluate_generation``: takes
    ``limit`` and ``baselines``)."""
    from landfall.inference.loading import run_task

    if run_task(run_dir).head == "generate":
        from landfall.reports.generation import evaluate_generation

        return evaluate_generation(run_dir, data, output, **kw)
    from landfall.reports.evaluate import evaluate as evaluate_classifier

    return evaluate_classifier(run_dir, data, output, **kw)


def generate(run_dir: str | Path, input: str | Path, output: str | Path, *,
             text_field: str | None = None, overrides: list[str] | None = None) -> dict:
    """Write a response to every request of ``input`` (JSONL rows in input order); streamed
    and resumable; ``overrides`` are ``generate.FIELD=VALUE`` (sampling, stop strings...)."""
    from landfall.inference.generate import generate_file

    return generate_file(run_dir, input, output, text_field=text_field, overrides=overrides)


def pretrain(cfg: Config | None, output: str | Path, *, resume: bool = False) -> dict:
    """Masked-LM (continued) pretraining: ``train`` with ``task.name = "mlm"``."""
    if cfg is not None:
        cfg.task.name = "mlm"
    return train(cfg, output, resume=resume)


def ensemble(
    runs: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None
) -> dict:
    """Combine runs (seeds, folds) into a self-contained ensemble directory at ``output``
    that averages their class probabilities (weighted); returns its manifest."""
    return build_ensemble(runs, output, weights)


def export_onnx(run_dir: str | Path, output: str | Path, *, quantize: str = "none",
                calibration: str | Path | None = None, calibration_size: int = 256,
                keep_float: Sequence[str] = ()) -> Path:
    """Write ``output``: the run as an ONNX Runtime run directory (fp32, or int8 dynamic /
    static). Static quantisation calibrates on a seeded sample of ``calibration`` (default:
    the run's own training file). ``keep_float`` names model parts (``embeddings``,
    ``layer.<i>``, ``head``) left in fp32."""
    from landfall.compression.onnx_export import calibration_texts
    from landfall.compression.onnx_export import export_onnx as export
    from landfall.inference.loading import run_config

    texts: list[str] = []
    if quantize == "static":
        texts = calibration_texts(run_config(run_dir), calibration, calibration_size)
    return export(run_dir, output, quantize=quantize, calibration_texts=texts,
                  keep_float=keep_float)


def compress(run_dir: str | Path, data: str, output: str | Path, *, max_drop: float = 0.5,
             methods: Sequence[str] | None = None, include: Sequence[str | Path] = (),
             limit: int = 0, latency_docs: int = 50, calibration: str | Path | None = None,
             calibration_size: int = 256, overrides: Sequence[str] = ()) -> dict:
    """Try compression recipes on ``run_dir``, measure each on ``data`` here, and write the
    smallest within ``max_drop`` accuracy points as the run directory ``output`` (with the
    table, JSON and Pareto plot under ``output/compress/``)."""
    from landfall.compression.pipeline import compress as run

    return run(run_dir, data, output, max_drop=max_drop, methods=methods, include=include,
               limit=limit, latency_docs=latency_docs, calibration=calibration,
               calibration_size=calibration_size, overrides=overrides)


def prune(run_dir: str | Path, output: str | Path, overrides: list[str] | None = None) -> dict:
    """Remove the least important heads and FFN neurons (``prune.*`` settings) and fine-tune
    briefly to recover; writes the run directory ``output`` and returns its evaluation."""
    from landfall.compression.prune import prune_run

    return prune_run(run_dir, output, overrides)


def distill(teacher: str | Path, output: str | Path, *, config: str | Path | None = None,
            overrides: list[str] | None = None) -> dict:
    """Train a smaller student (``distill.*`` settings) on the teacher run's soft targets;
    writes the run directory ``output`` and returns its evaluation."""
    from landfall.compression.distill import distill as run

    return run(teacher, output, config=config, overrides=overrides)


def serve(run_dir: str | Path, settings: dict | None = None) -> None:
    """Serve ``run_dir`` over HTTP until SIGINT/SIGTERM; ``settings`` are ``[serve]`` fields.
    ``landfall.serving.app.create_app`` gives the FastAPI app itself (for tests, ASGI hosts)."""
    from landfall.config import build_config
    from landfall.serving.app import serve as run

    run(run_dir, build_config({"serve": settings or {}}).serve)


def demo_config(overrides: list[str] | None = None) -> Config:
    from landfall.data.sources import imdb_train

    data = {k: dict(v) for k, v in DEMO.items()}
    data["data"]["train"] = imdb_train()
    return build_config(data, overrides, source="demo")


def demo(output: str | Path = "runs/demo", overrides: list[str] | None = None) -> dict:
    """Fine-tune MiniLM on a slice of IMDb and report; returns the final evaluation."""
    return train(demo_config(overrides), output)


__all__ = ["train", "pretrain", "generate", "export_merged", "export_onnx", "evaluate", "predict",
           "ensemble", "compress", "prune", "distill", "serve", "demo", "demo_config", "Config"]
