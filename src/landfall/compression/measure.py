"""Measure a run directory as a deployment would see it: accuracy on labelled documents,
weights on disk, parameters, latency at batch 1 and throughput at batch 32 — all through the
same loader and Predictor as ``predict``, ``evaluate`` and the server."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landfall.inference.loading import load_run, model_dir
from landfall.tasks.classification.metrics import compute_metrics

WEIGHT_SUFFIXES = {".safetensors", ".onnx", ".bin", ".data"}


def dir_bytes(path: Path, weights_only: bool = True) -> int:
    """Size on disk of a model directory (weights files only by default)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*")
               if f.is_file() and (not weights_only or f.suffix in WEIGHT_SUFFIXES))


def param_count(path: Path) -> int:
    """Weights stored in a model directory (safetensors tensors or ONNX initializers)."""
    total = 0
    for f in Path(path).glob("*.safetensors"):
        with open(f, "rb") as fh:  # the header alone: 8-byte length, then JSON
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        total += sum(int(np.prod(v["shape"])) for k, v in header.items() if k != "__metadata__")
    for f in Path(path).glob("*.onnx"):
        import onnx

        graph = onnx.load(str(f), load_external_data=False).graph
        total += sum(int(np.prod(t.dims)) for t in graph.initializer if len(t.dims) >= 2)
    return total


def measure(run_dir: str | Path, texts, y, labels, *, latency_docs: int = 50,
            batch_size: int = 32) -> dict:
    """One row of the compression table for ``run_dir`` on labelled ``texts`` (tokenised by
    the run's own tokenizer, outside the timings)."""
    from landfall.data.tokens import tokenize
    from landfall.errors import LandfallError

    predictor = load_run(run_dir, batch_size=batch_size, device="cpu")
    if predictor.labels != list(labels):
        raise LandfallError(f"{run_dir}: labels {predictor.labels} differ from {list(labels)}")
    docs = tokenize(texts, predictor.tokenizer)
    predictor.predict_tokens(docs[:batch_size])  # warm-up (allocations, ORT's first run)
    t = time.perf_counter()
    out = predictor.predict_tokens(docs)
    secs = time.perf_counter() - t
    lat = []
    for d in docs[:latency_docs]:
        t1 = time.perf_counter()
        predictor.predict_tokens([d])
        lat.append(time.perf_counter() - t1)
    m = compute_metrics(y, out.probs, labels)
    path = model_dir(run_dir)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "mb_on_disk": dir_bytes(path) / 2**20, "params": param_count(path),
            "latency_ms_b1": 1000 * statistics.median(lat),
            "docs_per_s_b32": len(docs) / secs, "windows": int(out.windows.sum())}


def markdown_table(head: Sequence[str], rows: Sequence[dict], chosen: str, cells) -> str:
    """The compression table: one row per candidate (``cells(row)``: its cells after the
    name), the chosen one in bold, a failed one with its error."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = f"**{r['method']}** (chosen)" if r["method"] == chosen else r["method"]
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |" + " |" * (len(head) - 2))
            continue
        lines.append("| " + " | ".join([name, *cells(r)]) + " |")
    return "\n".join(lines) + "\n"
