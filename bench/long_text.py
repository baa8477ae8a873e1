"""What each long-text strategy gives a trained run, on the same validation documents.

Scores one run directory with head, tail, head+tail and sliding windows (mean and max
aggregation) at inference, and reports accuracy, macro-F1, windows per document and docs/s.

    python bench/long_text.py runs/imdb-minilm                 # the run's own validation split
    python bench/long_text.py runs/imdb-minilm --test test.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from landfall.data.labels import encode_labels
from landfall.data.prepare import carve
from landfall.data.readers import read_examples
from landfall.data.tokens import tokenize
from landfall.inference.loading import load_run, run_config
from landfall.tasks.classification.metrics import compute_metrics
from landfall.utils.quiet import quiet_transformers

STRATEGIES = [
    ("head", {}),
    ("tail", {}),
    ("head+tail", {}),
    ("sliding", {"aggregate": "mean"}),
    ("sliding", {"aggregate": "max"}),
]


def validation_of(run_dir: Path, test: str):
    """The run's own validation documents (same seed, same split) or a given test file."""
    cfg = run_config(run_dir)
    if test:
        return read_examples(test, text_field=cfg.data.text_field,
                             label_field=cfg.data.label_field)
    return carve(cfg.data, cfg.train.seed)[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--test", default="", help="Labelled test file; default: the run's split.")
    p.add_argument("--limit", type=int, default=0, help="Score at most this many documents.")
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--strategies", default="",
                   help="Comma-separated subset, e.g. head+tail,sliding-max (default: all).")
    p.add_argument("--out", default="bench/results/long_text.json")
    args = p.parse_args()
    wanted = {s for s in args.strategies.split(",") if s}
    quiet_transformers()

    examples = validation_of(args.run_dir, args.test)
    if args.limit:
        examples = examples[: args.limit]
    pred = load_run(args.run_dir)
    y = encode_labels(examples, pred.labels)
    docs = tokenize([e.text for e in examples], pred.tokenizer)
    base = pred.spec
    over = sum(len(d) > base.body for d in docs)
    print(f"{len(docs)} documents, {over} ({over / len(docs):.0%}) longer than one window "
          f"of {base.max_length} tokens; trained with {base.truncation}")
    rows = []
    for name, extra in STRATEGIES:
        if wanted and name + (f"-{extra['aggregate']}" if extra else "") not in wanted:
            continue
        pred.spec = replace(base, truncation=name, stride=args.stride, max_windows=0, **extra)
        t = time.perf_counter()
        out = pred.predict_tokens(docs)
        secs = time.perf_counter() - t
        m = compute_metrics(y, out.probs, pred.labels)
        label = name + (f" ({extra['aggregate']})" if extra else "")
        rows.append({"strategy": label, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                     "ece": m["ece"], "windows_per_doc": float(out.windows.mean()),
                     "docs_per_s": len(docs) / secs})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"run": str(args.run_dir), "n": len(docs),
                                          "trained_with": base.truncation, "rows": rows},
                                         indent=2) + "\n")
    print("| strategy | accuracy | macro-F1 | windows/doc | docs/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['strategy']} | {r['accuracy']:.2%} | {r['macro_f1']:.4f} "
              f"| {r['windows_per_doc']:.2f} | {r['docs_per_s']:.1f} |")


if __name__ == "__main__":
    main()
