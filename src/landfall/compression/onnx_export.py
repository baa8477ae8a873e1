"""A run directory → an ONNX Runtime run directory (fp32, or int8 dynamic / static).

The result is a run directory like any other: ``model/`` holds ``model.onnx`` beside the
transformers ``config.json`` (labels) and the tokenizer, and ``landfall.toml`` is the source
run's, so ``predict``, ``evaluate`` (and the server) load it exactly like the original and
use the same tokenisation and long-text strategy. ``compression.json`` records what was done.

Steps, all from maintained libraries: ``torch.onnx.export`` with dynamic batch and sequence
axes; ONNX Runtime's transformer optimiser (attention / layer-norm / GELU fusion); then
optionally ONNX Runtime's int8 quantisation — dynamic (weights int8 ahead of time,
activations scaled per batch, on the fused graph) or static (QDQ on the pre-processed unfused
graph, activation ranges calibrated on sample texts; the session fuses it at load time).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from landfall import runs
from landfall.compression.measure import dir_bytes
from landfall.errors import LandfallError
from landfall.inference.onnx_backend import ONNX_FILE

QUANTIZE = ("none", "dynamic", "static")
OPSET = 17
# fusions ONNX Runtime's optimiser knows, by transformers model_type
_FUSABLE = {"bert": "bert", "roberta": "bert", "distilbert": "bert", "mpnet": "bert"}


def export_graph(model: torch.nn.Module, path: Path, opset: int = OPSET) -> None:
    """fp32 ONNX graph with inputs input_ids, attention_mask and output logits, dynamic in
    batch and sequence length."""
    model = model.float().eval().cpu()
    token = min(1000, model.config.vocab_size - 1)  # any real token: shapes are what matter
    ids = torch.full((2, 16), token, dtype=torch.long)
    mask = torch.ones_like(ids)
    axes = {"input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: on this 2-core machine it exports MiniLM in seconds where
        # the dynamo exporter takes minutes, and its dynamic_axes are the documented way.
        torch.onnx.export(model, (ids, mask), str(path), input_names=["input_ids",
                          "attention_mask"], output_names=["logits"], dynamic_axes=axes,
                          opset_version=opset, dynamo=False)


def optimise_graph(src: Path, dst: Path, config) -> bool:
    """ONNX Runtime's offline transformer fusions; False (graph copied) for unknown models."""
    kind = _FUSABLE.get(getattr(config, "model_type", ""))
    if kind is None:
        shutil.copyfile(src, dst)
        return False
    from onnxruntime.transformers.optimizer import optimize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optimize_model(str(src), model_type=kind, num_heads=config.num_attention_heads,
                             hidden_size=config.hidden_size, opt_level=1)
    opt.save_model_to_file(str(dst))
    return True


class _Calibration:
    """ONNX Runtime's CalibrationDataReader protocol over tokenised windows."""

    def __init__(self, windows: Sequence[Sequence[int]], pad_id: int, batch_size: int = 16):
        from landfall.data.batching import collate, inference_batches

        self.batches = [
            {k: v.numpy() for k, v in collate([windows[i] for i in idx], pad_id).items()}
            for idx in inference_batches([len(w) for w in windows], batch_size)
        ]
        self.it = iter(self.batches)

    def get_next(self):
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.batches)


def node_groups(path: Path) -> dict[str, list[str]]:
    """Quantisable nodes of a graph by model part: ``embeddings``, ``layer.<i>``, ``head``
    (pooler and classifier). Fused Attention nodes lose their layer in the name; they come
    in layer order."""
    import re

    import onnx

    groups: dict[str, list[str]] = {}
    n_attention = 0
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type not in ("MatMul", "Gather", "Attention", "Gemm",
                                "EmbedLayerNormalization"):
            continue
        m = re.search(r"/layer\.(\d+)/", node.name)
        if node.op_type == "Attention":
            group = f"layer.{n_attention}"
            n_attention += 1
        elif m:
            group = f"layer.{m.group(1)}"
        elif "embeddings" in node.name or node.op_type == "EmbedLayerNormalization":
            group = "embeddings"
        elif "pooler" in node.name or "classifier" in node.name:
            group = "head"
        else:
            continue
        groups.setdefault(group, []).append(node.name)
    return groups


def quantise(src: Path, dst: Path, method: str, calibration=None,
             keep_float: Sequence[str] = ()) -> None:
    """int8-quantise the graph ``src`` into ``dst``; the ``node_groups`` named in
    ``keep_float`` stay in fp32."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    # the fused graph holds com.microsoft ops that ONNX shape inference cannot type
    extra = {"DefaultTensorType": TensorProto.FLOAT}
    groups = node_groups(src) if keep_float else {}
    unknown = sorted(set(keep_float) - set(groups))
    if unknown:
        raise LandfallError(f"keep_float: no such part {unknown}; the graph has "
                            f"{sorted(groups)}")
    exclude = [n for g in keep_float for n in groups[g]]
    if method == "dynamic":
        # Gather too: the 30 k x 384 word-embedding table is half of MiniLM's weights.
        # Per-channel weight scales: on the IMDb MiniLM model they halve the mean logit error
        # of per-tensor scales (0.06 vs 0.13; 2 vs 5 flipped predictions in 300) at the same
        # size. (7-bit reduce_range, which ORT's docs suggest against AVX2 saturation, tripled
        # it instead.)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gather", "Attention", "Gemm"],
                         nodes_to_exclude=exclude, extra_options=extra)
    elif method == "static":
        if calibration is None:
            raise LandfallError("static quantisation needs calibration texts")
        # QDQ static quantisation wants the plain (unfused) graph, pre-processed as ONNX
        # Runtime's docs advise; the session fuses the QDQ pattern when it loads the model
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = src.with_suffix(".pre.onnx")
        with contextlib.chdir(src.parent):  # it leaves scratch files in the working directory
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        try:
            quantize_static(str(pre), str(dst), calibration, quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            per_channel=True, op_types_to_quantize=["MatMul"],
                            nodes_to_exclude=exclude,
                            extra_options={"ActivationSymmetric": True})
        finally:
            pre.unlink(missing_ok=True)
    else:
        raise LandfallError(f"quantize must be one of {QUANTIZE}, got {method!r}")


def export_onnx(run_dir: str | Path, output: str | Path, *, quantize: str = "none",
                calibration_texts: Sequence[str] = (), optimise: bool = True,
                keep_float: Sequence[str] = ()) -> Path:
    """Write ``output`` as an ONNX Runtime run directory made from the run ``run_dir``."""
    from landfall.inference.adapters import merged
    from landfall.inference.ensemble import is_ensemble
    from landfall.inference.loading import load_run, model_dir
    from landfall.inference.onnx_backend import is_onnx_dir

    run_dir, output = Path(run_dir), Path(output)
    if quantize not in QUANTIZE:
        raise LandfallError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
    if is_ensemble(run_dir):
        raise LandfallError(f"{run_dir}: an ensemble; export its members one by one")
    src_model = model_dir(run_dir)
    if is_onnx_dir(src_model):
        raise LandfallError(f"{run_dir}: already an ONNX run")
    if (output / runs.MODEL).exists():
        raise LandfallError(f"{output}: already holds a model")
    if quantize == "static" and not calibration_texts:
        raise LandfallError("static quantisation needs calibration texts (--calibration FILE)")
    predictor = load_run(run_dir, device="cpu")
    model = predictor.model
    if hasattr(model, "merge_and_unload"):
        model = merged(model)  # LoRA / IA3 folded in; prompt tuning cannot be exported
    calibration = None
    if quantize == "static":
        from landfall.data.tokens import tokenize
        from landfall.data.windows import make_windows

        docs = tokenize(list(calibration_texts), predictor.tokenizer)
        windows, _ = make_windows(docs, predictor.spec, predictor.add_special)
        calibration = _Calibration(windows, predictor.pad_id)

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory() as work:
            raw, fused = Path(work) / "raw.onnx", Path(work) / "fused.onnx"
            export_graph(model, raw)
            if optimise and quantize != "static":
                optimise_graph(raw, fused, model.config)
            else:
                shutil.copyfile(raw, fused)
            if quantize == "none":
                shutil.copyfile(fused, tmp / ONNX_FILE)
            else:
                quantise(fused, tmp / ONNX_FILE, quantize, calibration, keep_float)
        model.config.save_pretrained(tmp)
        predictor.tokenizer.save_pretrained(tmp)

    runs.save_dir(output / runs.MODEL, write)
    runs.copy_run_files(run_dir, output)
    runs.write_manifest(output, source=run_dir, backend="onnx", quantize=quantize,
                        derived_from=str(run_dir))
    runs.write_json(output / "compression.json", {
        "source": str(run_dir), "backend": "onnxruntime", "quantize": quantize,
        "optimised": optimise and quantize != "static", "opset": OPSET,
        "kept_in_float": list(keep_float) if quantize != "none" else [],
        "calibration_texts": len(calibration_texts) if quantize == "static" else 0,
        "source_model_bytes": dir_bytes(src_model),
        "model_bytes": dir_bytes(output / runs.MODEL)})
    return output


def calibration_texts(cfg, source: str | Path | None = None, size: int = 256) -> list[str]:
    """A seeded sample of ``size`` texts from ``source`` (default: the run's training file)."""
    import random

    from landfall.config import expand_env
    from landfall.data.readers import read_texts

    source = source or expand_env(cfg.data.train, "data.train")
    texts = [e.text for e in read_texts(source, text_field=cfg.data.text_field)]
    rng = random.Random(cfg.train.seed)  # seeded sampling, not security  # nosec B311
    return rng.sample(texts, min(size, len(texts)))
