"""Load, soak and overload of `landfall serve` on loopback, with an asyncio aiohttp client in
this process and each server in its own process.

    python bench/serve_load.py load RUN --clients 1,8,32,128 --seconds 20   # vs naive baseline
    python bench/serve_load.py soak RUN --minutes 10 --clients 8
    python bench/serve_load.py overload RUN --seconds 60                   # 2x capacity, SIGTERM

`load` runs closed-loop clients (each sends one text, waits, sends the next) against ours
and against bench/naive_server.py (one transformers pipeline call per request) in the same
run. Texts are real IMDb reviews, or the `text` field of `--texts FILE`. Results go to
bench/results/serve_*.json.
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
import threading
import time
from pathlib import Path

import aiohttp
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


async def _post(http: aiohttp.ClientSession, text: str) -> tuple[int | str, bool]:
    """One request: (status or the transport error's name, whether 503 came with Retry-After).

    "refused" means the connection was never accepted; any other name means a request that
    was accepted and then lost.
    """
    try:
        async with http.post("/v1/classify", json={"texts": [text]}) as r:
            await r.read()
            return r.status, r.status == 503 and "Retry-After" in r.headers
    except aiohttp.ClientConnectorError:
        return "refused", False
    except (TimeoutError, aiohttp.ClientError) as exc:
        return type(exc).__name__, False


def _session(url: str, connections: int) -> aiohttp.ClientSession:
    # aiohttp, not httpx: on these 2 cores httpx's AsyncClient managed only 139 requests/s at
    # 32 connections (74 at 128) against a no-op FastAPI endpoint, aiohttp 1 700; the load
    # generator must not eat the CPU the servers are measured on.
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=120))


async def closed_loop(url: str, pool: list[str], clients: int, seconds: float) -> dict:
    lat, codes = [], {}
    deadline = time.perf_counter() + seconds
    async with _session(url, clients + 4) as http:
        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                code, _ = await _post(http, pool[i % len(pool)])
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
    async with _session(url, 2000) as http:
        async def one(i: int) -> None:
            nonlocal retry_after
            t = time.perf_counter()
            code, retry = await _post(http, pool[i % len(pool)])
            retry_after += retry
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


class Monitor:
    """Samples the server's resident memory and queue depth (from /metrics) every second."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc, self.url = proc, url
        self.samples: list[tuple[float, float, float]] = []  # (t, rss MB, queued windows)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.time()
        while not self._stop.wait(1.0):
            try:
                text = httpx.get(self.url + "/metrics", timeout=5).text
                depth = next(float(line.split()[-1]) for line in text.splitlines()
                             if line.startswith("landfall_queue_depth "))
                self.samples.append((round(time.time() - t0, 1), rss_mb(self.proc), depth))
            except (httpx.HTTPError, psutil.Error, StopIteration):
                pass

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        rss = [s[1] for s in self.samples] or [0.0]
        depth = [s[2] for s in self.samples] or [0.0]
        return {"rss_mb_max": max(rss), "queue_depth_max": max(depth),
                "metrics_polls_answered": len(self.samples), "samples": self.samples}


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
    """Steady closed-loop load; per minute the server's RSS sampled every second.

    One sample is noisy (a forward pass in flight holds its activations, ~100 MB for 32 x
    256 tokens), so each minute reports the median and the minimum (the floor a leak would
    raise) of its ~60 samples.
    """
    pool = texts(a.texts)
    proc, url = start("ours", a.run, a.serve_args)
    try:
        asyncio.run(closed_loop(url, pool, a.clients, 30))  # warm-up
        minutes, rows = [], []
        t0 = time.time()
        while time.time() - t0 < 60 * a.minutes:
            with Monitor(proc, url) as mon:
                rows.append(asyncio.run(closed_loop(url, pool, a.clients, 60)))
            rss = [s[1] for s in mon.samples] or [rss_mb(proc)]
            minutes.append({"t": round(time.time() - t0), "rss_mb_median": statistics.median(rss),
                            "rss_mb_min": min(rss), "rss_mb_max": max(rss),
                            "texts_per_s": rows[-1]["texts_per_s"], "codes": rows[-1]["codes"]})
            print(json.dumps(minutes[-1]), flush=True)
    finally:
        stop(proc)
    codes = {}
    for r in rows:
        for k, v in r["codes"].items():
            codes[str(k)] = codes.get(str(k), 0) + v
    med = [m["rss_mb_median"] for m in minutes]
    out = {"minutes": a.minutes, "clients": a.clients, "per_minute": minutes, "codes": codes,
           "rss_growth_pct_first_to_last_minute": 100 * (med[-1] / med[0] - 1),
           "rss_growth_pct_second_to_last_minute": 100 * (med[-1] / med[min(1, len(med) - 1)]
                                                          - 1),
           "texts_per_s": statistics.mean(r["texts_per_s"] for r in rows)}
    print(json.dumps({k: v for k, v in out.items() if k != "per_minute"}))
    (RESULTS / f"serve_soak{a.out_suffix}.json").write_text(json.dumps(out, indent=2) + "\n")


def cmd_overload(a) -> None:
    pool = texts(a.texts)
    proc, url = start("ours", a.run, a.serve_args)
    try:
        cap = asyncio.run(closed_loop(url, pool, 32, 15))["texts_per_s"]
        rss0 = rss_mb(proc)
        with Monitor(proc, url) as mon:
            over = asyncio.run(open_loop(url, pool, 2 * cap, a.seconds))
        over.update(capacity_texts_per_s=cap, rss_mb_before=rss0, rss_mb_after=rss_mb(proc),
                    **mon.summary())
        print(json.dumps({k: v for k, v in over.items() if k != "samples"}), flush=True)
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
