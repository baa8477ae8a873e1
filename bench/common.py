"""Bench set-up shared by the benchmarks: the machine a figure was measured on."""

from __future__ import annotations

import os
import platform
import re
import subprocess


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
