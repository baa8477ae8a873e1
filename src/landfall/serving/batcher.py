"""Dynamic batching: windows from many requests, queued, run together off the event loop.

A single worker thread owns the model. It waits for the first queued request, gives others
``max_wait_ms`` to arrive, takes whole requests until ``max_batch_size`` windows are pending,
sorts those windows by length and runs them in forward passes bounded by ``max_batch_size``
and ``max_batch_tokens`` (``data.batching.inference_batches``, the same grouping as
``predict``). Each request gets its windows' logits back through a Future.

The queue is bounded twice: in windows (``max_queue``: memory) and in expected wait
(``max_queue_wait_s``: queued windows over the measured windows/s of recent forward passes,
so that an overloaded server refuses at once instead of accepting work it can only answer
after the client's timeout). ``submit`` raises ``QueueFull`` with the expected wait, and the
server turns that into 503 + Retry-After. ``close`` stops taking new work and, by default,
finishes what is queued.

Why by hand: the serving stacks that batch (Triton, TorchServe, TEI) are servers of their
own; inside a FastAPI process there is no maintained library for this, and it is short.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from landfall.data.batching import inference_batches


class QueueFull(Exception):
    """The queue is full (in windows, or in expected wait); ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Closed(Exception):
    """The batcher is shutting down."""


@dataclass
class _Job:
    windows: list[list[int]]
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """Callbacks the server's metrics hang on (all optional)."""

    on_batch: Callable[[int, int], None] = lambda size, tokens: None  # windows, their tokens
    on_queue: Callable[[int], None] = lambda depth: None  # windows waiting
    on_error: Callable[[int], None] = lambda requests: None  # requests the model failed on


class Batcher:
    def __init__(self, run: Callable[[Sequence[Sequence[int]]], np.ndarray], *,
                 max_batch_size: int = 32, max_wait_ms: float = 5.0,
                 max_batch_tokens: int = 0, max_queue: int = 1024,
                 max_queue_wait_s: float = 0.0, stats: BatchStats | None = None) -> None:
        """``run(windows) -> logits`` is one forward pass (the Predictor's window_logits);
        ``max_queue_wait_s`` 0 turns the expected-wait bound off."""
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_batch_tokens = max_batch_tokens
        self.max_queue = max_queue
        self.max_queue_wait = max_queue_wait_s
        self.rate = 0.0  # windows/s of recent forward passes (moving average; 0 = unknown)
        self.stats = stats or BatchStats()
        self._jobs: deque[_Job] = deque()
        self._queued = 0  # windows in _jobs
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="landfall-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queued

    def expected_wait(self, extra: int = 0) -> float:
        """Seconds until ``extra`` more windows would be done, at the measured rate."""
        return (self._queued + extra) / self.rate if self.rate > 0 else 0.0

    def submit(self, windows: list[list[int]]) -> Future:
        """Queue one request's windows; its Future resolves to their logits, in order."""
        job = _Job(windows)
        with self._cond:
            if self._closing:
                raise Closed("shutting down")
            if self._queued and self._queued + len(windows) > self.max_queue:
                raise QueueFull(f"{self._queued} windows queued (limit {self.max_queue})",
                                self.expected_wait())
            wait = self.expected_wait(len(windows))
            if self._queued and self.max_queue_wait and wait > self.max_queue_wait:
                raise QueueFull(f"expected wait {wait:.1f} s ({self._queued} windows queued at "
                                f"{self.rate:.1f}/s; limit {self.max_queue_wait:g} s)",
                                self.expected_wait())
            self._jobs.append(job)
            self._queued += len(windows)
            self.stats.on_queue(self._queued)
            self._cond.notify()
        return job.future

    def close(self, drain: bool = True, timeout: float | None = None) -> None:
        """Refuse new work; finish (``drain``) or fail what is queued; stop the worker."""
        with self._cond:
            self._closing = True
            if not drain:
                while self._jobs:
                    self._jobs.popleft().future.set_exception(Closed("shutting down"))
                self._queued = 0
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        """Block for the next group of requests (None when closed and empty)."""
        with self._cond:
            while not self._jobs and not self._closing:
                self._cond.wait()
            if not self._jobs:
                return None
            deadline = time.monotonic() + self.max_wait
            while self._queued < self.max_batch_size and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            jobs, n = [], 0
            while self._jobs and (not jobs or n + len(self._jobs[0].windows)
                                  <= self.max_batch_size):
                job = self._jobs.popleft()
                jobs.append(job)
                n += len(job.windows)
            self._queued -= n
            self.stats.on_queue(self._queued)
            return jobs

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            windows = [w for j in live for w in j.windows]
            try:
                logits = self._forward(windows)
            except Exception as exc:  # noqa: BLE001 - retried alone below, then handed on
                self._one_by_one(live, exc)
                continue
            start = 0
            for j in live:
                j.future.set_result(logits[start : start + len(j.windows)])
                start += len(j.windows)

    def _one_by_one(self, jobs: list[_Job], exc: Exception) -> None:
        """A failed batch: run each request alone, so one poisoned request fails by itself
        and its batch-mates still get their answers."""
        if len(jobs) == 1:
            self.stats.on_error(1)
            jobs[0].future.set_exception(exc)
            return
        for j in jobs:
            try:
                j.future.set_result(self._forward(j.windows))
            except Exception as own:  # noqa: BLE001 - this request's own failure
                self.stats.on_error(1)
                j.future.set_exception(own)

    def _forward(self, windows: list[list[int]]) -> np.ndarray:
        start = time.perf_counter()
        out = self._run_sorted(windows)
        rate = len(windows) / max(time.perf_counter() - start, 1e-6)
        # a moving average: one odd batch (a cold cache, a GC pause) moves it by a fifth
        self.rate = rate if self.rate == 0 else 0.8 * self.rate + 0.2 * rate
        return out

    def _run_sorted(self, windows: list[list[int]]) -> np.ndarray:
        lengths = [len(w) for w in windows]
        out: np.ndarray | None = None
        for idx in inference_batches(lengths, self.max_batch_size, self.max_batch_tokens):
            logits = self.run([windows[i] for i in idx])
            if out is None:
                out = np.zeros((len(windows), logits.shape[1]), dtype=np.float32)
            out[idx] = logits
            self.stats.on_batch(len(idx), sum(lengths[i] for i in idx))
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)
