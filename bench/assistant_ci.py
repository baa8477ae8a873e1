"""Paired bootstrap intervals of the assistant's ROUGE-L lead over each single component, from
the replies that ``landfall assistant eval`` wrote (every row scored for every system).

    python bench/assistant_ci.py bench/results/assistant/new bench/results/assistant/main \
        --out bench/results/assistant_ci.json

Rows resampled with replacement, 10 000 times (seed 0): a lead whose interval excludes the
bar is met beyond the noise of so few rows; one whose interval includes it is met on its
point estimate only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

COMPONENTS = ("template_only", "retrieval_only", "generator_alone", "generator_retrieval")


def leads(replies: Path, draws: int = 10_000, seed: int = 0) -> dict:
    from landfall.tasks.causal_lm.metrics import rouge

    rows = [json.loads(x) for x in replies.read_text(encoding="utf-8").splitlines() if x]
    rows = [x for x in rows if x["reference"] and "answer_template_only" in x]
    refs = [x["reference"] for x in rows]
    mine = np.array(rouge([x["answer"] for x in rows], refs)["rougeL"])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows), (draws, len(rows)))
    out = {}
    for name in COMPONENTS:
        if f"answer_{name}" not in rows[0]:
            continue
        d = mine - np.array(rouge([x[f"answer_{name}"] for x in rows], refs)["rougeL"])
        lo, hi = np.percentile(d[picks].mean(axis=1), [2.5, 97.5])
        out[name] = {"lead_points": round(100 * float(d.mean()), 2),
                     "ci95_points": [round(100 * float(lo), 2), round(100 * float(hi), 2)],
                     "rows": len(rows)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("evals", type=Path, nargs="+", help="assistant eval output folders")
    ap.add_argument("--out", type=Path, default=Path("bench/results/assistant_ci.json"))
    a = ap.parse_args()
    result = {str(p): leads(p / "replies.jsonl") for p in a.evals}
    a.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    for p, r in result.items():
        print(p)
        for name, x in r.items():
            lo, hi = x["ci95_points"]
            print(f"  over {name:20} {x['lead_points']:+6.2f} points, 95 % [{lo:+.2f}, {hi:+.2f}]"
                  f" ({x['rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
