"""``landfall predict``: a file of texts in, a JSONL file of labels and probabilities out."""

from __future__ import annotations

import json
from pathlib import Path

from landfall import runs
from landfall.data.readers import read_texts
from landfall.inference.loading import run_config
from landfall.inference.predictor import Predictor


def predict_file(
    run_dir: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_field: str | None = None,
    batch_size: int = 64,
) -> dict:
    """Predict every text of ``input``; rows come out in input order (sorted inside only)."""
    cfg = run_config(run_dir)
    examples = read_texts(input, text_field=text_field or cfg.data.text_field)
    predictor = Predictor.from_run(run_dir, batch_size=batch_size)
    pred = predictor.predict([e.text for e in examples], progress=True)
    labels = predictor.labels
    lines = []
    for ex, p, w in zip(examples, pred.probs, pred.windows, strict=True):
        row = {"line": ex.line, "label": labels[int(p.argmax())],
               "probs": {lab: round(float(q), 6) for lab, q in zip(labels, p, strict=True)},
               "windows": int(w)}
        lines.append(json.dumps(row) + "\n")
    runs.write_text(output, "".join(lines))
    return {"n": len(lines), "output": str(output)}
