"""Which parts of a model lose most when int8-quantised: quantise one part at a time (the
rest stays fp32) and measure how far its predictions move from the fp32 model's (mean KL
divergence of the class probabilities on sample documents). ``compress`` keeps the worst
parts in float when full int8 breaks the accuracy budget."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from landfall.compression.onnx_export import export_graph, node_groups, optimise_graph, quantise
from landfall.inference.loading import load_run, model_dir
from landfall.inference.onnx_backend import OnnxClassifier
from landfall.utils.progress import progress_bar


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.clip(p, 1e-9, 1), np.clip(q, 1e-9, 1)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def sensitivity(run_dir: str | Path, docs, max_docs: int = 128) -> dict[str, float]:
    """Mean KL(fp32 || part-quantised) per model part, most sensitive first."""
    predictor = load_run(run_dir, device="cpu")
    docs = docs[:max_docs]
    ref = predictor.predict_tokens(docs).probs
    model = predictor.model
    scores = {}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        export_graph(model, work / "raw.onnx")
        optimise_graph(work / "raw.onnx", work / "fused.onnx", model.config)
        shutil.copyfile(model_dir(run_dir) / "config.json", work / "config.json")
        groups = node_groups(work / "fused.onnx")
        with progress_bar(total=len(groups), desc="int8 sensitivity") as bar:
            for g in sorted(groups):
                quantise(work / "fused.onnx", work / "part.onnx", "dynamic",
                         keep_float=[o for o in groups if o != g])
                predictor.model = OnnxClassifier(work / "part.onnx")
                predictor.is_torch = False
                scores[g] = _kl(ref, predictor.predict_tokens(docs).probs)
                bar.update(1)
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))
