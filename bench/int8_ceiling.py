"""How much faster can int8 make MiniLM on this CPU? The kernel ceiling, measured.

    python bench/int8_ceiling.py runs/imdb-minilm [--tokens 8192] [--threads 2]

Two measurements, both on the shapes of the model at batch 32 x 256 tokens:
1. the share of an fp32 forward pass spent in the linear layers (torch profiler): only
   that share can get faster with int8 weights (Amdahl);
2. each linear layer's matrix product alone, fp32 against the int8 kernels that dynamic
   quantisation uses: ONNX Runtime ``MatMulInteger`` after ``DynamicQuantizeLinear``
   (what ``quantize_dynamic`` emits) and PyTorch's ``quantized.dynamic.Linear`` (fbgemm).

The best possible end-to-end speed-up is then ``1 / ((1 - s) + s / k)`` with ``s`` the
linear share and ``k`` the kernel speed-up. Results go to bench/results/int8_ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

RESULTS = Path(__file__).parent / "results"


def best_ms(fn, repeat: int = 7) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def ort_session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def ort_matmul(m: int, k: int, n: int, threads: int, int8: bool) -> float:
    """Milliseconds of x[m,k] @ w[k,n] in ONNX Runtime, fp32 or as quantize_dynamic does it."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, n)).astype(np.float32) * 0.05
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    if not int8:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
        inits = [numpy_helper.from_array(w, "w")]
    else:  # per-tensor symmetric int8 weights, uint8 activations quantised on the fly
        scale = np.float32(np.abs(w).max() / 127)
        wq = np.round(w / scale).astype(np.int8)
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            helper.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["acc"]),
            helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["xs", "ws"], ["s"]),
            helper.make_node("Mul", ["accf", "s"], ["y"]),
        ]
        inits = [numpy_helper.from_array(wq, "wq"),
                 numpy_helper.from_array(np.array(0, np.int8), "wz"),
                 numpy_helper.from_array(np.array(scale, np.float32), "ws")]
    graph = helper.make_graph(nodes, "mm", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort_session(model, threads)
    feed = {"x": rng.standard_normal((m, k)).astype(np.float32)}
    return best_ms(lambda: sess.run(None, feed))


def torch_linear(m: int, k: int, n: int, int8: bool) -> float:
    lin = torch.nn.Linear(k, n)
    if int8:
        lin = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
    x = torch.randn(m, k)
    with torch.inference_mode():
        return best_ms(lambda: lin(x))


def linear_share(run: str, batch: int, length: int) -> dict:
    """Share of an fp32 forward pass's CPU time spent in linear layers (torch profiler)."""
    from transformers import AutoModelForSequenceClassification

    from landfall.inference.loading import model_dir

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir(run))).eval()
    ids = torch.randint(1000, 20000, (batch, length))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(input_ids=ids, attention_mask=mask)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    linear = sum(e.self_cpu_time_total for e in events if e.key in ("aten::addmm", "aten::mm"))
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
    return {"linear_share": linear / total, "total_ms": total / 1000,
            "top_ops": {e.key: round(e.self_cpu_time_total / 1000, 1) for e in top}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="An fp32 run directory (its model gives the shapes).")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    m = a.batch * a.length
    share = linear_share(a.run, a.batch, a.length)
    print(json.dumps({k: v for k, v in share.items()}), flush=True)
    # MiniLM's linear shapes (hidden 384, FFN 1536): 4 attention projections, FFN in, FFN out
    shapes = {"attention q/k/v/out (x4)": (384, 384, 4), "FFN in": (384, 1536, 1),
              "FFN out": (1536, 384, 1)}
    rows, tot = [], {"ort_fp32": 0.0, "ort_int8": 0.0, "torch_fp32": 0.0, "torch_int8": 0.0}
    for name, (k, n, times) in shapes.items():
        r = {"layer": name, "m": m, "k": k, "n": n,
             "ort_fp32": ort_matmul(m, k, n, a.threads, False),
             "ort_int8": ort_matmul(m, k, n, a.threads, True),
             "torch_fp32": torch_linear(m, k, n, False),
             "torch_int8": torch_linear(m, k, n, True)}
        for key in tot:
            tot[key] += times * r[key]
        rows.append(r)
        print(json.dumps(r), flush=True)
    s = share["linear_share"]
    out = {"run": a.run, "batch": a.batch, "length": a.length, "threads": a.threads,
           **share, "layers": rows, "per_layer_ms": tot}
    print("\n| kernels | fp32 ms / layer | int8 ms / layer | kernel speed-up | "
          "end-to-end ceiling |\n|---|---|---|---|---|")
    for lib in ("ort", "torch"):
        k = tot[f"{lib}_fp32"] / tot[f"{lib}_int8"]
        ceiling = 1 / ((1 - s) + s / k)
        out[f"{lib}_kernel_speedup"], out[f"{lib}_ceiling"] = k, ceiling
        print(f"| {lib} | {tot[f'{lib}_fp32']:.1f} | {tot[f'{lib}_int8']:.1f} | {k:.2f}x "
              f"| {ceiling:.2f}x (linear share {s:.0%}) |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_ceiling.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
