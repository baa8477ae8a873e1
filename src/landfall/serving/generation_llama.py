"""The generation engine of ``landfall serve`` on a GGUF run: llama.cpp's parallel sequences.

Same endpoints, limits, deadlines, cancellation, metrics and drain as the torch engine
(``serving.generation``), which it extends: the HTTP layer and ``Stream`` are shared, only
the decoding loop differs. One decoding thread runs llama.cpp on up to
``serve.max_batch_size`` sequences at once (``inference.llama_backend.ParallelDecoder``: one
batch per step holding each running sequence's next token and the prompt chunks of those
just admitted, as llama.cpp's own server does with ``--parallel``); further requests wait in
a FIFO queue for a free sequence and room in the KV cache. A request whose client left, or
whose deadline passed, is dropped from the queue or stopped between two steps.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass, field

from landfall.serving.generation import GenerationEngine, Stream

try:  # the status the shared Stream compares with (transformers' continuous batching)
    from transformers.generation.continuous_batching import RequestStatus
    FAILED = RequestStatus.FAILED
except ImportError:  # pragma: no cover - the torch engine imports it too
    FAILED = "failed"

KV_TOKENS_PER_SEQUENCE = 1024  # the unified KV cache: this many tokens per parallel sequence
KV_TOKENS_MAX = 32768  # (SmolLM2-135M: 23 KB a token, 0.75 GB at the cap)


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
    # decoding state (the decoding thread's own)
    seq: int = -1
    pos: int = 0  # tokens of this sequence in the KV cache
    todo: list[int] = field(default_factory=list)  # prompt tokens not yet decoded
    ids: list[int] = field(default_factory=list)  # generated
    rng: object = None

    @property
    def need(self) -> int:  # KV cache tokens this request may take
        return len(self.prompt) + self.stream.params.max_new_tokens

    def send(self, out: Output) -> None:
        try:
            self.loop.call_soon_threadsafe(self.stream.on_output, out)
        except RuntimeError:  # the event loop is closed: nobody listens any more
            self.cancelled.set()


class LlamaEngine(GenerationEngine):
    """A GGUF run served by llama.cpp, up to ``max_batch_size`` sequences decoded together."""

    def __init__(self, run_dir, cfg, metrics) -> None:
        super().__init__(run_dir, cfg, metrics)
        self._jobs: collections.deque[_Job] = collections.deque()
        self._by_id: dict[str, _Job] = {}
        self._cv = threading.Condition()
        self._active: dict[int, _Job] = {}
        self._stop = False
        self._thread: threading.Thread | None = None
        self.decoder = None
        self.n_seq = cfg.max_batch_size  # parallel sequences (serve.max_batch_size >= 1)

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        from landfall.inference.llama_backend import ParallelDecoder
        from landfall.inference.loading import load_generation_run, run_config

        gen = load_generation_run(self.run_dir, threads=self.cfg.threads)
        self.generator, self.tokenizer = gen, gen.tokenizer
        self.stop_ids, self.eos = set(gen.stop_ids), sorted(gen.stop_ids)
        self.defaults = run_config(self.run_dir).generate
        n_seq = self.n_seq
        self.capacity_tokens = max(gen.n_ctx, min(n_seq * KV_TOKENS_PER_SEQUENCE,
                                                  KV_TOKENS_MAX))
        self.decoder = ParallelDecoder(gen.path / "model.gguf", n_seq=n_seq,
                                       n_ctx=self.capacity_tokens, threads=self.cfg.threads)
        self.free_seqs = list(range(n_seq))
        self.reserved = 0
        self.backend = (f"llama.cpp (GGUF {gen.path.name}/model.gguf, "
                        f"{self.decoder.threads} threads), up to {n_seq} parallel sequences "
                        f"in one batch per step, {self.capacity_tokens} KV-cache tokens")
        # warm-up (weights paged in, compute buffers allocated) before "ready", on the
        # decoding thread: llama.cpp's OpenMP keeps a spinning thread team for each thread
        # that has decoded while that thread lives, so a second decoding thread runs 2-3x
        # slower on a small CPU (measured: 19 -> 46 ms a token on 2 cores)
        warm = self.prompt_ids("Hello")
        warmed: dict = {"done": threading.Event()}
        self._thread = threading.Thread(target=self._decode_loop, args=(warm, warmed),
                                        name="landfall-llama", daemon=True)
        self._thread.start()
        warmed["done"].wait()
        if "error" in warmed:
            raise warmed["error"]
        self.ready.set()

    # -- the decoding thread -------------------------------------------------------------
    def _admit(self) -> None:
        """Queued requests into free sequences while the KV cache has room (under _cv)."""
        while self._jobs and self.free_seqs:
            job = self._jobs[0]
            if job.cancelled.is_set():
                self._jobs.popleft()
                continue
            if self._active and self.reserved + job.need > self.capacity_tokens:
                return  # wait for room: first come, first served
            self._jobs.popleft()
            job.seq, job.pos, job.todo = self.free_seqs.pop(), 0, list(job.prompt)
            if not job.stream.params.greedy:
                import numpy as np

                job.rng = np.random.default_rng(abs(hash(tuple(job.prompt))) % 2**32)
            self.reserved += job.need
            self._active[job.seq] = job

    def _retire(self, job: _Job) -> None:
        self.decoder.free(job.seq)
        with self._cv:
            self._active.pop(job.seq, None)
            self.free_seqs.append(job.seq)
            self.reserved -= job.need
            self._by_id.pop(job.stream.rid, None)

    def _decode_loop(self, warm: list[int], warmed: dict) -> None:
        from landfall.inference.llama_backend import pick_token

        try:
            self.decoder.step([(0, warm, 0)])
            self.decoder.free(0)
        except Exception as exc:  # noqa: BLE001 - raised by _load, in the loading thread
            warmed["error"] = exc
            return
        finally:
            warmed["done"].set()
        while True:
            with self._cv:
                while not self._jobs and not self._active and not self._stop:
                    self._cv.wait()
                if not self._jobs and not self._active:
                    return  # stopped and drained
                self._admit()
                active = list(self._active.values())
            for job in [j for j in active if j.cancelled.is_set()]:
                self._retire(job)
                active.remove(job)
            if not active:
                continue
            # one step: each running sequence's last token, then prompt chunks in the room left
            budget, parts = self.decoder.n_batch, []
            for job in active:
                if not job.todo:
                    parts.append((job, [job.ids[-1]]))
                    budget -= 1
            for job in active:
                if job.todo and budget > 0:
                    chunk = job.todo[:budget]
                    parts.append((job, chunk))
                    budget -= len(chunk)
            try:
                logits = self.decoder.step([(j.seq, toks, j.pos) for j, toks in parts])
            except Exception as exc:  # noqa: BLE001 - reported to every stream in the step
                for job, _ in parts:
                    job.send(Output(list(job.ids), finished=True, status=FAILED,
                                    error=f"{type(exc).__name__}: {exc}"))
                    self._retire(job)
                continue
            for job, toks in parts:
                job.pos += len(toks)
                if job.todo:
                    job.todo = job.todo[len(toks):]
                    if job.todo:
                        continue  # the prompt is not all in yet
                p = job.stream.params
                tok = pick_token(logits[job.seq], greedy=p.greedy, temperature=p.temperature,
                                 top_k=p.top_k, top_p=p.top_p, rng=job.rng)
                job.ids.append(tok)
                done = tok in self.stop_ids or len(job.ids) >= p.max_new_tokens
                job.send(Output(list(job.ids), finished=done))
                if done:
                    self._retire(job)

    # -- requests ------------------------------------------------------------------------
    def expected_wait(self) -> float:
        """Seconds a new request would wait: the queue ahead of it, a batch at a time."""
        return max(0, len(self.streams) - self.n_seq + 1) / self.n_seq * self.mean_seconds

    capacity_name = "the llama.cpp KV cache ({n} tokens)"

    def _submit(self, stream: Stream, prompt: list[int]) -> None:
        """Queue an admitted request for the decoding thread."""
        job = _Job(stream, list(prompt), asyncio.get_running_loop())
        with self._cv:
            self._jobs.append(job)
            self._by_id[stream.rid] = job
            self._cv.notify()

    def release(self, stream: Stream) -> None:
        if self.streams.pop(stream.rid, None) is None:
            return
        with self._cv:
            job = self._by_id.get(stream.rid)
            if job is not None:  # still queued or decoding: drop it / stop it
                job.cancelled.set()
                if job in self._jobs:
                    self._jobs.remove(job)
                    self._by_id.pop(stream.rid, None)
            self._cv.notify()
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
            return len(self._jobs) + len(self._active)

    def model_type(self) -> str | None:
        return self.generator.config.get("model_type") if self.generator else None

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
