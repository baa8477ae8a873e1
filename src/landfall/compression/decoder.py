"""``landfall compress`` on a causal-LM run: quantised generators under a ROUGE-L budget.

Candidates (each a run directory that ``generate``, ``evaluate`` and ``serve`` load): torch
bf16 weights (bf16 compute where the CPU has AVX512-BF16/AMX), torch dynamic int8 (every
Linear, at load), and GGUF F16, Q8_0 and Q4_K_M for llama.cpp (``compression.gguf``). Each
is measured as it would be served, through the serving engine of its backend
(``serving.generation`` / ``serving.generation_llama``) in this process, on a seeded sample of
the run's validation requests with greedy decoding:

- quality: ROUGE-L and MiniLM cosine against the references, and their drop (points) against
  the uncompressed run scored the same way; the share of answers identical to its answers;
- speed: one request at a time (tokens/s of a whole answer, time to first token), and the
  same requests ``clients`` at a time (aggregate tokens/s);
- size: the weights on disk.

Selection: among the candidates at most ``max_drop`` ROUGE-L points below the original, the
one that streams a single answer fastest (tokens/s at 1 client); within 5 % of it, the
higher aggregate tokens/s wins. The chosen run directory is installed at ``output``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from landfall import runs
from landfall.compression.measure import dir_bytes, markdown_table
from landfall.errors import LandfallError
from landfall.utils.progress import log

ORIGINAL = "original"
TIE = 0.05
GGUF_METHODS = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4_k_m": "Q4_K_M"}
METHODS = ("torch-bf16", "torch-int8", *GGUF_METHODS)
SIZE_SUFFIXES = {".safetensors", ".gguf", ".bin"}


def validation_records(run_dir: Path, data: str | None, n: int):
    """A seeded sample of ``n`` requests and references: from ``data`` when given (every
    row is a candidate), else the run's own validation split, made as training made it."""
    from landfall.config import expand_env
    from landfall.inference.loading import run_config
    from landfall.tasks.causal_lm.data import read_records, split_records

    cfg = run_config(run_dir)
    if data:
        records = read_records(str(data), cfg.chat)
    elif cfg.data.validation:
        records = read_records(expand_env(cfg.data.validation, "data.validation"), cfg.chat)
    elif cfg.data.train:
        records = split_records(read_records(expand_env(cfg.data.train, "data.train"),
                                             cfg.chat),
                                cfg.data.validation_fraction, cfg.train.seed)[1]
    else:
        raise LandfallError(f"{run_dir}: no --data given and the run names no training file")
    if n and n < len(records):
        records = split_records(records, n / len(records), cfg.train.seed)[1]
    return records


def _serve_config(precision: str, clients: int, max_new_tokens: int, threads: int):
    from landfall.config import build_config

    return build_config({"serve": {
        "precision": precision, "max_batch_size": clients, "max_streams": 4 * clients + 8,
        "max_new_tokens": max_new_tokens, "threads": threads, "max_queue_wait_s": 0,
        "stream_timeout_s": 900.0, "max_kv_mb": 512}}).serve


async def _one(engine, request: str, params, t0: float | None = None) -> dict:
    prompt = await asyncio.to_thread(engine.prompt_ids, request)
    start = time.monotonic() if t0 is None else t0
    stream = engine.open(prompt, params, start)
    async for _ in stream.events():
        pass
    end = time.monotonic()
    if stream.finish in ("error", "timeout"):
        raise LandfallError(f"{engine.run_dir}: generation ended with {stream.finish}")
    ttft = (stream.first_token_at or end) - start
    return {"text": stream.text.strip(), "tokens": stream.tokens, "seconds": end - start,
            "ttft": ttft}


async def _measure(engine, requests: Sequence[str], max_new_tokens: int, clients: int,
                   single: int) -> dict:
    from landfall.serving.generation import Params

    # loaded on a thread that then ends, as `landfall serve` loads: an OpenMP runtime keeps a
    # spinning thread team for each live thread that has computed, which would slow the
    # decoding thread (an executor's thread lives on)
    loading = threading.Thread(target=engine.load, name="landfall-load")
    loading.start()
    await asyncio.to_thread(loading.join)
    if not engine.ready.is_set():
        raise LandfallError(f"{engine.run_dir}: the model did not load: {engine.error}")
    params = Params(max_new_tokens=max_new_tokens)
    try:
        alone = [await _one(engine, r, params) for r in requests[:single or len(requests)]]
        gate = asyncio.Semaphore(clients)

        async def limited(r):
            async with gate:
                return await _one(engine, r, params)

        t = time.monotonic()
        many = await asyncio.gather(*(limited(r) for r in requests))
        wall = time.monotonic() - t
    finally:
        await asyncio.to_thread(engine.close, 60.0)
    n = len(alone)
    same = sum(a["text"] == m["text"] for a, m in zip(alone, many[:n], strict=True))
    return {"texts": [a["text"] for a in alone] + [m["text"] for m in many[n:]],
            "same_when_batched": same / max(n, 1),
            "tokens_per_s_1": sum(a["tokens"] for a in alone) / sum(a["seconds"] for a in alone),
            "ttft_ms": 1000 * statistics.median(a["ttft"] for a in alone),
            f"tokens_per_s_{clients}": sum(m["tokens"] for m in many) / wall,
            "new_tokens": sum(m["tokens"] for m in many), "backend": engine.backend}


def measure_generator(run_dir: Path, requests: Sequence[str], *, precision: str = "auto",
                      max_new_tokens: int = 128, clients: int = 16, single: int = 0,
                      threads: int = 0) -> dict:
    """Serve ``run_dir`` in a fresh process and time it: the first ``single`` requests (0 = all)
    one at a time, then all ``requests`` with at most ``clients`` at once. The answers
    returned are those decoded alone (greedy, deterministic), the concurrent pass's for the
    rest: a batch's arithmetic may differ from one sequence's (llama.cpp and torch pick
    other kernels) and flip a near-tie, so that the concurrent answers vary from run to run
    with the batches' make-up; ``same_when_batched`` is the share that came out the same."""
    import multiprocessing

    # a fresh process for each candidate, as a service is: what ran before in this process
    # (the embedder, the candidates before it) leaves thread pools that compete for the cores
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_here, (str(run_dir), list(requests), precision,
                                          max_new_tokens, clients, single, threads))


def _measure_here(run_dir: str, requests: list[str], precision: str, max_new_tokens: int,
                  clients: int, single: int, threads: int) -> dict:
    from landfall.serving.generation_llama import make_engine
    from landfall.serving.metrics import Metrics

    cfg = _serve_config(precision, clients, max_new_tokens, threads)
    engine = make_engine(Path(run_dir), cfg, Metrics())
    return asyncio.run(_measure(engine, requests, max_new_tokens, clients, single))


def weights_mb(run_dir: Path) -> float:
    from landfall.inference.loading import model_dir

    path = model_dir(run_dir)
    return sum(f.stat().st_size for f in path.iterdir()
               if f.is_file() and f.suffix in SIZE_SUFFIXES) / 2**20 or dir_bytes(path) / 2**20


def build_candidate(method: str, src: Path, out: Path, f32_cache: Path) -> Path:
    from landfall.compression.recipes import Context, torch_bf16, torch_int8

    if method == "torch-bf16":
        return torch_bf16(src, out, Context())
    if method == "torch-int8":
        return torch_int8(src, out, Context())
    if method in GGUF_METHODS:
        from landfall.compression.gguf import export_gguf

        return export_gguf(src, out, GGUF_METHODS[method], f32_cache=f32_cache)
    raise LandfallError(f"unknown method {method!r} for a causal-LM run; choose from "
                        f"{', '.join(METHODS)}")


def choose(rows: Sequence[dict], max_drop: float) -> dict | None:
    ok = [r for r in rows if "error" not in r and r["rougeL_drop"] <= max_drop + 1e-9]
    if not ok:
        return None
    fastest = max(r["tokens_per_s_1"] for r in ok)
    tied = [r for r in ok if r["tokens_per_s_1"] >= fastest * (1 - TIE)]
    return max(tied, key=lambda r: r["tokens_per_s_many"])


def _table(rows: Sequence[dict], chosen: str, clients: int) -> str:
    head = ["method", "backend", "MB", "ROUGE-L", "drop (pts)", "cosine", "drop (pts)",
            "same answers", "batched = alone", "tokens/s, 1 client", "TTFT (ms)",
            f"tokens/s, {clients} clients",
            "x original (1 client)"]
    return markdown_table(head, rows, chosen, lambda r: [
        r["backend"], f"{r['mb_on_disk']:.1f}", f"{r['rougeL']:.4f}",
        f"{r['rougeL_drop']:+.2f}", f"{r['cosine']:.4f}", f"{r['cosine_drop']:+.2f}",
        f"{r['same_answers']:.0%}", f"{r['same_when_batched']:.0%}",
        f"{r['tokens_per_s_1']:.1f}", f"{r['ttft_ms']:.0f}",
        f"{r['tokens_per_s_many']:.1f}", f"{r['speedup_1']:.2f}"])


def compress_generator(run_dir: str | Path, data: str | None, output: str | Path, *,
                       max_drop: float = 1.0, methods: Sequence[str] | None = None,
                       requests: int = 20, clients: int = 16, single: int = 0,
                       max_new_tokens: int = 0, threads: int = 0) -> dict:
    """Build and measure the decoder candidates of ``run_dir``; install the fastest within
    ``max_drop`` ROUGE-L points at ``output``; the table, plot and every candidate stay in
    ``output/compress/``."""
    from landfall.inference.embed import Embedder
    from landfall.inference.loading import run_config
    from landfall.tasks.causal_lm.metrics import cosine, rouge

    run_dir, output = Path(run_dir), Path(output)
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise LandfallError(f"unknown compression method(s) {unknown} for a causal-LM run; "
                            f"choose from {list(METHODS)}")
    if (output / runs.MODEL).exists():
        raise LandfallError(f"{output}: already holds a model; choose another --output")
    if max_drop < 0:
        raise LandfallError(f"--max-drop must be >= 0 ROUGE-L points, got {max_drop}")
    cfg = run_config(run_dir)
    records = validation_records(run_dir, data, requests)
    reqs, refs = [r.request for r in records], [r.response for r in records]
    new_tokens = max_new_tokens or cfg.generate.max_new_tokens
    work = output / "compress"
    cands = work / "candidates"
    import shutil

    shutil.rmtree(cands, ignore_errors=True)
    cands.mkdir(parents=True)
    embedder = Embedder("minilm")
    ref_vecs = embedder.embed(refs)
    rows: list[dict] = []

    def row(name: str, path: Path, precision: str) -> dict:
        log(f"measuring {name} ({len(reqs)} requests, {clients} at once)")
        m = measure_generator(path, reqs, precision=precision, max_new_tokens=new_tokens,
                              clients=clients, single=single, threads=threads)
        texts = m.pop("texts")
        r = {"method": name, "path": str(path), "mb_on_disk": weights_mb(path),
             "rougeL": sum(rouge(texts, refs)["rougeL"]) / len(refs),
             "cosine": float(cosine(embedder.embed(texts), ref_vecs).mean()),
             "tokens_per_s_many": m.pop(f"tokens_per_s_{clients}"), **m, "answers": texts}
        ref = rows[0] if rows else r
        r["rougeL_drop"] = 100 * (ref["rougeL"] - r["rougeL"])
        r["cosine_drop"] = 100 * (ref["cosine"] - r["cosine"])
        r["same_answers"] = sum(a == b for a, b in zip(texts, ref["answers"], strict=True)) \
            / len(texts)
        r["speedup_1"] = r["tokens_per_s_1"] / ref["tokens_per_s_1"]
        log(f"  {name}: ROUGE-L {r['rougeL']:.4f} ({r['rougeL_drop']:+.2f} pts), "
            f"{r['tokens_per_s_1']:.1f} tokens/s alone, {r['tokens_per_s_many']:.1f} at "
            f"{clients}, TTFT {r['ttft_ms']:.0f} ms, {r['mb_on_disk']:.1f} MB")
        return r

    rows.append(row(ORIGINAL, run_dir, "fp32"))
    f32_cache = work / "model.f32.gguf"
    for name in methods:
        out = cands / name
        log(f"building {name}")
        try:
            build_candidate(name, run_dir, out, f32_cache)
            rows.append(row(name, out, "auto"))
        except LandfallError as exc:
            log(f"  {name}: {exc}")
            rows.append({"method": name, "error": str(exc)})
    f32_cache.unlink(missing_ok=True)
    best = choose(rows[1:], max_drop)
    chosen = best["method"] if best else ORIGINAL
    src = Path(best["path"]) if best else run_dir
    _install(src, output)
    summary = {"source": str(run_dir), "data": str(data or cfg.data.train), "n": len(reqs),
               "max_drop": max_drop, "max_new_tokens": new_tokens, "clients": clients,
               "chosen": chosen, "settings": dataclasses.asdict(cfg.generate),
               "rows": rows}
    runs.write_json(work / "compress.json", summary)
    runs.write_text(work / "report.md", f"# Compression of the generator `{run_dir}`\n\n"
                    f"{len(reqs)} validation requests, greedy, at most {new_tokens} new tokens; "
                    f"speed as served on this machine (one request at a time: "
                    f"{f'the first {single}' if single else 'each'}, the answers scored; then "
                    f"all {len(reqs)}, {clients} at once, for the aggregate tokens/s). "
                    f"Budget: at most "
                    f"{max_drop} ROUGE-L points below the original. Chosen: **{chosen}**.\n\n"
                    + _table(rows, chosen, clients)
                    + "\n![ROUGE-L vs single-stream speed](pareto.png)\n")
    from landfall.reports.plots import plot_pareto

    ok = [r for r in rows if "error" not in r]
    plot_pareto(ok, work / "pareto.png", chosen=chosen, floor=rows[0]["rougeL"] - max_drop / 100,
                x="tokens_per_s_1", y="rougeL", x_label="tokens/s, one request at a time",
                y_label="ROUGE-L (x100)", higher_x=True)
    return summary


def _install(src: Path, output: Path) -> None:
    """Copy the chosen run directory (model and run files) to ``output``."""
    import shutil

    from landfall.inference.loading import model_dir

    model = model_dir(src)
    runs.save_dir(output / runs.MODEL, lambda tmp: shutil.copytree(model, tmp,
                                                                    dirs_exist_ok=True))
    runs.copy_run_files(src, output, (*runs.RUN_FILES, "compression.json"))
