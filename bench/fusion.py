"""Would averaging the transformer with the classic baseline beat the baseline? Measured.

    python bench/fusion.py runs/imdb-minilm [runs/imdb-minilm-mlm ...]

On the first run's own validation split (``data.prepare.carve``: the file it validated on,
or the seeded split its training carved; all runs must share it), scores each run, the
NB-SVM baseline fitted on the run's training split, the mean of the runs, and
``w * transformer + (1 - w) * baseline`` probability averages for a few ``w``. Also counts
the reviews both get wrong. The ``w`` grid is read on the same validation split, so the
best ``w`` is optimistic; ``w = 0.5`` involves no choice. Results go to
bench/results/fusion.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    a = p.parse_args()
    from landfall.baseline.nbsvm import Baseline
    from landfall.data.labels import encode_labels
    from landfall.data.prepare import carve
    from landfall.inference.loading import load_run, run_config

    cfg = run_config(a.runs[0])
    train, val, labels = carve(cfg.data, cfg.train.seed)[:3]
    y = np.asarray(encode_labels(val, labels, label_field=cfg.data.label_field))
    texts = [e.text for e in val]

    def acc(probs: np.ndarray) -> float:
        return float((probs.argmax(1) == y).mean())

    t = time.perf_counter()
    baseline = Baseline(seed=cfg.train.seed).fit(
        [e.text for e in train], encode_labels(train, labels, label_field=cfg.data.label_field),
        n_classes=len(labels))
    pb = baseline.predict_proba(texts)
    out = {"n": len(y), "baseline": {"accuracy": acc(pb),
                                     "seconds": round(time.perf_counter() - t, 1)}, "runs": {}}
    print(json.dumps({"baseline": out["baseline"]}), flush=True)
    every = []
    for run in a.runs:
        pt = load_run(run, batch_size=64).predict(texts).probs
        every.append(pt)
        wrong_t, wrong_b = pt.argmax(1) != y, pb.argmax(1) != y
        r = {"accuracy": acc(pt), "errors": int(wrong_t.sum()),
             "errors_shared_with_baseline": int((wrong_t & wrong_b).sum()),
             "with_baseline": {str(w): acc(w * pt + (1 - w) * pb) for w in WEIGHTS}}
        out["runs"][run] = r
        print(json.dumps({run: r}), flush=True)
    if len(every) > 1:
        mean = np.mean(every, axis=0)
        out["mean_of_runs"] = {"accuracy": acc(mean),
                               "with_baseline_0.5": acc(0.5 * mean + 0.5 * pb)}
        print(json.dumps({"mean_of_runs": out["mean_of_runs"]}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fusion.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
