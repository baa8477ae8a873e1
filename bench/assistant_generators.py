"""Another generator in the assistant's place, on the same new questions: alone and with
retrieval, scored as ``landfall assistant eval`` scores its components.

    LANDFALL_DATA=../shared/data python bench/assistant_generators.py \
        --run runs/assistant-bench4 --generator runs/assistant-bench4/members/generator \
        --out bench/results/assistant_generators.json

``bench/assistant.py`` measures the assistant's own generator (the compressed one it serves).
This asks whether the comparison would change with the uncompressed generator of the same
run: the rows are the validation requests of the run's held-out intents (``--data`` for
others), the knowledge base and prompts are the run's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a built assistant run")
    ap.add_argument("--generator", type=Path, action="append", required=True,
                    help="a causal_lm run (repeatable)")
    ap.add_argument("--data", type=Path, help="rows (default: the run's validation rows of "
                    "its held-out intents)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/assistant_generators.json"))
    a = ap.parse_args()

    from landfall.apps.assistant.assistant import Assistant
    from landfall.apps.assistant.data import read_split
    from landfall.apps.assistant.evaluate import quality, score_components
    from landfall.inference.loading import load_generation_run

    assistant = Assistant(a.run, generator=False, fill_profile=False)
    held = set(assistant.manifest.extra.get("holdout_intents", []))
    rows = read_split(a.data or a.run / "data" / "validation.jsonl")
    if not a.data:
        rows = [r for r in rows if r.intent in held]
    refs = [r.response for r in rows]
    result = {"run": str(a.run), "rows": len(rows), "generators": {}}
    for path in a.generator:
        assistant.generator = load_generation_run(path)
        comp = score_components(assistant, rows, latency_rows=0)
        result["generators"][str(path)] = {
            name: {k: v for k, v in quality(c["answers"], refs, assistant.embedder).items()
                   if k != "rougeL_rows"}
            for name, c in comp.items()}
        assistant.generator = None
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
