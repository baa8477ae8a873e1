"""Does a row-by-row validation split of IMDb's train file flatter the classic baseline? Measured.

    python bench/split_leak.py [--train FILE] [--seeds 42,0,1,2] [--block 100]

Two measurements, no transformer involved (about 3 min):

1. Are adjacent rows related? Mean TF-IDF cosine similarity of each review with the next
   one of the same class, against random pairs of the same class. IMDb's files list the
   reviews of one movie together (the official test set shares no movie with train).
2. The NB-SVM baseline (``landfall.baseline``) scored on the row-by-row stratified split
   (``data.split_block = 0``, the default) and on the blocked split (``data.split_block =
   BLOCK``: whole runs of BLOCK adjacent rows of one class go to one side), for each seed.

Results go to bench/results/split_leak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def adjacent_similarity(examples, seed: int) -> dict[str, float]:
    """Mean cosine similarity of each review with its next row vs random pairs, per class."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from landfall.baseline.nbsvm import preprocess

    out: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    adjacent, shuffled = [], []
    for label in sorted({e.label for e in examples}):
        rows = sorted((e for e in examples if e.label == label), key=lambda e: e.line)
        x = TfidfVectorizer(min_df=2, sublinear_tf=True, preprocessor=preprocess).fit_transform(
            [e.text for e in rows])
        adjacent.append(np.asarray(x[:-1].multiply(x[1:]).sum(1)).ravel())
        p = rng.permutation(x.shape[0])
        shuffled.append(np.asarray(x[p[:-1]].multiply(x[p[1:]]).sum(1)).ravel())
    a, r = np.concatenate(adjacent), np.concatenate(shuffled)
    out["adjacent_mean_cosine"] = float(a.mean())
    out["random_pair_mean_cosine"] = float(r.mean())
    out["adjacent_share_above_0.1"] = float((a > 0.1).mean())
    out["random_share_above_0.1"] = float((r > 0.1).mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("LANDFALL_DATA", "../shared/data")
    p.add_argument("--train", default=f"{data}/imdb/train.jsonl.gz")
    p.add_argument("--seeds", default="42,0,1,2")
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--out", default=str(RESULTS / "split_leak.json"))
    a = p.parse_args()
    from landfall.baseline.nbsvm import run_baseline
    from landfall.data.labels import encode_labels, infer_labels
    from landfall.data.readers import read_examples
    from landfall.data.splits import blocked_split, stratified_split

    examples = read_examples(a.train)
    labels = infer_labels(examples, source=a.train)
    out: dict = {"train": a.train, "n": len(examples), "block": a.block,
                 "similarity": adjacent_similarity(examples, seed=0), "rows": []}
    print(json.dumps(out["similarity"]), flush=True)

    def score(train, val) -> float:
        return run_baseline([e.text for e in train], encode_labels(train, labels),
                            [e.text for e in val], encode_labels(val, labels),
                            labels)["metrics"]["accuracy"]

    for seed in (int(s) for s in a.seeds.split(",")):
        t = time.perf_counter()
        row = {"seed": seed,
               "row_split": score(*stratified_split(examples, 0.1, seed)),
               "blocked_split": score(*blocked_split(examples, 0.1, seed, a.block))}
        row["seconds"] = round(time.perf_counter() - t, 1)
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    for key in ("row_split", "blocked_split"):
        v = [r[key] for r in out["rows"]]
        out[key] = {"mean": float(np.mean(v)), "min": min(v), "max": max(v)}
    RESULTS.mkdir(exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("row_split", "blocked_split")}))


if __name__ == "__main__":
    main()
