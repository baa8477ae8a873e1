"""The compression recipes ``landfall compress`` can try, each a function
``(source run, output dir, context) -> output dir`` that writes a loadable run directory.

A new method is a new function here (and its module in ``compress/``), registered in
``RECIPES``; a recipe that needs another's result names it in ``NEEDS``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from landfall import runs
from landfall.errors import LandfallError


@dataclass
class Context:
    """What recipes may use besides the source run."""

    calibration_texts: list[str] = field(default_factory=list)  # static int8
    overrides: list[str] = field(default_factory=list)  # config overrides for pruning
    keep_float: list[str] = field(default_factory=list)  # ONNX int8: parts left in fp32
    made: dict[str, Path] = field(default_factory=dict)  # recipe name -> its output


def _torch_variant(src: Path, out: Path, path: Path, config: dict, info: dict,
                   weights: Callable[[dict], dict] | None = None) -> Path:
    """Write ``out`` as a copy of the PyTorch model directory ``path`` (of run ``src``) with
    ``config`` merged into config.json and, given ``weights``, each safetensors file's tensors
    passed through it; the run files come along and ``compression.json`` records ``info``."""
    from safetensors.torch import load_file, save_file

    def write(tmp: Path) -> None:
        for f in path.iterdir():
            if not f.is_file():
                continue
            if weights is not None and f.suffix == ".safetensors":
                save_file(weights(load_file(f)), tmp / f.name, metadata={"format": "pt"})
            else:
                shutil.copyfile(f, tmp / f.name)
        cfg = json.loads((tmp / "config.json").read_text())
        cfg.update(config)
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2))

    runs.save_dir(out / runs.MODEL, write)
    runs.copy_run_files(src, out)
    runs.write_json(out / "compression.json", {"source": str(src), "backend": "torch", **info})
    return out


def torch_int8(src: Path, out: Path, ctx: Context) -> Path:
    """PyTorch dynamic int8 of every Linear, applied at load (landfall.inference.torch_int8)."""
    from landfall.inference.loading import model_dir
    from landfall.inference.onnx_backend import is_onnx_dir
    from landfall.inference.torch_int8 import KEY, VALUE

    path = model_dir(src)
    if is_onnx_dir(path) or not (path / "model.safetensors").exists():
        raise LandfallError(f"{src}: torch int8 needs a PyTorch model with merged weights")
    return _torch_variant(src, out, path, {KEY: VALUE}, {"quantize": "dynamic int8 (Linear)"})


def torch_bf16(src: Path, out: Path, ctx: Context) -> Path:
    """bf16 weights (half the bytes); bf16 compute where the hardware has it, else fp32."""
    import torch

    from landfall.inference.adapters import is_adapter_dir
    from landfall.inference.loading import model_dir
    from landfall.inference.onnx_backend import is_onnx_dir
    from landfall.inference.precision import why_not_bf16

    path = model_dir(src)
    if is_onnx_dir(path) or is_adapter_dir(path) or not any(path.glob("*.safetensors")):
        raise LandfallError(f"{src}: bf16 needs a PyTorch model with merged weights")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reason = why_not_bf16(device)
    note = f"bf16 weights, computed in fp32 here: {reason}" if reason else \
        f"bf16 weights and compute ({device.type})"
    # "dtype" for transformers 5; older versions read "torch_dtype"
    return _torch_variant(
        src, out, path, {"dtype": "bfloat16", "torch_dtype": "bfloat16"},
        {"weights": "bf16", "note": note},
        weights=lambda state: {k: v.to(torch.bfloat16) if v.is_floating_point() else v
                               for k, v in state.items()})


def _onnx(quantize: str, keep_float: bool = False) -> Callable[[Path, Path, Context], Path]:
    def recipe(src: Path, out: Path, ctx: Context) -> Path:
        from landfall.compression.onnx_export import export_onnx

        return export_onnx(src, out, quantize=quantize,
                           calibration_texts=ctx.calibration_texts,
                           keep_float=ctx.keep_float if keep_float else ())

    recipe.__doc__ = f"ONNX Runtime, graph-optimised, int8 {quantize}" if quantize != "none" \
        else "ONNX Runtime fp32, graph-optimised"
    return recipe


def prune(src: Path, out: Path, ctx: Context) -> Path:
    """Structured pruning of heads and FFN neurons plus a recovery fine-tune."""
    from landfall.compression.prune import prune_run

    prune_run(src, out, ctx.overrides)
    return out


def pruned_onnx_int8(src: Path, out: Path, ctx: Context) -> Path:
    """The pruned model, then ONNX int8 dynamic."""
    return _onnx("dynamic")(ctx.made["prune"], out, ctx)


RECIPES: dict[str, Callable[[Path, Path, Context], Path]] = {
    "torch-int8": torch_int8,
    "torch-bf16": torch_bf16,
    "onnx-fp32": _onnx("none"),
    "onnx-int8-dynamic": _onnx("dynamic"),
    "onnx-int8-static": _onnx("static"),
    "prune": prune,
    "prune+onnx-int8-dynamic": pruned_onnx_int8,
}
NEEDS = {"prune+onnx-int8-dynamic": "prune"}
DEFAULT = list(RECIPES)


def keep_float_recipe() -> Callable[[Path, Path, Context], Path]:
    """ONNX int8 dynamic with ``ctx.keep_float`` parts in fp32 (found by ``compress``)."""
    return _onnx("dynamic", keep_float=True)
