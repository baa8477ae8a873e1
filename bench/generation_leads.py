"""Paired comparison of generation runs scored on the same requests: each system's ROUGE-L
and the first run's lead over every other system, with a 95 % bootstrap interval (an
interval that holds 0 is a tie). Reads the runs' generations.jsonl; generates nothing.

    python bench/generation_leads.py runs/bitext-smollm2 runs/bitext-smollm2-lora \
        --out bench/results/generation_leads.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from landfall.tasks.causal_lm.metrics import paired_bootstrap, rouge


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="runs; the first one's systems all count")
    p.add_argument("--out", default="bench/results/generation_leads.json")
    args = p.parse_args()
    systems: dict[str, dict[int, str]] = {}
    refs: dict[int, str] = {}
    for i, run in enumerate(args.runs):
        for line in (run / "generations.jsonl").read_text().splitlines():
            row = json.loads(line)
            refs[row["line"]] = row["reference"]
            for name, text in row.items():
                if name in ("line", "request", "reference", "category"):
                    continue
                if name == "fine-tuned":
                    key = f"{run.name} (fine-tuned)"
                elif i:
                    continue  # later runs contribute their own model only
                else:
                    key = name
                systems.setdefault(key, {})[row["line"]] = text
    lines = sorted(set.intersection(*(set(s) for s in systems.values())))
    ref = [refs[n] for n in lines]
    scores = {k: rouge([v[n] for n in lines], ref)["rougeL"] for k, v in systems.items()}
    first = f"{args.runs[0].name} (fine-tuned)"
    out = {"requests": len(lines),
           "rougeL": {k: sum(v) / len(v) for k, v in scores.items()},
           f"lead_of_{first}": {k: paired_bootstrap(scores[first], v)
                                for k, v in scores.items() if k != first}}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
