"""``landfall ensemble``: copy several runs into one self-contained ensemble directory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landfall import runs
from landfall.data.labels import describe_labels
from landfall.errors import LandfallError
from landfall.inference.ensemble import is_ensemble, normalise_weights, read_manifest
from landfall.inference.loading import model_dir, run_config

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")


def run_labels(run: Path) -> list[str]:
    """A run's label list in class-id order, read without loading the model."""
    if is_ensemble(run):
        return read_manifest(run)["labels"]
    path = model_dir(run) / "config.json"
    try:
        id2label = json.loads(path.read_text(encoding="utf-8"))["id2label"]
        return [str(id2label[str(i)]) for i in range(len(id2label))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LandfallError(f"{path}: cannot read the label list (id2label): {exc}") from None


def _split_of(run: Path) -> tuple | None:
    """What decides the rows a member was validated on (None: no landfall.toml to tell)."""
    if not (run / runs.CONFIG).is_file() and not is_ensemble(run):
        return None
    cfg = run_config(run)
    return cfg.data.split_key(cfg.train.seed)


def split_warnings(members: Sequence[Path]) -> list[str]:
    """Members validated on other rows than member 0: scoring the ensemble on member 0's
    split would score rows that another member trained on."""
    first = _split_of(members[0])
    return [f"{run}: validated on another split than {members[0]} (data.train, validation, "
            "validation_fraction, split_block, limit, validation_limit or the split seed "
            "differ); the ensemble's evaluation on member 0's split would include rows it "
            "trained on. Vary train.seed with a fixed data.split_seed instead."
            for run in members[1:] if first is not None and _split_of(run) not in (None, first)]


def _check_member(run: Path) -> None:
    if not run.is_dir():
        raise LandfallError(f"{run}: run directory does not exist")
    if is_ensemble(run):
        return
    model = model_dir(run)
    if not any((model / name).exists() for name in SAFETENSORS):
        raise LandfallError(f"{model}: no safetensors weights (model.safetensors)")


def _copy_member(run: Path, dest: Path) -> None:
    """``model/`` and ``landfall.toml`` of a run (or a whole ensemble) into ``dest``."""
    dest.mkdir(parents=True)
    if is_ensemble(run):
        shutil.copy2(run / runs.ENSEMBLE, dest / runs.ENSEMBLE)
        shutil.copytree(run / runs.MEMBERS, dest / runs.MEMBERS)
        return
    shutil.copytree(model_dir(run), dest / runs.MODEL)
    if (run / runs.CONFIG).is_file():
        shutil.copy2(run / runs.CONFIG, dest / runs.CONFIG)


def build_ensemble(
    run_dirs: Sequence[str | Path],
    output: str | Path,
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Write an ensemble directory averaging ``run_dirs`` (weighted); returns its manifest."""
    members = [Path(r) for r in run_dirs]
    output = Path(output)
    if len(members) < 2:
        raise LandfallError("an ensemble needs at least two run directories")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise LandfallError(f"{output}: already exists; choose another --output")
    w = normalise_weights(weights, len(members), "--weights")
    for run in members:
        _check_member(run)
    labels = run_labels(members[0])
    for run in members[1:]:
        theirs = run_labels(run)
        if theirs != labels:
            raise LandfallError(
                f"{run}: its labels [{describe_labels(theirs)}] differ from those of "
                f"{members[0]} [{describe_labels(labels)}]; ensemble members need the same "
                "labels in the same order"
            )
    manifest = {
        "format": 1,
        "labels": labels,
        "weights": w,
        "members": [{"path": f"{runs.MEMBERS}/{i}", "source": str(run.resolve())}
                    for i, run in enumerate(members)],
    }

    def write(tmp: Path) -> None:
        for i, run in enumerate(members):
            _copy_member(run, tmp / runs.MEMBERS / str(i))
        (tmp / runs.ENSEMBLE).write_text(json.dumps(manifest, indent=2) + "\n",
                                         encoding="utf-8")

    runs.save_dir(output, write)
    return {**manifest, "output": str(output), "warnings": split_warnings(members)}
