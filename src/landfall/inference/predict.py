"""``landfall predict``: a file of texts in, a JSONL file of labels and probabilities out."""

from __future__ import annotations

import json
from pathlib import Path

from landfall import runs
from landfall.data.readers import read_texts
from landfall.inference.loading import run_config
from landfall.inference.predictor import Predictor
from landfall.inference.rejection import load_rule


def predict_file(
    run_dir: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_field: str | None = None,
    batch_size: int = 64,
) -> dict:
    """Predict every text of ``input``; rows come out in input order (sorted inside only).

    With an ``oos.json`` in the run, rejected texts get its out-of-scope label (the
    probabilities stay the model's) and each row carries its ``oos_score``.
    """
    cfg = run_config(run_dir)
    examples = read_texts(input, text_field=text_field or cfg.data.text_field)
    predictor = Predictor.from_run(run_dir, batch_size=batch_size)
    pred = predictor.predict([e.text for e in examples], progress=True)
    labels = predictor.labels
    rule = load_rule(run_dir)
    names = rule.label_names(labels) if rule else labels
    ids = rule.label_ids(pred) if rule else pred.label_ids
    oos_scores = rule.scores(pred) if rule else None
    lines = []
    for i, (ex, p, w) in enumerate(zip(examples, pred.probs, pred.windows, strict=True)):
        row = {"line": ex.line, "label": names[int(ids[i])],
               "probs": {lab: round(float(q), 6) for lab, q in zip(labels, p, strict=True)},
               "windows": int(w)}
        if oos_scores is not None:
            row["oos_score"] = round(float(oos_scores[i]), 6)
        lines.append(json.dumps(row) + "\n")
    runs.write_text(output, "".join(lines))
    return {"n": len(lines), "output": str(output)}
