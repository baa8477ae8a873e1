"""The naive generation peer of bench/serve_generate.py: a transformers causal LM behind FastAPI,
speaking the OpenAI chat-completions subset, one request at a time.

    python bench/naive_generate_server.py MODEL_DIR --port 8002

What a careful tutorial server does, without batching: the model loaded once (bf16 where the
CPU computes it natively, else fp32; ``--dtype``), the
tokenizer's chat template, ``model.generate`` under ``torch.inference_mode`` with the KV cache
and greedy decoding when ``temperature`` is 0, streamed through a
``transformers.TextIteratorStreamer`` from a worker thread. One global lock lets a single
request generate at a time; the others wait on the event loop (no thread each). A client that
disconnects stops its generation at the next token. ``/readyz`` (200 once the model is
loaded: the app is built after loading) and ``/metrics`` (the process collector of
prometheus_client: ``process_resident_memory_bytes``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import BaseModel, Field
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from landfall.tasks.causal_lm.chat import stop_ids

REQUESTS = Counter("naive_requests", "Chat completions answered", ["finish_reason"])


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str = "naive"
    messages: list[Message] = Field(min_length=1)
    max_tokens: int = Field(128, ge=1, le=4096)
    temperature: float = Field(1.0, ge=0.0, le=2.0)  # OpenAI's default; 0 = greedy
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stream: bool = False


class _Cancelled(StoppingCriteria):
    """Stops ``generate`` at the next token once the client has gone."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.event.is_set()


class Generation:
    """One request's ``model.generate`` in a worker thread, its text read from the streamer."""

    def __init__(self, model, tokenizer, body: ChatRequest) -> None:
        messages = [m.model_dump() for m in body.messages]
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                            return_dict=True, return_tensors="pt")
        self.prompt_tokens = int(enc["input_ids"].shape[1])
        self.stops = set(stop_ids(tokenizer))
        self.max_tokens = body.max_tokens
        self.cancel = threading.Event()
        self.streamer = TextIteratorStreamer(tokenizer, skip_prompt=True,
                                             skip_special_tokens=True, timeout=300)
        sampling = ({"do_sample": False} if body.temperature == 0 else
                    {"do_sample": True, "temperature": body.temperature, "top_p": body.top_p,
                     "top_k": 0})
        self.kwargs = dict(**enc, max_new_tokens=body.max_tokens, streamer=self.streamer,
                           eos_token_id=sorted(self.stops), use_cache=True,
                           pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                           stopping_criteria=StoppingCriteriaList([_Cancelled(self.cancel)]),
                           **sampling)
        self.model = model
        self.new_ids: list[int] = []
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with torch.inference_mode():
                out = self.model.generate(**self.kwargs)
            self.new_ids = out[0, self.prompt_tokens:].tolist()
        except Exception as exc:  # noqa: BLE001 - the stream ends and the request fails
            self.error = exc
            self.streamer.end()

    @property
    def finish_reason(self) -> str:
        hit_stop = bool(self.new_ids) and self.new_ids[-1] in self.stops
        return "length" if len(self.new_ids) >= self.max_tokens and not hit_stop else "stop"

    async def pieces(self) -> AsyncIterator[str]:
        """The streamer's text pieces, read off the event loop."""
        self.thread.start()
        try:
            while (piece := await asyncio.to_thread(next, self.streamer, None)) is not None:
                if piece:
                    yield piece
        finally:
            # a client gone: stop at the next token; joined here, not awaited, so that the
            # lock is not released while the thread still decodes (at most one token's wait)
            self.cancel.set()
            self.thread.join()
        if self.error is not None:
            raise RuntimeError("generation failed") from self.error


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n"


def pick_dtype(choice: str) -> torch.dtype:
    """auto = bf16 where this machine computes it natively (as Landfall's serve.precision), so
    that the peer is not handicapped by fp32 on a CPU with bf16 units."""
    from landfall.inference.precision import bf16_native

    if choice == "auto":
        choice = "bf16" if bf16_native(torch.device("cpu")) else "fp32"
    return torch.bfloat16 if choice == "bf16" else torch.float32


def make_app(model_dir: str, dtype: torch.dtype = torch.float32) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    lock = asyncio.Lock()  # one generation at a time; waiters queue on the event loop
    app = FastAPI()

    @app.get("/readyz")
    async def readyz():
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest):
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            async def events() -> AsyncIterator[str]:
                async with lock:
                    gen = Generation(model, tokenizer, body)
                    yield _chunk(cid, created, body.model, {"role": "assistant"}, None)
                    async for piece in gen.pieces():
                        yield _chunk(cid, created, body.model, {"content": piece}, None)
                    REQUESTS.labels(gen.finish_reason).inc()
                    yield _chunk(cid, created, body.model, {}, gen.finish_reason)
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        async with lock:
            gen = Generation(model, tokenizer, body)
            text = "".join([piece async for piece in gen.pieces()])
        REQUESTS.labels(gen.finish_reason).inc()
        n = len(gen.new_ids)
        return JSONResponse({
            "id": cid, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": gen.finish_reason}],
            "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": n,
                      "total_tokens": gen.prompt_tokens + n}})

    return app


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir", help="A transformers causal-LM directory (config.json inside).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8002)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = its default)")
    p.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"),
                   help="weights and compute (auto = bf16 where native, else fp32)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    uvicorn.run(make_app(a.model_dir, pick_dtype(a.dtype)), host=a.host, port=a.port,
                log_level="warning")
