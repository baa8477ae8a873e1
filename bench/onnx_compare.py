"""PyTorch fp32 vs int8 vs ONNX Runtime fp32 / int8 (dynamic, static) on one trained run.

Every variant is scored by the same Predictor code (same tokens, same long-text windows) on the
same validation documents: accuracy, weights on disk, latency at batch 1 (median over single
documents) and throughput at batch 32. The peer is ONNX Runtime's quantiser as its docs show
it: ``quantize_dynamic`` on the exported graph with default settings (MatMul weights only).

    python bench/onnx_compare.py runs/imdb-minilm --limit 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from landfall.compress.onnx_export import dir_bytes, export_onnx
from landfall.data.labels import encode_labels
from landfall.data.tokens import tokenize
from landfall.inference.loading import load_run, model_dir
from landfall.inference.onnx_backend import OnnxClassifier
from landfall.tasks.classification import compute_metrics
from landfall.utils.quiet import quiet_transformers


def measure(name: str, predictor, docs, y, bytes_on_disk: int | None, n_latency: int) -> dict:
    predictor.batch_size = 32
    predictor.predict_tokens(docs[:32])  # warm-up
    t = time.perf_counter()
    out = predictor.predict_tokens(docs)
    secs = time.perf_counter() - t
    lat = []
    for d in docs[:n_latency]:
        t1 = time.perf_counter()
        predictor.predict_tokens([d])
        lat.append(time.perf_counter() - t1)
    m = compute_metrics(y, out.probs, predictor.labels)
    row = {"method": name, "accuracy": m["accuracy"], "docs_per_s_b32": len(docs) / secs,
           "latency_ms_b1": 1000 * statistics.median(lat),
           "mb_on_disk": None if bytes_on_disk is None else bytes_on_disk / 2**20}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from long_text import validation_of

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--test", default="", help="Labelled test file; default: the run's split.")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--latency-docs", type=int, default=100)
    p.add_argument("--calibration", type=int, default=256, help="Static: calibration texts.")
    p.add_argument("--out", default="bench/results/onnx_compare.json")
    a = p.parse_args()
    quiet_transformers()
    torch.set_num_threads(torch.get_num_threads())

    examples = validation_of(a.run_dir, a.test)[: a.limit]
    base = load_run(a.run_dir, device="cpu")
    y = encode_labels(examples, base.labels)
    docs = tokenize([e.text for e in examples], base.tokenizer)
    fp32_bytes = dir_bytes(model_dir(a.run_dir))
    rows = [measure("PyTorch fp32", base, docs, y, fp32_bytes, a.latency_docs)]

    q = load_run(a.run_dir, device="cpu")
    q.model = torch.ao.quantization.quantize_dynamic(q.model, {torch.nn.Linear},
                                                     dtype=torch.qint8)
    rows.append(measure("PyTorch dynamic int8 (Linear)", q, docs, y, None, a.latency_docs))

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        from landfall.api import export_onnx as api_export

        for name, kw in [("ONNX fp32 (fused)", {}),
                         ("ONNX int8 dynamic (Landfall)", {"quantize": "dynamic"}),
                         ("ONNX int8 static (Landfall)", {"quantize": "static",
                                                          "calibration_size": a.calibration})]:
            out = work / name.split()[1] / kw.get("quantize", "none")
            t = time.perf_counter()
            api_export(a.run_dir, out, **kw)
            export_s = time.perf_counter() - t
            rows.append(measure(name, load_run(out), docs, y, dir_bytes(out / "model"),
                                a.latency_docs))
            rows[-1]["export_s"] = export_s

        # the peer: ONNX Runtime's quantiser as its docs use it, on the plain export
        from onnxruntime.quantization import quantize_dynamic

        plain = work / "plain"
        export_onnx(a.run_dir, plain, optimise=False)
        import shutil

        peer = work / "peer"  # a model dir (config + tokenizer) around the peer's graph
        shutil.copytree(plain / "model", peer)
        quantize_dynamic(str(plain / "model" / "model.onnx"), str(peer / "model.onnx"))
        pp = load_run(plain)
        pp.model = OnnxClassifier(peer)
        rows.append(measure("ORT quantize_dynamic, docs defaults (peer)", pp, docs, y,
                            (peer / "model.onnx").stat().st_size, a.latency_docs))

    ref = rows[0]
    for r in rows:
        r["drop_points"] = 100 * (ref["accuracy"] - r["accuracy"])
        r["speedup_b32"] = r["docs_per_s_b32"] / ref["docs_per_s_b32"]
        r["smaller"] = (ref["mb_on_disk"] / r["mb_on_disk"]) if r["mb_on_disk"] else None
    Path(a.out).write_text(json.dumps({"run": str(a.run_dir), "n": len(docs),
                                       "rows": rows}, indent=2) + "\n")
    print("| method | accuracy | drop (pts) | MB on disk | x smaller | latency b1 ms "
          "| docs/s b32 | x fp32 |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        mb = f"{r['mb_on_disk']:.1f}" if r["mb_on_disk"] else "n/a"
        sm = f"{r['smaller']:.2f}" if r["smaller"] else "n/a"
        print(f"| {r['method']} | {r['accuracy']:.2%} | {r['drop_points']:+.2f} | {mb} | {sm} "
              f"| {r['latency_ms_b1']:.1f} | {r['docs_per_s_b32']:.1f} "
              f"| {r['speedup_b32']:.2f} |")


if __name__ == "__main__":
    main()
