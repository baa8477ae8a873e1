"""The generation engine of ``landfall serve`` on a causal-LM run: iteration-level batching.

The decoding loop is transformers' continuous batching (``ContinuousBatchingManager``, the
engine behind ``transformers serve``), in one thread: requests join the running batch between
decoding steps and leave it when they finish; the KV cache is paged, with a fixed number of
pages (``serve.max_kv_mb``) shared by every stream; one step carries at most
``serve.step_tokens`` tokens, so a newcomer's prompt is processed in chunks between the
running streams' tokens instead of stalling them.

What Landfall adds around it (none of it is in the library): the run's chat template and
end-of-turn tokens, per-request sampling (greedy is an exact argmax under the same sampler,
``serving.sampling``), stop
strings, incremental detokenisation, deadlines, cancellation of the streams whose client
left, admission by count and by expected wait (503 + Retry-After), and the serving metrics
(time to first token, per-token latency, streams, KV-cache use).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers.generation.continuous_batching import RequestStatus

from landfall.config import ServeConfig
from landfall.serving import sampling
from landfall.serving.http import Loader, Refused
from landfall.serving.metrics import Metrics

PAGE_TOKENS = 32  # tokens per KV-cache page
REAP_AFTER_S = 2.0  # a cancelled stream's handler lives this long, for outputs still in flight


@dataclass
class Params:
    """One request's decoding settings (checked by the HTTP layer)."""

    max_new_tokens: int
    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no limit
    stop: list[str] = field(default_factory=list)


@dataclass
class Event:
    """What a stream says after a decoding step: the new text, and how it ended (if it did)."""

    text: str
    tokens: int  # tokens generated so far
    finish: str | None = None  # "stop", "length", "timeout", "error"


class Stream:
    """One request in the running batch: its outputs arrive on the event loop and leave as
    text events; closing it early (client gone, deadline) cancels the request."""

    def __init__(self, engine: GenerationEngine, rid: str, prompt_tokens: int, params: Params,
                 deadline: float) -> None:
        self.engine, self.rid, self.params, self.deadline = engine, rid, params, deadline
        self.prompt_tokens = prompt_tokens
        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self.tokens = 0
        self.text = ""
        self.finish: str | None = None
        self.engine_done = False  # the decoding loop reported the request finished
        self._queue: asyncio.Queue = asyncio.Queue()
        self._last_token_at = 0.0

    def on_output(self, out) -> None:  # on the event loop (call_soon_threadsafe)
        self._queue.put_nowait(out)

    async def events(self) -> AsyncIterator[Event]:
        """The stream's events until it finishes; leaving the loop early cancels it."""
        try:
            while self.finish is None:
                left = self.deadline - time.monotonic()
                try:
                    out = await asyncio.wait_for(self._queue.get(), max(left, 0.001))
                except TimeoutError:
                    self.finish = "timeout"
                    yield Event("", self.tokens, "timeout")
                    return
                event = self._advance(out)
                if event.text or event.finish:
                    yield event
        finally:
            self.engine.release(self)

    def _advance(self, out) -> Event:
        eng = self.engine
        if out.error is not None or out.status == RequestStatus.FAILED:
            self.finish = "error"
            print(f"landfall serve: generation failed: {out.error}", flush=True)
            return Event("", self.tokens, "error")
        ids = list(out.generated_tokens)
        ended = next((i for i, t in enumerate(ids) if t in eng.stop_ids), None)
        if ended is not None:
            ids = ids[:ended]
        now = time.monotonic()
        if len(ids) > self.tokens:
            if self.first_token_at is None:
                self.first_token_at = now
                eng.metrics.ttft.observe(now - self.started)
            else:
                eng.metrics.token_latency.observe((now - self._last_token_at)
                                                  / (len(ids) - self.tokens))
            eng.metrics.generated.inc(len(ids) - self.tokens)
            self._last_token_at = now
        self.tokens = len(ids)
        self.engine_done = out.is_finished()
        text = eng.decode(ids)
        if text.endswith("\ufffd") and ended is None and not self.engine_done:
            return Event("", self.tokens)  # half a UTF-8 character: wait for the rest
        at = min((i for i in (text.find(s) for s in self.params.stop) if i >= 0), default=-1)
        if at >= 0:
            text, self.finish = text[:at], "stop"  # a stop string: cut before it
        elif ended is not None:
            self.finish = "stop"  # end of turn
        elif self.engine_done:
            self.finish = "length"  # max_new_tokens
        if self.finish is None and self.params.stop:  # hold back what may begin a stop string
            text = text[:max(0, len(text) - (max(len(s) for s in self.params.stop) - 1))]
        # decoding a longer prefix extends the text (byte-level BPE, no clean-up of spaces)
        new = text[len(self.text):] if text.startswith(self.text) else ""
        if text.startswith(self.text):
            self.text = text
        return Event(new, self.tokens, self.finish)


class GenerationEngine(Loader):
    """A causal-LM run loaded for serving, its continuous-batching manager and admission."""

    def __init__(self, run_dir: Path, cfg: ServeConfig, metrics: Metrics) -> None:
        super().__init__(run_dir)
        self.cfg, self.metrics = cfg, metrics
        self.streams: dict[str, Stream] = {}
        self.manager = None
        self.tokenizer = None
        self.generator = None
        self.stop_ids: set[int] = set()
        self.eos: list[int] = []  # the same, as the decoding loop takes them
        self.capacity_tokens = 0
        self.mean_seconds = 0.0  # moving average of a stream's life, for the expected wait
        self.accepting = True
        self._reap: list[tuple[float, str]] = []

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        import torch
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        from landfall.inference.loading import load_generation_run, model_dir, run_config
        from landfall.inference.precision import bf16_native, why_not_bf16
        from landfall.inference.torch_int8 import is_torch_int8

        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        gen = load_generation_run(self.run_dir)  # on the GPU if there is one
        model = gen.model
        if hasattr(model, "merge_and_unload"):  # an adapter run: fold it in for serving
            model = model.merge_and_unload()
        device = next(model.parameters()).device
        native = bf16_native(device)
        int8 = is_torch_int8(model_dir(self.run_dir))
        if self.cfg.precision == "bf16" and (int8 or not native):
            raise ValueError("serve.precision=bf16: " + (
                "a torch-int8 run computes in int8/fp32" if int8 else why_not_bf16(device)))
        bf16 = not int8 and (self.cfg.precision == "bf16"
                             or (self.cfg.precision == "auto" and native))
        model = model.to(torch.bfloat16 if bf16 else torch.float32).eval()
        precision = "int8 (dynamic, Linear)" if int8 else "bf16" if bf16 else "fp32"
        why = "" if int8 or self.cfg.precision != "auto" else (
            ": bf16 is native on this CPU" if bf16 else f": {why_not_bf16(device)}")
        self.backend = f"torch-{precision}{why}, continuous batching"
        self.generator, self.tokenizer = gen, gen.tokenizer
        self.stop_ids, self.eos = set(gen.stop_ids), sorted(gen.stop_ids)
        self.defaults = run_config(self.run_dir).generate
        c = model.config.get_text_config()
        heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        per_token = c.num_hidden_layers * 2 * heads * head_dim * (2 if bf16 else 4)
        pages = max(1, self.cfg.max_kv_mb * 2**20 // (PAGE_TOKENS * per_token))
        self.capacity_tokens = pages * PAGE_TOKENS
        # sampling is always on: greedy requests are top-k 1 (argmax) under the same sampler;
        # the non-default temperature/top-k/top-p make the per-request processors exist
        gc = GenerationConfig(max_new_tokens=self.cfg.max_new_tokens, do_sample=True,
                              temperature=0.7, top_k=50, top_p=0.95,
                              eos_token_id=self.eos,
                              pad_token_id=self.tokenizer.pad_token_id)
        cbc = ContinuousBatchingConfig(
            page_size=PAGE_TOKENS, num_blocks=pages, max_batch_tokens=self.cfg.step_tokens,
            max_requests_per_batch=self.cfg.max_batch_size, per_request_processors=True,
            use_cuda_graph=False)
        self.manager = model.init_continuous_batching(generation_config=gc,
                                                      continuous_batching_config=cbc)
        if sampling.install(self.manager) != 2:
            print("landfall serve: transformers' sampling warpers changed; decoding with the "
                  "stock ones (slower)", flush=True)
        self.manager.start()
        self._warm_up()
        self.ready.set()

    def _warm_up(self) -> None:
        rid = self.manager.add_request(self.prompt_ids("Hello"), max_new_tokens=4,
                                       **self._sampling(Params(max_new_tokens=4)))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            out = self.manager.get_result(request_id=rid, timeout=0.5)
            if out is not None and out.is_finished():
                return
        raise TimeoutError("the warm-up generation did not finish in 300 s")

    # -- requests ------------------------------------------------------------------------
    def prompt_ids(self, request: str | Sequence[dict]) -> list[int]:
        return self.generator.prompt_ids(request)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def _sampling(self, p: Params) -> dict:
        if p.greedy:
            return {"temperature": 1.0, "top_k": 1, "top_p": 1.0}
        vocab = len(self.tokenizer)
        return {"temperature": float(p.temperature), "top_k": int(p.top_k or vocab),
                "top_p": float(p.top_p)}

    def expected_wait(self) -> float:
        """Seconds a new request would wait for a place in the running batch."""
        waiting = max(0, len(self.streams) - self.cfg.max_batch_size)
        return waiting / self.cfg.max_batch_size * self.mean_seconds

    capacity_name = "the KV cache ({n} tokens, serve.max_kv_mb)"

    def open(self, prompt: list[int], params: Params, arrived: float) -> Stream:
        """Admit a request (call on the event loop), or refuse it."""
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
                          f"{params.max_new_tokens} new tokens exceed "
                          f"{self.capacity_name.format(n=self.capacity_tokens)}", "too_long")
        self.reap()
        rid = uuid.uuid4().hex
        stream = Stream(self, rid, len(prompt), params, arrived + self.cfg.stream_timeout_s)
        self.streams[rid] = stream
        self._submit(stream, prompt)
        self.metrics.streams.set(len(self.streams))
        return stream

    def _submit(self, stream: Stream, prompt: list[int]) -> None:
        """Hand an admitted request to the decoder: here, the running batch."""
        self.manager.register_result_handler(stream.rid, stream.on_output)
        self.manager.add_request(prompt, request_id=stream.rid,
                                 max_new_tokens=stream.params.max_new_tokens, streaming=True,
                                 eos_token_id=self.eos, **self._sampling(stream.params))

    def release(self, stream: Stream) -> None:
        """A stream is over (finished, failed, timed out or abandoned): free its place."""
        if self.streams.pop(stream.rid, None) is None:
            return
        if not stream.engine_done:
            # still decoding (client gone, deadline, stop string): cancel it
            self.manager.cancel_request(stream.rid)
            with self.manager.output_router._lock:  # outputs in flight go nowhere
                self.manager.output_router.result_handlers[stream.rid] = (
                    lambda out: None, asyncio.get_running_loop())
            self._reap.append((time.monotonic(), stream.rid))
        reason = stream.finish or "cancelled"
        self.metrics.finished.labels(reason).inc()
        life = time.monotonic() - stream.started
        self.mean_seconds = life if self.mean_seconds == 0 else 0.9 * self.mean_seconds + 0.1 * life
        self.metrics.streams.set(len(self.streams))

    def reap(self) -> None:
        """Drop the no-op handlers of cancelled streams once their last outputs are gone,
        empty the shared output queue (no stream of ours reads it), and release the streams
        whose response never read them (past their deadline). On the event loop."""
        now = time.monotonic()
        router = self.manager.output_router
        while self._reap and now - self._reap[0][0] > REAP_AFTER_S:
            with router._lock:
                router.result_handlers.pop(self._reap.pop(0)[1], None)
        while not router.output_queue.empty():
            router.output_queue.get_nowait()
        for stream in [s for s in self.streams.values() if now > s.deadline + REAP_AFTER_S]:
            stream.finish = stream.finish or "timeout"  # its response never read it: abandoned
            self.release(stream)

    def held_requests(self) -> int:
        """Requests the decoding loop holds (running or waiting): 0 once every stream is gone."""
        sched = getattr(getattr(self.manager, "batch_processor", None), "scheduler", None)
        if sched is None:
            return 0
        return len(sched.active_requests) + len(sched.waiting_requests)

    def info(self) -> dict:
        from dataclasses import asdict

        return {"run": self.run_dir.name, "task": "causal_lm", "backend": self.backend,
                "model_type": self.model_type(),
                "context": self.generator.context if self.generator else None,
                "kv_cache_tokens": self.capacity_tokens,
                "defaults": asdict(self.defaults) if self.ready.is_set() else None,
                "limits": {k: v for k, v in asdict(self.cfg).items()
                           if k.startswith("max_") or k in ("timeout_s", "step_tokens")}}

    def model_type(self) -> str | None:
        c = self.generator.model.config if self.generator else None
        return getattr(c, "model_type", None)

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking requests; the decoding loop finishes what it holds, then stops."""
        self.accepting = False
        if self.manager is not None:
            self.manager.stop(block=True, timeout=timeout)
