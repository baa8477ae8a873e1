"""Bench set-up shared by the benchmarks: the machine a figure was measured on, and the
plumbing of the serving benches (a server subprocess on a free loopback port, percentiles)."""

from __future__ import annotations

import os
import platform
import re
import signal
import socket
import subprocess
import time
import urllib.request


def machine() -> dict:
    """CPU model, cores and the SIMD flags that decide CPU speed (AVX2, AVX-512, VNNI, AMX)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    model = re.search(r"Model name:\s*(.+)", text)
    flags = re.search(r"Flags:\s*(.+)", text)
    simd = sorted(f for f in (flags.group(1).split() if flags else [])
                  if re.match(r"(avx2|avx512\w*|amx\w*|avx_vnni|fma)$", f))
    return {"cpu": model.group(1).strip() if model else platform.processor(),
            "cores": os.cpu_count(), "simd_flags": simd}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank, 0 <= q <= 1) of ``xs``; None when empty."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 300.0) -> float:
    """Poll ``url`` until it answers 200 (seconds waited); raise if the server exits first or
    ``timeout`` passes."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} "
                               "answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:  # refused, or an HTTP error (503 while loading)
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def stop_server(proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL: whether it exited by itself, and when."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        by_itself = True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        by_itself = False
    return {"exited_by_itself": by_itself, "seconds": round(time.monotonic() - t0, 2),
            "returncode": proc.returncode}
