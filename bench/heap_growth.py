"""Why `landfall serve` trims the heap: resident memory over batches of random shapes.

    python bench/heap_growth.py runs/imdb-minilm --mode none|trim|mmap-threshold [--batches 400]

Runs the run's model over ``--batches`` batches of random size (1-32) and length (16-256),
as a server sees them, and prints the process RSS every 50 batches and the wall time.
``trim`` calls glibc ``malloc_trim(0)`` every ``--trim-every`` batches (20: about 10 s
here); ``mmap-threshold`` fixes glibc's mmap threshold at 256 KiB, which stops its dynamic
growth (so freed activations go straight back to the OS) at the price of a page fault on
every fresh buffer. Linux / glibc only. Results go to bench/results/heap_growth_<mode>.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--mode", choices=["none", "trim", "mmap-threshold"], default="none")
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--trim-every", type=int, default=20, help="Batches between trims.")
    a = p.parse_args()
    libc = ctypes.CDLL("libc.so.6")
    if a.mode == "mmap-threshold":
        libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
    from landfall.inference.loading import load_run

    predictor = load_run(a.run, batch_size=32)
    rng, proc, rss, trim_s = random.Random(0), psutil.Process(), [], 0.0
    t0 = time.perf_counter()
    for i in range(1, a.batches + 1):
        size, length = rng.randint(1, 32), rng.randint(16, 256)
        ids = [[rng.randint(1000, 20000) for _ in range(length)] for _ in range(size)]
        predictor.window_logits([predictor.add_special(w) for w in ids])
        if a.mode == "trim" and i % a.trim_every == 0:
            t = time.perf_counter()
            libc.malloc_trim(0)
            trim_s += time.perf_counter() - t
        if i % 50 == 0:
            rss.append(round(proc.memory_info().rss / 2**20))
    out = {"run": a.run, "mode": a.mode, "batches": a.batches, "trim_every": a.trim_every,
           "rss_mb_every_50": rss, "seconds": round(time.perf_counter() - t0, 1),
           "seconds_in_malloc_trim": round(trim_s, 2)}
    print(json.dumps(out))
    RESULTS.mkdir(exist_ok=True)
    name = f"heap_growth_{a.mode}{a.trim_every if a.mode == 'trim' else ''}.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
