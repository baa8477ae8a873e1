"""Load, soak and overload of `landfall serve` on loopback, with an asyncio httpx client in
this process and each server in its own process.

    python bench/serve_load.py load RUN --clients 1,8,32,128 --seconds 20   # vs naive baseline
    python bench/serve_load.py soak RUN --minutes 10 --clients 8
    python bench/serve_load.py overload RUN --seconds 30                   # 2x capacity, SIGTERM

`load` runs closed-loop clients (each sends one review, waits, sends the next) against ours
and against bench/naive_server.py (one transformers pipeline call per request) in the same
run. Texts are real IMDb reviews. Results go to bench/results/serve_*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).parent / "results"


TEXTS = str(DATA / "imdb" / "train.jsonl.gz")


def texts(path: str = "", n: int = 2000) -> list[str]:
    """``n`` texts (the ``text`` field) of a JSONL(.gz) or CSV file, shuffled."""
    from landfall.data.readers import read_texts

    out = [e.text for e in read_texts(path or TEXTS, limit=n)]
    random.Random(0).shuffle(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, run: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    if kind == "ours":
        cmd = [sys.executable, "-m", "landfall", "serve", run, "--port", str(port), *extra]
    else:
        cmd = [sys.executable, str(Path(__file__).parent / "naive_server.py"), run, "--port",
               str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "LANDFALL_PROGRESS": "0"})
    url = f"http://127.0.0.1:{port}"
    path = "/readyz" if kind == "ours" else "/healthz"
    t = time.time()
    while True:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() - t > 300:
            raise RuntimeError(f"{kind} server did not start")
        time.sleep(0.5)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def closed_loop(url: str, pool: list[str], clients: int, seconds: float) -> dict:
    lat, codes = [], {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    r = await http.post("/v1/classify", json={"texts": [pool[i % len(pool)]]})
                    code = r.status_code
                except httpx.TransportError as exc:
                    code = type(exc).__name__
                codes[code] = codes.get(code, 0) + 1
                if code == 200:
                    lat.append(time.perf_counter() - t)
                i += clients

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        wall = time.perf_counter() - t0
    return {"clients": clients, "seconds": wall, "ok": len(lat), "codes": codes,
            "texts_per_s": len(lat) / wall, "p50_ms": 1000 * (pct(lat, 0.5) or 0),
            "p99_ms": 1000 * (pct(lat, 0.99) or 0)}


async def open_loop(url: str, pool: list[str], rate: float, seconds: float,
                    on_half=None) -> dict:
    """Poisson arrivals at ``rate``/s regardless of answers (an overload is possible)."""
    lat, codes, retry_after = [], {}, 0
    rng = random.Random(1)
    tasks = []
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        async def one(i: int) -> None:
            nonlocal retry_after
            t = time.perf_counter()
            try:
                r = await http.post("/v1/classify", json={"texts": [pool[i % len(pool)]]})
                code = r.status_code
                retry_after += code == 503 and "retry-after" in r.headers
            except httpx.ConnectError:
                code = "refused"  # never accepted
            except httpx.TransportError as exc:
                code = type(exc).__name__  # accepted, then lost
            codes[code] = codes.get(code, 0) + 1
            if code == 200:
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        i, half_done = 0, False
        while (now := time.perf_counter() - t0) < seconds:
            if on_half and not half_done and now > seconds / 2:
                on_half()
                half_done = True
            tasks.append(asyncio.create_task(one(i)))
            i += 1
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    return {"rate": rate, "sent": i, "codes": codes, "retry_after_on_503": retry_after,
            "p50_ms": 1000 * (pct(lat, 0.5) or 0), "p99_ms": 1000 * (pct(lat, 0.99) or 0),
            "max_ms": 1000 * max(lat, default=0)}


def rss_mb(proc: subprocess.Popen) -> float:
    return psutil.Process(proc.pid).memory_info().rss / 2**20


def cmd_load(a) -> None:
    pool = texts(a.texts)
    out = {"run": a.run, "seconds": a.seconds, "rows": []}
    for kind in ("ours", "naive"):
        proc, url = start(kind, a.run, a.serve_args)
        try:
            asyncio.run(closed_loop(url, pool, 4, 3))  # warm-up
            for c in a.clients:
                r = {"server": kind, **asyncio.run(closed_loop(url, pool, c, a.seconds))}
                print(json.dumps(r), flush=True)
                out["rows"].append(r)
        finally:
            stop(proc)
    by = {(r["server"], r["clients"]): r for r in out["rows"]}
    print("\n| clients | ours texts/s | naive texts/s | x | ours p50 / p99 ms "
          "| naive p50 / p99 ms |\n|---|---|---|---|---|---|")
    for c in a.clients:
        o, n = by[("ours", c)], by[("naive", c)]
        print(f"| {c} | {o['texts_per_s']:.1f} | {n['texts_per_s']:.1f} "
              f"| {o['texts_per_s'] / max(n['texts_per_s'], 1e-9):.2f} "
              f"| {o['p50_ms']:.0f} / {o['p99_ms']:.0f} | {n['p50_ms']:.0f} / {n['p99_ms']:.0f} |")
    (RESULTS / f"serve_load{a.out_suffix}.json").write_text(json.dumps(out, indent=2) + "\n")


def cmd_soak(a) -> None:
    pool = texts(a.texts)
    proc, url = start("ours", a.run, a.serve_args)
    try:
        asyncio.run(closed_loop(url, pool, a.clients, 30))  # warm-up
        samples = [(0.0, rss_mb(proc))]
        rows = []
        t0 = time.time()
        while time.time() - t0 < 60 * a.minutes:
            rows.append(asyncio.run(closed_loop(url, pool, a.clients, 60)))
            samples.append((time.time() - t0, rss_mb(proc)))
            print(json.dumps({"t": samples[-1][0], "rss_mb": samples[-1][1],
                              "texts_per_s": rows[-1]["texts_per_s"],
                              "codes": rows[-1]["codes"]}), flush=True)
    finally:
        stop(proc)
    codes = {}
    for r in rows:
        for k, v in r["codes"].items():
            codes[str(k)] = codes.get(str(k), 0) + v
    out = {"minutes": a.minutes, "clients": a.clients, "rss_mb": samples, "codes": codes,
           "rss_growth_pct": 100 * (samples[-1][1] / samples[0][1] - 1),
           "texts_per_s": statistics.mean(r["texts_per_s"] for r in rows)}
    print(json.dumps(out))
    (RESULTS / f"serve_soak{a.out_suffix}.json").write_text(json.dumps(out, indent=2) + "\n")


def cmd_overload(a) -> None:
    pool = texts(a.texts)
    proc, url = start("ours", a.run, a.serve_args)
    try:
        cap = asyncio.run(closed_loop(url, pool, 32, 15))["texts_per_s"]
        rss0 = rss_mb(proc)
        over = asyncio.run(open_loop(url, pool, 2 * cap, a.seconds))
        over.update(capacity_texts_per_s=cap, rss_mb_before=rss0, rss_mb_after=rss_mb(proc))
        print(json.dumps(over), flush=True)
    finally:
        stop(proc)
    proc, url = start("ours", a.run, a.serve_args)
    term = asyncio.run(open_loop(url, pool, cap, a.seconds,
                                 on_half=lambda: proc.send_signal(signal.SIGTERM)))
    proc.wait(60)
    print(json.dumps(term), flush=True)
    out = {"overload_2x": over, "sigterm_at_capacity": term}
    (RESULTS / f"serve_overload{a.out_suffix}.json").write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cmd", choices=["load", "soak", "overload"])
    p.add_argument("run")
    p.add_argument("--clients", default="1,8,32,128")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--serve-args", default="", help="Extra `landfall serve` arguments.")
    p.add_argument("--texts", default="", help="File of texts (default: IMDb train).")
    p.add_argument("--out-suffix", default="", help="Appended to the result file names.")
    a = p.parse_args()
    a.serve_args = a.serve_args.split()
    if a.cmd == "load":
        a.clients = [int(c) for c in a.clients.split(",")]
    else:
        a.clients = int(a.clients.split(",")[0]) if a.cmd == "soak" else 32
    {"load": cmd_load, "soak": cmd_soak, "overload": cmd_overload}[a.cmd](a)


if __name__ == "__main__":
    main()
