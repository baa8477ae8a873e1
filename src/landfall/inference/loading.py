"""Load a run directory (or a plain model directory, or an ensemble) into a Predictor."""

from __future__ import annotations

from pathlib import Path

import torch

from landfall import runs
from landfall.config import Config, build_config, load_file
from landfall.data import normalize
from landfall.data.windows import WindowSpec, special_tokens
from landfall.errors import LandfallError
from landfall.hub import resolve_model
from landfall.inference.adapters import is_adapter_dir, load_adapter_model
from landfall.inference.ensemble import EnsemblePredictor, is_ensemble, member_dirs, read_manifest
from landfall.inference.onnx_backend import OnnxClassifier, is_onnx_dir
from landfall.inference.precision import bf16_native, settle_dtype
from landfall.inference.predictor import Predictor
from landfall.inference.pruned import is_pruned_dir, load_pruned
from landfall.inference.torch_int8 import is_torch_int8, quantize_linear
from landfall.tasks import Task, get_task


def run_config(run_dir: str | Path, overrides: list[str] | None = None) -> Config:
    """The resolved config a run was trained with (defaults for a bare model directory;
    member 0's for an ensemble)."""
    if is_ensemble(run_dir):
        return run_config(member_dirs(run_dir)[0], overrides)
    path = Path(run_dir) / runs.CONFIG
    data = load_file(path) if path.exists() else {}
    return build_config(data, overrides, source=str(path))


def model_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise LandfallError(f"{run_dir}: run directory does not exist")
    runs.recover(run_dir / runs.MODEL)
    for candidate in (run_dir / runs.MODEL, run_dir):
        if (candidate / "config.json").exists():
            return candidate
    raise LandfallError(f"{run_dir}: no model/ inside (has training finished? try --resume)")


def _labels(config) -> list[str]:
    """Label names in id order, from a transformers config."""
    return [config.id2label[i] for i in range(len(config.id2label))]


# what may differ from training when a run is used: how long texts become windows
INFERENCE_OVERRIDES = {"data.truncation", "data.stride", "data.aggregate", "data.max_windows",
                       "data.max_length", "data.head_tokens"}


def check_inference_overrides(overrides: list[str] | None) -> list[str]:
    for item in overrides or []:
        name = item.partition("=")[0].strip()
        if name not in INFERENCE_OVERRIDES:
            raise LandfallError(f"--set {item!r}: only the long-text strategy can change after "
                                f"training ({', '.join(sorted(INFERENCE_OVERRIDES))})")
    return list(overrides or [])


def load_run(
    run_dir: str | Path, *, batch_size: int = 64, device: str | None = None,
    overrides: list[str] | None = None,
) -> Predictor | EnsemblePredictor:
    """A Predictor for the run; ``overrides`` (``data.truncation=sliding`` ...) change its
    long-text strategy."""
    if is_ensemble(run_dir):
        if overrides:
            raise LandfallError(f"{run_dir}: an ensemble uses its members' strategies")
        return load_ensemble(run_dir, batch_size=batch_size, device=device)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = model_dir(run_dir)
    cfg = run_config(run_dir, check_inference_overrides(overrides))
    get_task(cfg.task.name).require("predict", str(run_dir))
    tokenizer = normalize.apply(AutoTokenizer.from_pretrained(path), cfg.data.normalize)
    spec = WindowSpec.from_config(cfg.data, sum(map(len, special_tokens(tokenizer))))
    spec.validate()  # a --set data.stride too large for the window fails here, clearly
    if is_onnx_dir(path):
        model = OnnxClassifier(path)
        return Predictor(model, tokenizer, _labels(model.config), spec, batch_size=batch_size)
    if is_adapter_dir(path):
        model = load_adapter_model(path, resolve_model(cfg.model.name))
    elif is_pruned_dir(path):
        model = load_pruned(path)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path)
    if is_torch_int8(path):
        model = quantize_linear(model)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if is_torch_int8(path):
        dev = torch.device("cpu")  # torch's dynamic int8 kernels are CPU-only
    model = settle_dtype(model, dev)  # bf16 weights: bf16 where native, else fp32
    model.to(dev).eval()
    labels = _labels(model.config)
    bf16 = dev.type == "cuda" and cfg.train.precision != "fp32" and bf16_native(dev)
    return Predictor(model, tokenizer, labels, spec, batch_size=batch_size, device=dev, bf16=bf16)


def run_task(run_dir: str | Path) -> Task:
    """The task plugin a run was trained as (``[task] name`` of its landfall.toml)."""
    return get_task(run_config(run_dir).task.name)


def load_generation_run(run_dir: str | Path, *, device: str | None = None, threads: int = 0):
    """A Generator for a causal-LM run (full fine-tune, adapter, bf16 or int8 variant; a GGUF
    variant gets llama.cpp's, ``inference.llama_backend``); refuses other tasks."""
    from landfall.inference.generator import load_generator
    from landfall.inference.llama_backend import is_gguf_dir, load_llama_generator

    cfg = run_config(run_dir)
    get_task(cfg.task.name).require("generate", str(run_dir))
    path = model_dir(run_dir)
    if is_gguf_dir(path):
        return load_llama_generator(path, cfg.chat, threads=threads)
    base = resolve_model(cfg.model.name) if is_adapter_dir(path) else None
    return load_generator(path, base, cfg.chat, device)


def load_ensemble(path: str | Path, *, batch_size: int = 64,
                  device: str | None = None) -> EnsemblePredictor:
    """Load every member (with ``load_run``, so members may be ensembles themselves)."""
    manifest = read_manifest(path)
    members = []
    for m in manifest["members"]:
        member = load_run(Path(path) / m["path"], batch_size=batch_size, device=device)
        if list(member.labels) != manifest["labels"]:
            raise LandfallError(f"{Path(path) / m['path']}: labels {member.labels} differ from "
                                f"those of {Path(path) / runs.ENSEMBLE}")
        members.append(member)
    return EnsemblePredictor(members, manifest["weights"], manifest["labels"])
