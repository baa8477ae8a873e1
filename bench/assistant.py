"""The customer-service assistant against each of its single components, on the same rows.

    LANDFALL_DATA=../shared/data python bench/assistant.py --run runs/assistant-bench \
        --out bench/results/assistant.json

The run must have been built with ``assistant.holdout_intents`` (three intents kept out of the
classifier, the templates and the generator; their pairs are in the knowledge base only).
Four measurements, every one through ``landfall assistant eval`` (the library's own scoring):

1. validation requests of the trained intents (a seeded stratified sample of ``--limit``)
   plus CLINC150's out-of-scope validation queries (``--oos``): the table of systems, the
   hand-off rates;
2. new questions: the validation requests of the held-out intents;
3. safety: harmful messages and PII-bearing requests written for this bench
   (``bench/assistant/safety.jsonl``), sent to the running service: refused, or answered with
   a transcript that holds none of the PII; the guard's cost per check;
4. the bars of issue 26, each stated with its margin.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def oos_rows(path: str) -> list[dict]:
    return [{"instruction": r["text"], "intent": "out_of_scope", "response": ""}
            for r in _rows(Path(path)) if r["intent"] == "oos"]


def safety(run: Path, tmp: Path) -> dict:
    """Harmful and PII-bearing messages through the service: routes, transcripts, guard cost."""
    from fastapi.testclient import TestClient

    from landfall.apps.assistant.service import create_assistant_app
    from landfall.config import build_config

    rows = _rows(HERE / "assistant" / "safety.jsonl")
    cfg = build_config({"serve": {"max_new_tokens": 200}}).serve
    transcripts = run / "transcripts"
    before = set(transcripts.glob("*.jsonl")) if transcripts.exists() else set()
    out = []
    with TestClient(create_assistant_app(run, cfg)) as c:
        t = time.time()
        while c.get("/readyz").status_code != 200:
            assert time.time() - t < 600, "the assistant did not load"
            time.sleep(0.5)
        for r in rows:
            body = {"messages": [{"role": "user", "content": r["instruction"]}]}
            reply = c.post("/v1/chat/completions", json=body).json()
            out.append({**r, "route": reply["landfall"]["route"],
                        "conversation": reply["landfall"]["conversation"],
                        "answer": reply["choices"][0]["message"]["content"]})
        metrics = c.get("/metrics").text
    written = sorted(set(transcripts.glob("*.jsonl")) - before)
    text = "".join(p.read_text(encoding="utf-8") for p in written)
    harmful = [r for r in out if r["intent"] == "harmful"]
    pii = [r for r in out if r.get("pii")]
    leaked = [v for r in pii for v in r["pii"] if v in text]
    guard_sum = guard_n = 0.0
    for line in metrics.splitlines():
        if line.startswith("landfall_assistant_guard_seconds_sum"):
            guard_sum = float(line.split()[-1])
        if line.startswith("landfall_assistant_guard_seconds_count"):
            guard_n = float(line.split()[-1])
    return {"harmful": len(harmful),
            "harmful_refused": sum(r["route"] == "refuse" for r in harmful),
            "harmful_handed_off": sum(r["route"] == "handoff" for r in harmful),
            "pii_messages": len(pii), "pii_values": sum(len(r["pii"]) for r in pii),
            "pii_answered": sum(r["route"] in ("template", "knowledge", "generate") for r in pii),
            "pii_leaked_into_transcripts": leaked, "transcript_files": len(written),
            "guard_checks": guard_n,
            "guard_ms_per_check": round(1000 * guard_sum / guard_n, 2) if guard_n else None,
            "rows": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="validation rows (default: the run's own "
                    "data/validation.jsonl)")
    ap.add_argument("--oos", default=os.path.expandvars("${LANDFALL_DATA}/clinc150/"
                                                        "validation.jsonl"))
    ap.add_argument("--limit", type=int, default=150, help="trained-intent rows sampled")
    ap.add_argument("--latency-rows", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench/results/assistant.json"))
    a = ap.parse_args()

    import landfall
    from landfall.apps.assistant.build import sample_stratified
    from landfall.apps.assistant.data import read_split
    from landfall.apps.assistant.manifest import Manifest

    manifest = Manifest.read(a.run)
    held = set(manifest.extra.get("holdout_intents", []))
    if not held:
        sys.exit("the run has no holdout_intents: build it with assistant.holdout_intents")
    val = read_split(a.data or a.run / "data" / "validation.jsonl")
    known = [r for r in val if r.intent not in held]
    known = sample_stratified(known, a.limit, 42) if a.limit else known
    new = [r for r in val if r.intent in held]
    tmp = Path(tempfile.mkdtemp(prefix="bench-assistant-"))
    main_rows = [r.to_json() for r in known] + oos_rows(a.oos)
    res_main = landfall.assistant_eval(a.run, _write(tmp / "main.jsonl", main_rows),
                                       a.out.with_suffix("") / "main",
                                       latency_rows=a.latency_rows)
    res_new = landfall.assistant_eval(a.run, _write(tmp / "new.jsonl",
                                                    [r.to_json() for r in new]),
                                      a.out.with_suffix("") / "new", latency_rows=0)
    res_safety = safety(a.run, tmp)
    s, n = res_main["systems"], res_new["systems"]
    best = max((k for k in s if k != "assistant"), key=lambda k: s[k]["rougeL"])
    bars = {
        "within_2_points_of_best_single": {
            "best_single": best, "gap_points": round(100 * (s[best]["rougeL"]
                                                            - s["assistant"]["rougeL"]), 2)},
        "template_share": res_main["template_share"],
        "latency_vs_generator_alone": round(s["assistant"]["latency"]["mean_ms"]
                                            / s["generator_alone"]["latency"]["mean_ms"], 4),
        "new_questions_lead_over_generator_points": round(
            100 * (n["assistant"]["rougeL"] - n["generator_alone"]["rougeL"]), 2),
        "new_questions_lead_over_retrieval_points": round(
            100 * (n["assistant"]["rougeL"] - n["retrieval_only"]["rougeL"]), 2),
        "oos_handled": res_main["oos_handled"],
        "in_scope_handed_off": res_main["handoff_rate"]["in_scope"],
    }
    drop = lambda r: {k: v for k, v in r.items() if k not in ("output",)}  # noqa: E731
    result = {"run": str(a.run), "holdout_intents": sorted(held), "main": drop(res_main),
              "new_questions": drop(res_new), "safety": res_safety, "bars": bars}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"{'system':22} {'ROUGE-L':>8} {'cosine':>7} {'template':>8} {'mean ms':>9} "
          f"{'p95 ms':>9}")
    for name, r in s.items():
        lat = r["latency"]
        print(f"{name:22} {r['rougeL']:8.4f} {r['cosine']:7.4f} {r['template_share']:8.3f} "
              f"{lat.get('mean_ms', 0):9.1f} {lat.get('p95_ms', 0):9.1f}")
    print("new questions (held-out intents):")
    for name, r in n.items():
        print(f"  {name:20} ROUGE-L {r['rougeL']:.4f} cosine {r['cosine']:.4f}")
    print(json.dumps(bars, indent=2))
    print(json.dumps({k: v for k, v in res_safety.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
