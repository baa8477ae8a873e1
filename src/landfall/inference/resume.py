"""What ``predict`` and ``generate`` share to stream an output file and resume it.

Rows are appended to ``OUTPUT.partial`` and fsynced; ``OUTPUT.partial.json`` fingerprints
what the partial file belongs to (the run and its weights, the input file, the field, the
settings), so that a resumed output never mixes two models, two inputs or two settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from landfall import runs


def fingerprint(run_dir: Path, input: Path, **settings: Any) -> dict:
    st = input.stat()
    weights = sorted(p for p in Path(run_dir).rglob("*") if p.is_file() and p.suffix in (
        ".safetensors", ".onnx"))
    return {"run": str(Path(run_dir).resolve()), "input": str(input.resolve()),
            "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "weights": [[str(w.relative_to(run_dir)), w.stat().st_size, w.stat().st_mtime_ns]
                        for w in weights], **settings}


def paths(output: Path) -> tuple[Path, Path]:
    return Path(f"{output}.partial"), Path(f"{output}.partial.json")


def done_rows(partial: Path, meta: Path, fp: dict) -> int:
    """Complete rows of a matching partial output (0 when there is none or it differs);
    a torn last line is cut off."""
    if not (partial.exists() and meta.exists()):
        return 0
    try:
        if json.loads(meta.read_text()) != json.loads(json.dumps(fp)):
            return 0
    except ValueError:
        return 0
    data = partial.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        with open(partial, "r+b") as fh:
            fh.truncate(len(keep))
    return keep.count(b"\n")


def start(input: Path, output: Path, fp_of) -> int:
    """Rows already done for ``output`` (a fresh partial file is started when none match).
    ``fp_of()`` builds the fingerprint; it is only asked for when ``input`` is a file."""
    partial, meta = paths(output)
    fp = fp_of() if input.is_file() else None
    done = done_rows(partial, meta, fp) if fp else 0
    if not done:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"")
        if fp:
            runs.write_json(meta, fp)
    return done
