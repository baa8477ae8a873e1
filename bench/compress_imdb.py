"""Compression of one trained run: `landfall compress` (every recipe, plus runs such as a
distilled student) against ONNX Runtime's own quantiser used as its docs show, one table.

    # the labelled files the other steps share (the run's own train / validation split)
    python bench/compress_imdb.py splits runs/imdb-minilm --train-limit 8000 --val-limit 1000
    # a 3-layer student on the teacher's soft targets (train subset + unsup transfer)
    landfall distill --teacher runs/imdb-minilm --student layers:3 --output runs/imdb-student \
        --set data.train=runs/bench-compress/train.jsonl \
        --set data.validation=runs/bench-compress/validation.jsonl ...
    # the table
    python bench/compress_imdb.py table runs/imdb-minilm --include runs/imdb-student

Peers (same data, same Predictor, same machine): ``quantize_dynamic`` with its default
arguments on the plain export (ONNX Runtime's quantisation docs), and the docs' transformer
recipe (``onnxruntime.transformers.optimizer`` fusions, then ``quantize_dynamic`` defaults).
Optimum's ORTQuantizer would be the third, but optimum-onnx 0.1.0 pins transformers < 4.58
and this project runs transformers 5, so it cannot be installed beside us.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

WORK = Path("runs/bench-compress")


def splits(a) -> None:
    """Write the run's own training split (a seeded subset) and validation split as JSONL."""
    from landfall.data.prepare import carve
    from landfall.data.splits import stratified_split
    from landfall.inference.loading import run_config

    cfg = run_config(a.run_dir)
    train, val = carve(cfg.data, cfg.train.seed)[:2]  # read once, split as the run did
    if a.train_limit and a.train_limit < len(train):
        train = stratified_split(train, a.train_limit / len(train), cfg.train.seed)[1]
    if a.val_limit and a.val_limit < len(val):
        val = stratified_split(val, a.val_limit / len(val), cfg.train.seed)[1]
    WORK.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("validation", val)):
        path = WORK / f"{name}.jsonl"
        path.write_text("".join(json.dumps({cfg.data.text_field: e.text,
                                            cfg.data.label_field: e.label}) + "\n"
                                for e in rows))
        print(f"{path}: {len(rows)} documents")


def _peer(run_dir: Path, out: Path, optimise: bool) -> Path:
    """A run directory around ONNX Runtime's docs-default dynamic quantisation."""
    from onnxruntime.quantization import quantize_dynamic

    from landfall.compression.onnx_export import export_onnx

    plain = out.with_name(out.name + "-fp32")
    shutil.rmtree(plain, ignore_errors=True)
    export_onnx(run_dir, plain, optimise=optimise)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(plain, out)
    quantize_dynamic(str(plain / "model" / "model.onnx"), str(out / "model" / "model.onnx"))
    shutil.rmtree(plain)
    return out


def table(a) -> None:
    from landfall.api import compress
    from landfall.compression.measure import measure
    from landfall.compression.pipeline import load_eval, relative
    from landfall.utils.quiet import quiet_transformers

    quiet_transformers()
    data = str(WORK / "validation.jsonl")
    out = WORK / "compressed"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    summary = compress(a.run_dir, data, out, max_drop=a.max_drop, include=a.include,
                           latency_docs=a.latency_docs, overrides=a.set or ())
    summary["compress_seconds"] = time.perf_counter() - t
    rows = summary["rows"]
    ref = rows[0]
    _, texts, y, labels = load_eval(a.run_dir, data, 0, 0)
    for name, optimise in (("peer: ORT quantize_dynamic, docs defaults", False),
                           ("peer: ORT transformer optimiser + quantize_dynamic defaults", True)):
        try:  # the docs' defaults fail on the fused graph (shape inference): say so
            path = _peer(a.run_dir, WORK / ("peer-opt" if optimise else "peer"), optimise)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors
            rows.append({"method": name, "error": str(exc).splitlines()[0][:300]})
            continue
        r = relative({"method": name, "path": str(path),
                      **measure(path, texts, y, labels, latency_docs=a.latency_docs)}, ref)
        rows.append(r)
        print(json.dumps(r), flush=True)
    Path(a.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{len(texts)} documents; chosen: {summary['chosen']}\n")
    print("| method | MB | x smaller | params | ms b1 | docs/s b32 | x fp32 | accuracy | drop |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['method']} | failed: {r['error']} |||||||| ")
            continue
        print(f"| {r['method']} | {r['mb_on_disk']:.1f} | {r['smaller']:.2f} "
              f"| {r['params'] / 1e6:.1f} M | {r['latency_ms_b1']:.1f} "
              f"| {r['docs_per_s_b32']:.1f} | {r['speedup_b32']:.2f} | {r['accuracy']:.2%} "
              f"| {r['drop_points']:+.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("splits")
    s.add_argument("run_dir", type=Path)
    s.add_argument("--train-limit", type=int, default=8000)
    s.add_argument("--val-limit", type=int, default=1000)
    t = sub.add_parser("table")
    t.add_argument("run_dir", type=Path)
    t.add_argument("--include", type=Path, action="append", default=[])
    t.add_argument("--max-drop", type=float, default=0.5)
    t.add_argument("--latency-docs", type=int, default=50)
    t.add_argument("--set", action="append", help="e.g. prune.recovery_steps=300")
    t.add_argument("--out", default="bench/results/compress_imdb.json")
    a = p.parse_args()
    {"splits": splits, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
