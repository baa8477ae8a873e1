"""Hand freed heap memory back to the OS while serving (glibc only; elsewhere a no-op).

Why: PyTorch's CPU tensors come from malloc. Batches of varying shape (padded lengths and
sizes change with every batch) leave glibc's heap fragmented, and freed chunks in the middle
of the heap are kept, so a server's resident memory creeps up for many minutes although
nothing leaks: a 10-minute soak of `landfall serve` grew +19.6 % (800 → 957 MB, still
climbing); MiniLM alone over 300 random batches, 859 → 1 437 MB (``bench/heap_growth.py``).
``malloc_trim(0)`` returns the free pages of every arena (``MADV_DONTNEED``): with it the same
batches come back to 479-485 MB after every trim, and the soak stayed within ±2 %. Each trim
took 70-90 ms there, done from the model thread between batches at most every ``every_s``
seconds. Alternatives measured: a fixed mmap threshold (``mallopt``) keeps RSS flat too but
made the batches 36 % slower (a page fault for every fresh buffer); jemalloc / tcmalloc
need ``LD_PRELOAD``, which a pip-installed tool cannot set for its own process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time


class HeapTrimmer:
    def __init__(self, every_s: float = 10.0) -> None:
        self.every = every_s
        self._last = time.monotonic()
        self.trims = 0
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            self._trim = libc.malloc_trim
        except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
            self._trim = None

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe_trim(self) -> bool:
        """Trim if ``every_s`` has passed since the last trim; True if it trimmed."""
        if self._trim is None or self.every <= 0:
            return False
        now = time.monotonic()
        if now - self._last < self.every:
            return False
        self._trim(0)
        self._last = time.monotonic()
        self.trims += 1
        return True
