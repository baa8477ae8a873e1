"""Resumable training state, written atomically, with no pickle anywhere.

torch.save / accelerate.save_state would pickle the optimizer; instead tensors go to
safetensors and the scalar state (step, scheduler, RNG of Python) to JSON.

    checkpoints/step-000120/
        model.safetensors       every parameter and buffer
        optimizer.safetensors   AdamW moments, keyed "<param index>.<name>"
        rng.safetensors         torch CPU (and CUDA) generator states; a distributed run's
                                every rank's ("torch.rank1", "cuda.rank1"...)
        state.json              progress, scheduler, optimizer hyper-parameters, early stopping
    checkpoints/latest          name of the newest complete checkpoint
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from landfall.errors import LandfallError
from landfall.runs import CHECKPOINTS, save_dir, write_text


@dataclass
class Progress:
    """Where training stands; restored verbatim on resume."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed
    samples: int = 0  # training sequences seen
    train_seconds: float = 0.0  # wall time of the loop less evaluation
    eval_seconds: float = 0.0  # wall time spent evaluating on the validation split
    best_metric: float | None = None
    best_step: int = 0
    evals_without_gain: int = 0
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    for key, v in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    progress: Progress,
    rank_rng: list[dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a checkpoint; ``rank_rng`` is every rank's ``distributed.rng_state()`` (a
    distributed run, written by rank 0)."""
    root = Path(run_dir) / CHECKPOINTS
    name = f"step-{progress.step:07d}"

    def write(tmp: Path) -> None:
        save_model(model, str(tmp / "model.safetensors"))
        tensors, meta = _optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                rng[f"cuda.{i}"] = s
        for r, states in enumerate(rank_rng or []):
            rng.update({f"{k}.rank{r}": v for k, v in states.items()})
        save_file(rng, str(tmp / "rng.safetensors"))
        state = {
            "progress": asdict(progress),
            "scheduler": scheduler.state_dict(),
            "optimizer": meta,
            "python_random": _py_random_state(),
        }
        (tmp / "state.json").write_text(json.dumps(state))

    save_dir(root / name, write)
    write_text(root / "latest", name + "\n")
    # the previous checkpoint stays until a newer one exists beside this one: if this one
    # turns out damaged (a bad disk, a truncated copy), resume falls back to the previous
    for old in sorted(root.glob("step-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return root / name


KEEP = 2  # checkpoints kept on disk: the newest and the one before it


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, newest first (the ``latest`` pointer's first)."""
    root = Path(run_dir) / CHECKPOINTS
    found = sorted((p for p in root.glob("step-*") if (p / "state.json").exists()),
                   reverse=True)
    newest = latest_checkpoint(run_dir)
    if newest is not None and newest in found:
        found.remove(newest)
        found.insert(0, newest)
    return found


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / "latest"
    if pointer.exists():
        path = root / pointer.read_text(errors="replace").strip()
        if (path / "state.json").exists():
            return path
    found = sorted(p for p in root.glob("step-*") if (p / "state.json").exists())
    return found[-1] if found else None


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
    *, rank: int = 0,
) -> Progress:
    """Restore model, optimizer, scheduler and RNG state (rank ``rank``'s of a distributed
    run; a rank the checkpoint has none for, as after a resume on more processes, takes
    rank 0's); return the progress record."""
    try:
        return _load(path, model, optimizer, scheduler, rank)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as exc:
        raise LandfallError(
            f"{path}: cannot restore this checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def _load(path: Path, model: torch.nn.Module, optimizer, scheduler, rank: int) -> Progress:
    state = json.loads((path / "state.json").read_text())
    load_model(model, str(path / "model.safetensors"), device=str(_device(model)))
    tensors = load_file(str(path / "optimizer.safetensors"), device=str(_device(model)))
    _load_optimizer(optimizer, tensors, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = load_file(str(path / "rng.safetensors"))
    own = f"torch.rank{rank}" if f"torch.rank{rank}" in rng else "torch.rank0"
    torch.set_rng_state(rng[own] if own in rng else rng["torch"])
    if f"cuda.rank{rank}" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng[f"cuda.rank{rank}"])
        return Progress(**_restore_python(state))
    cuda = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda.") and ".rank" not in k)]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return Progress(**_restore_python(state))


def _restore_python(state: dict) -> dict:
    random.setstate(_to_tuple(state["python_random"]))
    return state["progress"]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _py_random_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _to_tuple(s: list) -> tuple:
    return (s[0], tuple(s[1]), s[2])
