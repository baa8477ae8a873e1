"""Adaptation studies: continued pretraining, PEFT methods, augmentation, seed ensembles.

Every arm is a real `landfall` command run in its own process (so peak memory is that
process's own), on the same seeded train/validation files, and scored on the same documents:

    python bench/adaptation.py peft        # IMDb slice: full vs LoRA vs IA3 vs prompt vs prefix
    python bench/adaptation.py pretrain    # IMDb slice: with vs without MLM on `unsup`
    python bench/adaptation.py ensemble    # IMDb slice: 3 seeds vs the best of them
    python bench/adaptation.py augment     # BANKING77, 10 per intent: none vs EDA vs paraphrase
    python bench/adaptation.py all

The slices are small on purpose (2 CPU cores); sizes are options. Results go to
bench/results/adaptation-<study>.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("LANDFALL_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
RESULTS = Path(__file__).parent / "results"
LANDFALL = [sys.executable, "-m", "landfall"]

# Learning rates per method: PEFT methods train few parameters and want larger steps
# (LoRA paper: 5e-4-ish for BERT-size models; IA3 and prompt tuning higher still).
PEFT_ARMS = [("full", "none", 1e-4), ("lora", "lora", 1e-3), ("ia3", "ia3", 5e-3),
             ("prompt", "prompt", 1e-2), ("prefix", "prefix", 1e-2)]


def run(args: list[str], log: Path) -> dict:
    """Run one landfall command; wall time, exit code and the process's peak RSS."""
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(LANDFALL + args, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "LANDFALL_PROGRESS": "0"})
        _, status, usage = os.wait4(proc.pid, 0)
    return {"rc": os.waitstatus_to_exitcode(status), "wall_s": time.perf_counter() - t,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def last_error(log: Path) -> str:
    """The CLI's closing "error: ..." message (wrapped over several lines), else the last line."""
    text = log.read_text()
    at = text.rfind("error:")
    tail = text[at:] if at >= 0 else (text.strip().splitlines() or [""])[-1]
    return " ".join(tail.split())


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def imdb_slice(work: Path, n_train: int, n_val: int, seed: int) -> tuple[Path, Path]:
    """A seeded, balanced sample of IMDb's labelled train set, split into train/validation."""
    with gzip.open(DATA / "imdb" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = random.Random(seed)
    by = {lab: [r for r in rows if r["label"] == lab] for lab in ("pos", "neg")}
    train, val = [], []
    for group in by.values():
        rng.shuffle(group)
        train += group[: n_train // 2]
        val += group[n_train // 2 : n_train // 2 + n_val // 2]
    rng.shuffle(train)
    return write_jsonl(work / "imdb-train.jsonl", train), write_jsonl(work / "imdb-val.jsonl", val)


def banking_slice(work: Path, per_intent: int, val_per_intent: int, seed: int):
    with open(DATA / "banking77" / "train.csv", encoding="utf-8") as fh:
        rows = [{"text": r["text"], "label": r["category"]} for r in csv.DictReader(fh)]
    rng = random.Random(seed)
    rng.shuffle(rows)
    train, val, seen = [], [], {}
    for r in rows:
        k = seen.get(r["label"], 0)
        if k < per_intent:
            train.append(r)
        elif k < per_intent + val_per_intent:
            val.append(r)
        seen[r["label"]] = k + 1
    return (write_jsonl(work / "banking-train.jsonl", train),
            write_jsonl(work / "banking-val.jsonl", val))


def imdb_sets(train: Path, val: Path, a) -> list[str]:
    return ["--set", "model.name=minilm", "--set", f"data.train={train}",
            "--set", f"data.validation={val}", "--set", f"data.max_length={a.max_length}",
            "--set", "data.truncation=head+tail", "--set", f"train.epochs={a.epochs}",
            "--set", "train.batch_size=16", "--set", "train.lr=1e-4", "--set", "train.eval_every=0",
            "--set", "train.patience=0", "--set", "report.plots=false"]


def finetune(name: str, sets: list[str], work: Path) -> dict:
    """Train one arm; an arm with exactly the same settings that another study already ran
    (e.g. full fine-tuning = "without pretraining" = the seed-42 ensemble member) is reused."""
    memo_file = work.parent / "arms.json"
    memo = json.loads(memo_file.read_text()) if memo_file.exists() else {}
    key = json.dumps(sets)
    if key in memo and (Path(memo[key]) / "eval.json").exists():
        out, res = Path(memo[key]), {"rc": 0, "reused": memo[key]}
    else:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)  # a rerun replaces the arm
        res = run(["train", "--output", str(out), *sets], work / f"{name}.log")
        if res["rc"] == 0:
            memo[key] = str(out)
            memo_file.write_text(json.dumps(memo, indent=1))
    row = {"arm": name, **res}
    if res["rc"] == 0:
        ev = json.loads((out / "eval.json").read_text())
        tr = ev["train"]
        row.update(accuracy=ev["validation"]["accuracy"], macro_f1=ev["validation"]["macro_f1"],
                   samples_per_s=tr["samples_per_s"], train_s=tr["train_seconds"],
                   trainable_params=tr.get("trainable_params"),
                   total_params=tr.get("total_params"), n_train=ev["data"]["n_train"],
                   n_validation=ev["data"]["n_validation"],
                   baseline=(ev.get("baseline") or {}).get("accuracy"))
    else:
        row["error"] = last_error(work / f"{name}.log")
    print(json.dumps(row), flush=True)
    return row


def study_peft(a, work: Path) -> list[dict]:
    train, val = imdb_slice(work.parent, a.n_train, a.n_val, a.seed)  # shared by studies
    rows = []
    for name, method, lr in PEFT_ARMS:
        extra = [] if method == "none" else ["--set", f"peft.method={method}",
                                             "--set", f"train.lr={lr}"]
        rows.append(finetune(f"peft-{name}", [*imdb_sets(train, val, a), *extra], work))
        rows[-1]["lr"] = lr
    return rows


def study_pretrain(a, work: Path) -> list[dict]:
    train, val = imdb_slice(work.parent, a.n_train, a.n_val, a.seed)  # shared by studies
    pt = work / "mlm"
    shutil.rmtree(pt, ignore_errors=True)
    res = run(["pretrain", "--output", str(pt), "--set", "model.name=minilm",
               "--set", f"data.train={DATA / 'imdb' / 'unsup.jsonl.gz'}",
               "--set", f"data.limit={a.pretrain_docs}",
               "--set", f"data.max_length={a.max_length}", "--set", "train.epochs=1",
               "--set", "train.batch_size=32", "--set", "train.lr=1e-4",
               "--set", "train.eval_every=0", "--set", "pretrain.whole_word=true"],
              work / "mlm.log")
    budget = {"arm": "mlm-pretraining", "docs": a.pretrain_docs, "max_length": a.max_length,
              "epochs": 1, **res}
    if res["rc"] == 0:
        budget["metrics"] = [json.loads(x) for x in (pt / "metrics.jsonl").read_text()
                             .splitlines() if "eval_perplexity" in x]
    print(json.dumps(budget), flush=True)
    rows = [budget, finetune("without-pretraining", [*imdb_sets(train, val, a)], work)]
    if res["rc"] == 0:
        rows.append(finetune("with-pretraining", [*imdb_sets(train, val, a),
                                                  "--set", f"model.name={pt / 'model'}"], work))
    return rows


def study_ensemble(a, work: Path) -> list[dict]:
    train, val = imdb_slice(work.parent, a.n_train, a.n_val, a.seed)  # shared by studies
    rows, dirs = [], []
    for seed in (42, 1, 2):  # 42: the default, i.e. the full fine-tuning arm of `peft`
        extra = [] if seed == 42 else ["--set", f"train.seed={seed}"]
        rows.append(finetune(f"seed-{seed}", [*imdb_sets(train, val, a), *extra], work))
        dirs.append(rows[-1].get("reused") or str(work / f"seed-{seed}"))
    ens = work / "ensemble"
    shutil.rmtree(ens, ignore_errors=True)
    res = run(["ensemble", *dirs, "--output", str(ens)], work / "ensemble.log")
    ev_dir = work / "ensemble-eval"
    res2 = run(["evaluate", str(ens), "--data", str(val), "--output", str(ev_dir)],
               work / "ensemble-eval.log")
    row = {"arm": "ensemble of 3", "rc": res["rc"] or res2["rc"], "wall_s": res2["wall_s"]}
    if row["rc"] == 0:
        ev = json.loads((ev_dir / "eval.json").read_text())
        v = ev["metrics"]
        row.update(accuracy=v["accuracy"], macro_f1=v["macro_f1"])
    rows.append(row)
    print(json.dumps(row), flush=True)
    return rows


def study_augment(a, work: Path) -> list[dict]:
    train, val = banking_slice(work.parent, a.per_intent, a.val_per_intent, a.seed)
    n = len(train.read_text().splitlines())
    rows = []
    for name, extra in [("none", []),
                        ("eda", ["--set", "data.augment=eda",
                                 "--set", "data.augment_per_example=2"]),
                        ("paraphrase", ["--set", "data.augment=paraphrase",
                                        "--set", "data.augment_per_example=1"])]:
        copies = {"none": 1, "eda": 3, "paraphrase": 2}[name]
        steps = -(-n * copies // 32) * a.intent_epochs
        sets = ["--set", "model.name=minilm", "--set", f"data.train={train}",
                "--set", f"data.validation={val}", "--set", "data.max_length=64",
                "--set", "data.truncation=head", "--set", f"train.epochs={a.intent_epochs}",
                "--set", "train.batch_size=32", "--set", "train.lr=2e-4",
                "--set", f"train.eval_every={max(1, steps // 4)}", "--set", "train.patience=0",
                "--set", "report.plots=false", *extra]
        rows.append(finetune(f"augment-{name}", sets, work))
    return rows


STUDIES = {"peft": study_peft, "pretrain": study_pretrain, "ensemble": study_ensemble,
           "augment": study_augment}


def table(rows: list[dict]) -> str:
    out = ["| arm | accuracy | trainable / total params | samples/s | train s | peak RSS MB |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.2%}" if "accuracy" in r else "refused: " + r.get("error", "—")
        params = (f"{r['trainable_params']:,} / {r['total_params']:,}"
                  if r.get("trainable_params") else "")
        sps = f"{r['samples_per_s']:.1f}" if "samples_per_s" in r else ""
        tr = f"{r['train_s']:.0f}" if "train_s" in r else f"{r.get('wall_s', 0):.0f} (wall)"
        out.append(f"| {r['arm']} | {acc} | {params} | {sps} | {tr} "
                   f"| {r.get('peak_rss_mb', 0):.0f} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", nargs="+", choices=[*STUDIES, "all"])
    p.add_argument("--work", type=Path, default=Path("runs/bench-adaptation"))
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-val", type=int, default=1000)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--pretrain-docs", type=int, default=4000)
    p.add_argument("--per-intent", type=int, default=10)
    p.add_argument("--val-per-intent", type=int, default=20)
    p.add_argument("--intent-epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    for name in STUDIES if "all" in a.study else a.study:
        work = a.work / name
        work.mkdir(parents=True, exist_ok=True)
        rows = STUDIES[name](a, work)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"adaptation-{name}.json").write_text(
            json.dumps({"study": name, "args": {k: str(v) for k, v in vars(a).items()},
                        "rows": rows}, indent=2) + "\n")
        print(f"\n## {name}\n\n{table(rows)}\n", flush=True)


if __name__ == "__main__":
    main()
