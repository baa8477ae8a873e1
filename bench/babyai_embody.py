"""Embodiment bench (issue 17): parse exact match and grounded success of the command
parser and its baselines, on BabyAI's own missions, held-out splits, hand-written
paraphrases and the shield's commands; plus latency from command to first action.

    python bench/babyai_embody.py splits                       # build the held-out splits
    python bench/babyai_embody.py eval runs/babyai-parser rules --episodes 500
    python bench/babyai_embody.py eval smollm2-fewshot --episodes 500 --skip-shield
    python bench/babyai_embody.py latency runs/babyai-parser
    python bench/babyai_embody.py table

Results: bench/results/babyai/<system>/<split>/eval.json. Executions are deterministic given
(level, seed, plan, policy), so one cache of them (bench/results/babyai/executions.json) is
shared by the systems: a system whose parse equals another's gets the same execution.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from landfall import runs
from landfall.embody.evaluate import evaluate_commands, evaluate_missions
from landfall.embody.systems import load_system
from landfall.embody.world import make_env, reset
from landfall.tasks.command_parser.data import (
    Renderer,
    has_pair,
    is_heldout_composition,
    parse_pairs,
)
from landfall.tasks.command_parser.grammar import from_instr

HERE = Path(__file__).resolve().parent
DATA = HERE / "babyai"
OUT = HERE / "results" / "babyai"
LEVELS = ["BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0", "BabyAI-PutNextLocal-v0",
          "BabyAI-SynthLoc-v0", "BabyAI-BossLevel-v0"]
PAIRS = "red ball,green key,blue box,purple door"  # = the preset's command_parser.heldout_pairs
SPLITS = {"unseen_pairs": DATA / "unseen_pairs.jsonl",
          "unseen_compositions": DATA / "unseen_compositions.jsonl",
          "handwritten": DATA / "handwritten.jsonl",
          "handwritten_everyday": DATA / "handwritten_everyday.jsonl",
          "shield": DATA / "shield.jsonl"}


def build_splits(n_pairs: int = 150, n_comp: int = 100) -> None:
    """Missions at seeds 3,000,000+ (never trained on): those naming a held-out colour x type
    pair, and BossLevel's "A and B, then/after C and D"; each in BabyAI's wording and in one
    template paraphrase (the wording is not what these splits test)."""
    pairs = parse_pairs(PAIRS)
    render = Renderer(random.Random(17))
    rows = []
    seed = 3_000_000
    envs = {lvl: make_env(lvl) for lvl in LEVELS[:4]}
    while len(rows) < 2 * n_pairs:
        level = LEVELS[seed % 4]
        reset(envs[level], seed)
        plan = from_instr(envs[level].unwrapped.instrs)
        if has_pair(plan, pairs):
            rows.append({"level": level, "seed": seed, "command": plan.surface(),
                         "style": "babyai"})
            rows.append({"level": level, "seed": seed,
                         "command": " ".join(render.paraphrase(plan)[0]).replace(" ,", ","),
                         "style": "paraphrase"})
        seed += 1
    runs.write_text(SPLITS["unseen_pairs"], "".join(json.dumps(r) + "\n" for r in rows))
    rows, seed = [], 3_500_000
    env = make_env("BabyAI-BossLevel-v0")
    while len(rows) < 2 * n_comp:
        reset(env, seed)
        plan = from_instr(env.unwrapped.instrs)
        if is_heldout_composition(plan):
            rows.append({"level": "BabyAI-BossLevel-v0", "seed": seed,
                         "command": plan.surface(), "style": "babyai"})
            rows.append({"level": "BabyAI-BossLevel-v0", "seed": seed,
                         "command": " ".join(render.paraphrase(plan)[0]).replace(" ,", ","),
                         "style": "paraphrase"})
        seed += 1
    runs.write_text(SPLITS["unseen_compositions"], "".join(json.dumps(r) + "\n" for r in rows))
    print(f"splits written to {DATA}")


def _cache() -> dict:
    path = OUT / "executions.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_cache(cache: dict) -> None:
    runs.write_json(OUT / "executions.json", cache)


def _label(system: str) -> str:
    return Path(system).name if Path(system).exists() else system


def evaluate(systems: list[str], episodes: int, splits: list[str]) -> None:
    cache = _cache()
    for system in systems:
        parser = load_system(system)
        label = _label(system)
        t0 = time.perf_counter()
        partial = OUT / label / "partial.jsonl"  # every record as it comes (a cut-off run)
        partial.parent.mkdir(parents=True, exist_ok=True)

        def progress(rec, split="missions", partial=partial):
            with open(partial, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"split": split, **rec}) + "\n")

        if episodes:
            res = evaluate_missions(parser, LEVELS, episodes, OUT / label / "missions",
                                    cache=cache, progress=progress)
            _save_cache(cache)
            print(f"{label} missions: success {res['success_rate']:.4f} exact "
                  f"{res['parse_exact_match']:.4f} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        for split in splits:
            res = evaluate_commands(parser, SPLITS[split], OUT / label / split, cache=cache,
                                    progress=lambda rec, sp=split: progress(rec, sp))
            _save_cache(cache)
            extra = (f" shield P {res['shield']['precision']:.3f} R "
                     f"{res['shield']['recall']:.3f}" if "shield" in res else "")
            print(f"{label} {split}: success {res['success_rate']:.4f} exact "
                  f"{res['parse_exact_match']:.4f} refused {res['refused']} wrong actions "
                  f"executed {res['wrong_actions']}{extra}", flush=True)


def latency(system: str, n: int = 50) -> None:
    """Command -> first action, one command at a time (no batching), torch on 2 threads."""
    from landfall.embody.session import Session

    torch.set_num_threads(2)
    parser = load_system(system)
    env = make_env("BabyAI-GoToLocal-v0")
    parser.parse("warm up the model")
    firsts, parses = [], []
    for k in range(n):
        reset(env, 5_000_000 + k)
        s = Session(parser, "BabyAI-GoToLocal-v0", 5_000_000 + k)
        out = s.command(s.mission)
        parses.append(out.parse_s)
        if out.first_action_s is not None:
            firsts.append(out.first_action_s)
    firsts.sort()
    parses.sort()
    flags = next((line.split(":", 1)[1].split() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    res = {"system": _label(system), "n": n, "threads": torch.get_num_threads(),
           "first_action_s_median": firsts[len(firsts) // 2],
           "first_action_s_p90": firsts[int(len(firsts) * 0.9)],
           "parse_s_median": parses[len(parses) // 2],
           "cpu_flags": [f for f in flags if f.startswith(("avx", "amx"))]}
    runs.write_json(OUT / _label(system) / "latency.json", res)
    print(json.dumps(res))


def table() -> None:
    rows = ["| system | split | level | episodes | parse exact match | grounded success |",
            "|---|---|---|---|---|---|"]
    for sys_dir in sorted(p for p in OUT.iterdir() if p.is_dir()):
        for split in ["missions", *SPLITS]:
            f = sys_dir / split / "eval.json"
            if not f.exists():
                continue
            r = json.loads(f.read_text())
            for level, m in r["levels"].items():
                rows.append(f"| {sys_dir.name} | {split} | {level.split('-')[1]} | "
                            f"{m['episodes']} | {m['parse_exact_match']:.4f} | "
                            f"{m['success_rate']:.4f} |")
            rows.append(f"| {sys_dir.name} | {split} | **all** | {r['episodes']} | "
                        f"{r['parse_exact_match']:.4f} | {r['success_rate']:.4f} |")
            if "shield" in r:
                s = r["shield"]
                n = s["tp"] + s["fp"] + s["fn"] + s["tn"]
                rows.append(f"| {sys_dir.name} | shield P/R | | {n} | precision "
                            f"{s['precision']:.4f} | recall {s['recall']:.4f} |")
    print("\n".join(rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("splits")
    e = sub.add_parser("eval")
    e.add_argument("systems", nargs="+")
    e.add_argument("--episodes", type=int, default=500)
    e.add_argument("--splits", default=",".join(SPLITS))
    e.add_argument("--skip-shield", action="store_true")
    la = sub.add_parser("latency")
    la.add_argument("system")
    la.add_argument("--n", type=int, default=50)
    sub.add_parser("table")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (2 = both cores)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.cmd == "splits":
        build_splits()
    elif a.cmd == "eval":
        splits = [s for s in a.splits.split(",") if s and not (a.skip_shield and s == "shield")]
        evaluate(a.systems, a.episodes, splits)
    elif a.cmd == "latency":
        latency(a.system, a.n)
    else:
        table()


if __name__ == "__main__":
    sys.exit(main())
