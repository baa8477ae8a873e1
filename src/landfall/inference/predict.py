"""``landfall predict``: a file of texts in, a JSONL file of labels and probabilities out.

Output is streamed: rows are appended to ``OUTPUT.partial`` chunk by chunk (flushed and
fsynced), and renamed to ``OUTPUT`` at the end. If the process dies, the next call with the
same run, input and output continues after the last complete row instead of starting over
(``OUTPUT.partial.json`` records what the partial file belongs to).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from landfall.data.readers import read_texts
from landfall.inference import resume
from landfall.inference.chunks import Engine, local
from landfall.inference.loading import load_run, run_config
from landfall.inference.results import Labeller
from landfall.utils.progress import progress_bar

CHUNK = 1024  # texts per chunk: progress and resume granularity


class ChunkPredictor:
    """The run's predictor and labeller: one chunk of texts in, its JSONL rows out (built
    once per process, or once per Ray actor: ``inference.chunks``)."""

    def __init__(self, run_dir: str, batch_size: int, overrides: list[str] | None) -> None:
        self.predictor = load_run(run_dir, batch_size=batch_size, overrides=overrides)
        self.labeller = Labeller.for_run(run_dir)

    def __call__(self, texts: list[str], lines: list[int]) -> str:
        rows = self.labeller.rows(self.predictor.predict(texts))
        return "".join(json.dumps({"line": line, **row}) + "\n"
                       for line, row in zip(lines, rows, strict=True))


class ChunkScorer:
    """The run's predictor: one chunk of texts in, its class probabilities, windows and
    logits out, as lists (``evaluate``'s chunk worker: ``inference.chunks``)."""

    def __init__(self, run_dir: str, batch_size: int, overrides: list[str] | None,
                 predictor=None) -> None:
        self.predictor = predictor or load_run(run_dir, batch_size=batch_size,
                                               overrides=overrides)

    def __call__(self, texts: list[str]) -> dict:
        p = self.predictor.predict(texts)
        return {"probs": p.probs.tolist(), "windows": p.windows.tolist(),
                "logits": None if p.logits is None else p.logits.tolist()}


def predict_chunked(predictor, run_dir: str | Path, texts: list[str], *, batch_size: int,
                    overrides: list[str] | None, engine: Engine = local):
    """``predictor.predict(texts)`` computed chunk by chunk where ``engine`` says (the local
    engine reuses ``predictor``; Ray actors load their own): the same Prediction whatever
    the engine, since the chunks are."""
    import numpy as np

    from landfall.inference.predictor import Prediction

    work = {"run_dir": str(run_dir), "batch_size": batch_size,
            "overrides": list(overrides or [])}
    if engine is local:
        work["predictor"] = predictor
    chunks = ({"texts": texts[s : s + CHUNK]} for s in range(0, len(texts), CHUNK))
    parts = list(engine(ChunkScorer, work, chunks))
    k = len(predictor.labels)
    probs = np.asarray([r for p in parts for r in p["probs"]], dtype=np.float32).reshape(-1, k)
    windows = np.asarray([w for p in parts for w in p["windows"]], dtype=np.int64)
    logits = None if any(p["logits"] is None for p in parts) else \
        np.asarray([r for p in parts for r in p["logits"]], dtype=np.float32).reshape(-1, k)
    return Prediction(probs, windows, predictor.labels, logits)


def predict_file(
    run_dir: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_field: str | None = None,
    batch_size: int = 64,
    overrides: list[str] | None = None,
    engine: Engine = local,
) -> dict:
    """Predict every text of ``input``; rows come out in input order (sorted inside only).

    With an ``oos.json`` in the run, rejected texts get its out-of-scope label (the
    probabilities stay the model's) and each row carries its ``oos_score``. ``overrides``
    (e.g. ``data.truncation=sliding``) change the long-text strategy. ``engine`` says where
    the chunks are scored (``inference.chunks``; ``landfall.scale.ray_batch`` for Ray).
    """
    cfg = run_config(run_dir)
    field = text_field or cfg.data.text_field
    examples = read_texts(input, text_field=field)
    output = Path(output)
    partial, meta = resume.paths(output)
    done = resume.start(Path(input), output, lambda: resume.fingerprint(
        Path(run_dir), Path(input), overrides=list(overrides or []), field=field))
    chunks = ({"texts": [e.text for e in examples[s : s + CHUNK]],
               "lines": [e.line for e in examples[s : s + CHUNK]]}
              for s in range(done, len(examples), CHUNK))
    worker = {"run_dir": str(run_dir), "batch_size": batch_size,
              "overrides": list(overrides or [])}
    with open(partial, "ab") as fh, progress_bar(total=len(examples), initial=done,
                                                 desc="predicting", unit="text") as bar:
        for rows in engine(ChunkPredictor, worker, chunks):
            fh.write(rows.encode())
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(rows.count("\n"))
    os.replace(partial, output)
    meta.unlink(missing_ok=True)
    return {"n": len(examples), "output": str(output), "resumed_from": done}
