"""The generation engine of ``landfall serve`` on a GGUF run: llama.cpp, one stream at a time.

Same endpoints, limits, deadlines, cancellation, metrics and drain as the torch engine
(``serving.generation``), which it extends: the HTTP layer and ``Stream`` are shared, only
the decoding loop differs. llama-cpp-python's ``Llama`` decodes one sequence per context, so
admitted requests wait in a FIFO queue for the one decoding thread (measured in
bench/README.md: llama.cpp's single stream is fast, but it does not batch; for many clients
the torch engine's continuous batching gives more tokens per second in all). A request whose
client left, or whose deadline passed, is dropped from the queue or stopped between two
tokens.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid
from dataclasses import dataclass, field

from landfall.serving.generation import GenerationEngine, Params, Stream
from landfall.serving.http import Refused

try:  # the status the shared Stream compares with (transformers' continuous batching)
    from transformers.generation.continuous_batching import RequestStatus
    FAILED = RequestStatus.FAILED
except ImportError:  # pragma: no cover - the torch engine imports it too
    FAILED = "failed"


@dataclass
class Output:
    """What the decoding thread reports after each token, shaped as the torch engine's
    outputs (``Stream._advance`` reads both)."""

    generated_tokens: list[int]
    finished: bool = False
    error: str | None = None
    status: object = None

    def is_finished(self) -> bool:
        return self.finished


@dataclass
class _Job:
    stream: Stream
    prompt: list[int]
    loop: asyncio.AbstractEventLoop
    cancelled: threading.Event = field(default_factory=threading.Event)


class LlamaEngine(GenerationEngine):
    """A GGUF run served by llama.cpp: requests queue for the one decoding thread."""

    def __init__(self, run_dir, cfg, metrics) -> None:
        super().__init__(run_dir, cfg, metrics)
        self._jobs: collections.deque[_Job] = collections.deque()
        self._by_id: dict[str, _Job] = {}
        self._cv = threading.Condition()
        self._running: _Job | None = None
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        from landfall.inference.loading import load_generation_run, run_config

        gen = load_generation_run(self.run_dir, threads=self.cfg.threads)
        self.generator, self.tokenizer = gen, gen.tokenizer
        self.stop_ids, self.eos = set(gen.stop_ids), sorted(gen.stop_ids)
        self.defaults = run_config(self.run_dir).generate
        self.capacity_tokens = gen.n_ctx
        self.backend = (f"llama.cpp (GGUF {gen.path.name}/model.gguf, {gen.model.threads} "
                        "threads), one stream at a time: requests queue")
        # warm-up: the weights paged in and the compute buffers allocated before "ready"
        list(gen.model.tokens(self.prompt_ids("Hello"), max_new_tokens=4))
        self._thread = threading.Thread(target=self._decode_loop, name="landfall-llama",
                                        daemon=True)
        self._thread.start()
        self.ready.set()

    # -- the decoding thread -------------------------------------------------------------
    def _decode_loop(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._stop:
                    self._cv.wait()
                if not self._jobs:
                    return  # stopped and drained
                job = self._jobs.popleft()
                self._running = job
            try:
                if not job.cancelled.is_set():
                    self._decode(job)
            finally:
                with self._cv:
                    self._running = None
                    self._by_id.pop(job.stream.rid, None)

    def _decode(self, job: _Job) -> None:
        p = job.stream.params
        ids: list[int] = []

        def send(out: Output) -> None:
            try:
                job.loop.call_soon_threadsafe(job.stream.on_output, out)
            except RuntimeError:  # the event loop is closed: nobody listens any more
                job.cancelled.set()

        try:
            for tok in self.generator.model.tokens(
                    job.prompt, max_new_tokens=p.max_new_tokens, greedy=p.greedy,
                    temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                    stop=job.cancelled.is_set, eos=self.stop_ids):
                ids.append(tok)
                done = tok in self.stop_ids or len(ids) >= p.max_new_tokens
                send(Output(list(ids), finished=done))
                if done:
                    return
            if not job.cancelled.is_set():  # ended without a token (a full context)
                send(Output(list(ids), finished=True))
        except Exception as exc:  # noqa: BLE001 - reported to the stream, logged by it
            send(Output(list(ids), finished=True, error=f"{type(exc).__name__}: {exc}",
                        status=FAILED))

    # -- requests ------------------------------------------------------------------------
    def expected_wait(self) -> float:
        """Seconds a new request would wait: every stream ahead of it, one at a time."""
        return len(self.streams) * self.mean_seconds

    def open(self, prompt: list[int], params: Params, arrived: float) -> Stream:
        if not self.accepting:
            raise Refused(503, "server is shutting down", "closing", retry=True)
        if len(self.streams) >= self.cfg.max_streams:
            raise Refused(503, f"server busy: {len(self.streams)} streams (limit "
                          f"{self.cfg.max_streams})", "queue_full", retry=True,
                          retry_after=self.expected_wait())
        wait = self.expected_wait()
        if self.cfg.max_queue_wait_s and wait > self.cfg.max_queue_wait_s:
            raise Refused(503, f"server busy: expected wait {wait:.1f} s (limit "
                          f"{self.cfg.max_queue_wait_s:g} s)", "queue_full", retry=True,
                          retry_after=wait)
        if len(prompt) + params.max_new_tokens > self.capacity_tokens:
            raise Refused(413, f"max_tokens: {len(prompt)} prompt tokens + "
                          f"{params.max_new_tokens} new tokens exceed the llama.cpp context "
                          f"({self.capacity_tokens} tokens)", "too_long")
        rid = uuid.uuid4().hex
        stream = Stream(self, rid, len(prompt), params, arrived + self.cfg.stream_timeout_s)
        job = _Job(stream, list(prompt), asyncio.get_running_loop())
        self.streams[rid] = stream
        with self._cv:
            self._jobs.append(job)
            self._by_id[rid] = job
            self._cv.notify()
        self.metrics.streams.set(len(self.streams))
        return stream

    def release(self, stream: Stream) -> None:
        if self.streams.pop(stream.rid, None) is None:
            return
        with self._cv:
            job = self._by_id.pop(stream.rid, None)
            if job is not None:  # still queued or decoding: drop it / stop it
                job.cancelled.set()
                if job in self._jobs:
                    self._jobs.remove(job)
        self.metrics.finished.labels(stream.finish or "cancelled").inc()
        life = time.monotonic() - stream.started
        self.mean_seconds = life if self.mean_seconds == 0 else 0.9 * self.mean_seconds + 0.1 * life
        self.metrics.streams.set(len(self.streams))

    def reap(self) -> None:
        """Release the streams whose response never read them (past their deadline)."""
        now = time.monotonic()
        for stream in [s for s in self.streams.values() if now > s.deadline + 2.0]:
            stream.finish = stream.finish or "timeout"
            self.release(stream)

    def held_requests(self) -> int:
        with self._cv:
            return len(self._jobs) + (self._running is not None)

    def info(self) -> dict:
        from dataclasses import asdict

        gen = self.generator
        return {"run": self.run_dir.name, "task": "causal_lm", "backend": self.backend,
                "model_type": gen.config.get("model_type") if gen else None,
                "context": gen.context if gen else None,
                "kv_cache_tokens": self.capacity_tokens,
                "defaults": asdict(self.defaults) if self.ready.is_set() else None,
                "limits": {k: v for k, v in asdict(self.cfg).items()
                           if k.startswith("max_") or k in ("timeout_s", "step_tokens")}}

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking requests; the decoding thread finishes the queue, then stops."""
        self.accepting = False
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)


def make_engine(run_dir, cfg, metrics) -> GenerationEngine:
    """The engine for a causal-LM run: llama.cpp for a GGUF run, else the torch engine."""
    from landfall.inference.llama_backend import is_gguf_dir
    from landfall.inference.loading import model_dir

    if is_gguf_dir(model_dir(run_dir)):
        return LlamaEngine(run_dir, cfg, metrics)
    return GenerationEngine(run_dir, cfg, metrics)
