"""The run directory: the unit users hold, and atomic writes into it.

This module owns the layout: every writer (training, ensemble, export-merged, export-onnx,
compress, prune, distill) writes through ``write_text`` / ``write_json`` / ``save_dir`` /
``copy_file``, each a temporary name renamed into place.

Layout::

    RUN_DIR/
      model/            plain transformers directory (config with id2label, safetensors, tokenizer)
      landfall.toml     the resolved configuration (its [task] says what the run is)
      manifest.json     task, backend (torch, onnx), base model, source of a derived run
      metrics.jsonl     one JSON object per logging/evaluation step
      eval.json         final validation metrics (+ the baseline's)
      report.md         human-readable report, links to plots/
      plots/            PNG plots
      oos.json          out-of-scope rejection rule (only with oos.label set)
      generations.jsonl causal_lm: the validation responses of every system scored
      checkpoints/      resumable training state (removed once training has finished)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MODEL = "model"
CONFIG = "landfall.toml"
METRICS = "metrics.jsonl"
EVAL = "eval.json"
REPORT = "report.md"
PLOTS = "plots"
CHECKPOINTS = "checkpoints"
OOS = "oos.json"
MANIFEST = "manifest.json"  # what the run is: task, backend, base model, derived from
ENSEMBLE = "ensemble.json"  # marks an ensemble directory (members/<i>/ instead of model/)
MEMBERS = "members"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it into place.

    Works for files and directories: a reader never sees a half-written artifact, and a crash
    leaves the previous version intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    target = tmp / "payload"
    try:
        yield target
        _fsync_tree(target)
        if path.is_dir() and not path.is_symlink():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(target, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, path)
        _fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(path: Path) -> None:
    """Flush a new file (or every file of a new directory) to disk before it is renamed in:
    after a power cut the rename must not point at empty files."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories
    finally:
        os.close(fd)


def clean_stale(run_dir: str | Path) -> None:
    """Remove temporary folders that a killed process left behind (``.model.x1y2``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    recover(run_dir / MODEL)
    for p in run_dir.iterdir():
        if p.name.startswith(".") and p.is_dir() and not p.name.endswith(".old"):
            shutil.rmtree(p, ignore_errors=True)


def recover(path: str | Path) -> None:
    """Finish a directory swap that a kill interrupted between its two renames."""
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and old.is_dir():
        os.replace(old, path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def copy_file(src: str | Path, dst: str | Path) -> Path:
    """Copy one run file (``landfall.toml``, ``oos.json``...) atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


RUN_FILES = (CONFIG, OOS)  # the files beside model/ that a derived run carries over


def copy_run_files(src: str | Path, dst: str | Path, names: tuple[str, ...] = RUN_FILES) -> None:
    """Carry a run's own files (config, out-of-scope rule...) into a derived run directory."""
    for name in names:
        if (Path(src) / name).is_file():
            copy_file(Path(src) / name, Path(dst) / name)


def save_dir(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_dir)`` and move the finished directory to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.mkdir()
        writer(tmp)
    return Path(path)


def write_manifest(run_dir: str | Path, **fields: Any) -> Path:
    """``manifest.json``: the source run's manifest (if any) updated with ``fields``."""
    return write_json(Path(run_dir) / MANIFEST, {**read_manifest(fields.pop("source", None)),
                                                 **fields})


def read_manifest(run_dir: str | Path | None) -> dict[str, Any]:
    """A run's manifest ({} for a run without one, or for None)."""
    if run_dir is None or not (Path(run_dir) / MANIFEST).is_file():
        return {}
    try:
        data = json.loads((Path(run_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one line and fsync: a killed run keeps every metric it logged."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a killed process
    return out
