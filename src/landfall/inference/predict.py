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
from landfall.inference.loading import load_run, run_config
from landfall.inference.results import Labeller
from landfall.utils.progress import progress_bar

CHUNK = 1024  # texts per chunk: progress and resume granularity


def predict_file(
    run_dir: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_field: str | None = None,
    batch_size: int = 64,
    overrides: list[str] | None = None,
) -> dict:
    """Predict every text of ``input``; rows come out in input order (sorted inside only).

    With an ``oos.json`` in the run, rejected texts get its out-of-scope label (the
    probabilities stay the model's) and each row carries its ``oos_score``. ``overrides``
    (e.g. ``data.truncation=sliding``) change the long-text strategy.
    """
    cfg = run_config(run_dir)
    field = text_field or cfg.data.text_field
    examples = read_texts(input, text_field=field)
    output = Path(output)
    partial, meta = resume.paths(output)
    done = resume.start(Path(input), output, lambda: resume.fingerprint(
        Path(run_dir), Path(input), overrides=list(overrides or []), field=field))
    predictor = load_run(run_dir, batch_size=batch_size, overrides=overrides)
    labeller = Labeller.for_run(run_dir)
    with open(partial, "ab") as fh, progress_bar(total=len(examples), initial=done,
                                                 desc="predicting", unit="text") as bar:
        for start in range(done, len(examples), CHUNK):
            chunk = examples[start : start + CHUNK]
            pred = predictor.predict([e.text for e in chunk])
            rows = labeller.rows(pred)
            fh.write("".join(json.dumps({"line": ex.line, **row}) + "\n"
                             for ex, row in zip(chunk, rows, strict=True)).encode())
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(chunk))
    os.replace(partial, output)
    meta.unlink(missing_ok=True)
    return {"n": len(examples), "output": str(output), "resumed_from": done}
