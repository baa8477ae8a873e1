"""Scale-out side by side on this machine: training samples/s on 1 and 2 processes (DDP,
gloo), predict texts/s single-process against Ray with 1 and 2 actors, and /v1/classify
requests/s from ``serve`` against Ray Serve with 2 replicas. Writes bench/results/scale.json.

    PYTHONPATH=src LANDFALL_DATA=../shared/data .venv/bin/python bench/scale.py

On 2 cores no speed-up is expected: the figures show the overhead of each engine. Run it
alone; other processes on the machine make every figure noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).parent))
import landfall  # noqa: E402
from common import free_port, machine, stop_server, wait_ready  # noqa: E402
from landfall.data.sources import imdb_train  # noqa: E402


def train_config(limit: int, steps: int) -> dict:
    return {"model": {"name": "minilm"},
            "data": {"train": imdb_train(), "limit": limit, "validation_fraction": 0.2,
                     "max_length": 128, "truncation": "head+tail"},
            "train": {"batch_size": 16, "max_steps": steps, "epochs": 1.0, "eval_every": steps,
                      "checkpoint_every": 1000, "precision": "fp32"},
            "report": {"baseline": False, "plots": False}}


def bench_training(tmp: Path, limit: int, steps: int) -> dict:
    cfg = tmp / "train.toml"
    cfg.write_text(tomli_w.dumps(train_config(limit, steps)))
    out = {}
    for procs, threads in ((1, os.cpu_count() or 1), (2, max(1, (os.cpu_count() or 2) // 2))):
        run = tmp / f"train-{procs}"
        t = time.perf_counter()
        r = landfall.train(cfg, run, overrides=[f"train.threads={threads}"], processes=procs)
        wall = time.perf_counter() - t
        tr = r["train"]
        out[f"{procs}_process"] = {
            "threads_per_process": threads, "samples_per_s": round(tr["samples_per_s"], 2),
            "step_seconds": round(tr["train_seconds"] / tr["steps"], 3),
            "steps": tr["steps"], "wall_seconds_with_startup": round(wall, 1)}
    return out


def bench_predict(tmp: Path, run: Path, n: int) -> dict:
    from landfall.data.readers import read_texts
    from landfall.inference.predict import predict_file
    from landfall.scale.ray_batch import connect, ray_engine

    texts = [e.text for e in read_texts(imdb_train(), text_field="text")[:n]]
    src = tmp / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cores = os.cpu_count() or 1
    from landfall.inference import predict as pm

    pm.CHUNK = max(16, n // 8)  # 8 chunks: work for 2 actors (the same chunks everywhere)
    out = {}
    t = time.perf_counter()
    import torch

    torch.set_num_threads(cores)
    predict_file(run, src, tmp / "single.jsonl")
    out["single_process"] = {"texts_per_s": round(n / (time.perf_counter() - t), 1),
                             "threads": cores}
    connect(None, cores)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    for actors in (1, 2):
        threads = max(1, cores // actors)
        t = time.perf_counter()
        predict_file(run, src, tmp / f"ray-{actors}.jsonl",
                     engine=ray_engine(actors=actors, threads=threads))
        dt = time.perf_counter() - t
        same = (tmp / f"ray-{actors}.jsonl").read_bytes() == \
            (tmp / "single.jsonl").read_bytes()
        out[f"ray_{actors}_actors"] = {"texts_per_s": round(n / dt, 1),
                                       "threads_per_actor": threads,
                                       "note": "includes each actor loading the model",
                                       "identical_file": same}
    ray.shutdown()  # Serve gets a fresh local Ray (the data actors' workers gone)
    return out


async def _load(url: str, texts: list[str], requests: int, concurrency: int) -> float:
    """Requests/s of ``requests`` one-text requests, ``concurrency`` at a time (aiohttp: an
    httpx client eats the CPU the servers are measured on, see "Serving" below)."""
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as client:
        async def one(i: int) -> None:
            async with sem, client.post(url, json={"texts": [texts[i % len(texts)]]}) as r:
                r.raise_for_status()
                await r.read()

        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return requests / (time.perf_counter() - t)


def bench_serve(run: Path, requests: int, concurrency: int) -> dict:
    from landfall.data.readers import read_texts

    texts = [e.text[:1000] for e in read_texts(imdb_train(), text_field="text")[:64]]
    out = {}
    port = free_port()
    env = {**os.environ, "LANDFALL_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "landfall", "serve", str(run), "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/readyz")
        url = f"http://127.0.0.1:{port}/v1/classify"
        asyncio.run(_load(url, texts, 16, concurrency))  # warm-up
        out["serve"] = {"requests_per_s": round(asyncio.run(
            _load(url, texts, requests, concurrency)), 1)}
    finally:
        stop_server(proc)

    from ray import serve

    from landfall.api import build_service_app
    from landfall.config import build_config
    from landfall.scale.ray_serve import run as ray_run

    cfg = build_config({"serve": {}}).serve
    ray_cfg = build_config({"ray": {"replicas": 2, "replica_cpus": 1}}).ray
    port = free_port()
    ray_run(lambda: build_service_app(run, cfg, []), ray_cfg, host="127.0.0.1", port=port,
            blocking=False)
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        ok = 0
        while ok < 8:
            ok = ok + 1 if httpx.get(base + "/readyz", timeout=30).status_code == 200 else 0
            time.sleep(0.2)
        asyncio.run(_load(base + "/v1/classify", texts, 16, concurrency))
        out["ray_serve_2_replicas"] = {"requests_per_s": round(asyncio.run(
            _load(base + "/v1/classify", texts, requests, concurrency)), 1)}
    finally:
        serve.shutdown()
    out["load"] = {"requests": requests, "concurrency": concurrency, "texts_per_request": 1}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=400, help="IMDb reviews read for training")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per training run")
    p.add_argument("--texts", type=int, default=256, help="texts predicted")
    p.add_argument("--requests", type=int, default=200, help="requests per serving run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--stages", default="training,predict,serve",
                   help="comma-separated: training, predict, serve (the last two train a "
                        "1-process run first)")
    p.add_argument("--output", default=str(Path(__file__).parent / "results" / "scale.json"))
    a = p.parse_args()
    os.environ.setdefault("LANDFALL_PROGRESS", "0")
    result = {"machine": machine(), "command": " ".join(sys.argv)}
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every stage: a stage that fails keeps the ones before
        out.write_text(json.dumps(result, indent=2) + "\n")

    stages = a.stages.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        if "training" in stages:
            result["training"] = bench_training(tmp, a.limit, a.steps)
            save()
        run = tmp / "train-1"
        if not run.exists() and ("predict" in stages or "serve" in stages):
            cfg = tmp / "run.toml"
            cfg.write_text(tomli_w.dumps(train_config(a.limit, a.steps)))
            landfall.train(cfg, run)
        if "predict" in stages:
            result["predict"] = bench_predict(tmp, run, a.texts)
            save()
        if "serve" in stages:
            result["serve"] = bench_serve(run, a.requests, a.concurrency)
            save()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
