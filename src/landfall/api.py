"""The Python API. ``landfall.train(cfg, output)`` does what ``landfall train`` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from landfall.config import Config, build_config
from landfall.inference.adapters import export_merged
from landfall.inference.assemble import build_ensemble
from landfall.inference.predict import predict_file as predict
from landfall.reports.evaluate import evaluate
from landfall.training.finetune import train
from landfall.training.pretrain import pretrain

# The main job's budget: about 10 minutes on 2 CPU cores (see README).
DEMO = {
    "data": {"limit": 3400, "validation_fraction": 0.25, "max_length": 256,
             "truncation": "head+tail"},
    "train": {"epochs": 1.0, "batch_size": 16, "lr": 5e-5, "eval_every": 0},
}


def ensemble(
    runs: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None
) -> dict:
    """Combine runs (seeds, folds) into a self-contained ensemble directory at ``output``
    that averages their class probabilities (weighted); returns its manifest."""
    return build_ensemble(runs, output, weights)


def export_onnx(run_dir: str | Path, output: str | Path, *, quantize: str = "none",
                calibration: str | Path | None = None, calibration_size: int = 256) -> Path:
    """Write ``output``: the run as an ONNX Runtime run directory (fp32, or int8 dynamic /
    static). Static quantisation calibrates on a seeded sample of ``calibration`` (default:
    the run's own training file)."""
    from landfall.compress.onnx_export import export_onnx as export
    from landfall.inference.loading import run_config

    texts: list[str] = []
    if quantize == "static":
        import random

        from landfall.config import expand_env
        from landfall.data.readers import read_texts

        cfg = run_config(run_dir)
        source = calibration or expand_env(cfg.data.train, "data.train")
        texts = [e.text for e in read_texts(source, text_field=cfg.data.text_field)]
        texts = random.Random(cfg.train.seed).sample(texts, min(calibration_size, len(texts)))
    return export(run_dir, output, quantize=quantize, calibration_texts=texts)


def demo_config(overrides: list[str] | None = None) -> Config:
    from landfall.data.sources import imdb_train

    data = {k: dict(v) for k, v in DEMO.items()}
    data["data"]["train"] = imdb_train()
    return build_config(data, overrides, source="demo")


def demo(output: str | Path = "runs/demo", overrides: list[str] | None = None) -> dict:
    """Fine-tune MiniLM on a slice of IMDb and report; returns the final evaluation."""
    return train(demo_config(overrides), output)


__all__ = ["train", "pretrain", "export_merged", "export_onnx", "evaluate", "predict",
           "ensemble", "demo", "demo_config", "Config"]
