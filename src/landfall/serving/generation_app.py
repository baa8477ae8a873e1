"""``landfall serve`` on a causal-LM run: written answers, streamed, from one shared batch.

Endpoints: ``POST /v1/generate`` (a prompt or chat messages; ``stream`` for server-sent
events), ``POST /v1/chat/completions`` (the OpenAI subset: messages, ``max_tokens`` /
``max_completion_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``stop``, ``stream``,
``stream_options.include_usage``), so that existing OpenAI clients work unchanged; and, as
for classifiers, ``/v1/model``, ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``.

Every field is checked before anything runs; a bad one is answered 422 naming it (413 for
what is over a limit). Tokenising the prompt runs in a worker thread; decoding runs in the
engine's thread (``serving.generation``); the event loop only parses, admits and streams.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from landfall.config import ServeConfig
from landfall.serving.generation import GenerationEngine, Params, Stream
from landfall.serving.http import (
    Refused,
    api_key,
    encodable,
    install_common,
    parse_json,
    read_body,
    refusal,
)
from landfall.serving.memory import HeapTrimmer
from landfall.serving.metrics import Metrics

ROLES = ("system", "user", "assistant")
MAX_STOPS = 4  # as OpenAI's API
MAX_STOP_CHARS = 256


class Message(BaseModel):
    role: str = Field(description="system, user or assistant.")
    content: str = Field(description="The turn's text.")


class GenerateRequest(BaseModel):
    prompt: str | None = Field(None, description="A request (the user turn); or messages.")
    messages: list[Message] | None = Field(None, description="Chat turns; or prompt.")
    max_new_tokens: int | None = Field(None, description="Most new tokens (default: the "
                                       "run's generate.max_new_tokens).")
    do_sample: bool | None = Field(None, description="Sample instead of greedy decoding.")
    temperature: float | None = Field(None, description="Sampling temperature (0, 10].")
    top_p: float | None = Field(None, description="Nucleus sampling mass (0, 1].")
    top_k: int | None = Field(None, description="Sample among the k most likely (0 = all).")
    stop: list[str] | str | None = Field(None, description="Up to 4 stop strings.")
    stream: bool = Field(False, description="Server-sent events, one per new piece of text.")


class ChatRequest(BaseModel):
    model: str | None = Field(None, description="Ignored: the server serves one run.")
    messages: list[Message] = Field(description="Chat turns.")
    max_tokens: int | None = Field(None, description="Most new tokens.")
    max_completion_tokens: int | None = Field(None, description="Most new tokens (newer name).")
    temperature: float | None = Field(None, description="0 = greedy; (0, 2] samples.")
    top_p: float | None = Field(None, description="Nucleus sampling mass (0, 1].")
    stop: list[str] | str | None = Field(None, description="Up to 4 stop strings.")
    stream: bool = Field(False, description="Server-sent chat.completion.chunk events.")


def _obj(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise Refused(422, f"body: expected a JSON object, got {type(payload).__name__}",
                      "invalid")
    return payload


def _text(value: Any, where: str, cfg: ServeConfig) -> str:
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        parts = []
        for j, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                raise Refused(422, f"{where}[{j}]: only text parts are supported", "invalid")
            parts.append(part["text"])
        value = "".join(parts)
    if not isinstance(value, str):
        raise Refused(422, f"{where}: expected a string, got {type(value).__name__}", "invalid")
    if not encodable(value):
        raise Refused(422, f"{where}: not valid Unicode (a lone surrogate such as \\ud800)",
                      "invalid")
    if len(value) > cfg.max_chars:
        raise Refused(413, f"{where}: {len(value)} characters, the limit is {cfg.max_chars}",
                      "text_too_long")
    return value


def _messages(value: Any, cfg: ServeConfig) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise Refused(422, "messages: expected a non-empty list of {role, content}", "invalid")
    if len(value) > cfg.max_texts:
        raise Refused(413, f"messages: {len(value)} turns, the limit is {cfg.max_texts}",
                      "too_many_texts")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise Refused(422, f"messages[{i}]: expected an object with role and content",
                          "invalid")
        if m.get("role") not in ROLES:
            raise Refused(422, f"messages[{i}].role: expected one of {', '.join(ROLES)}, got "
                          f"{m.get('role')!r}", "invalid")
        out.append({"role": m["role"], "content": _text(m.get("content"),
                                                        f"messages[{i}].content", cfg)})
    if not any(m["role"] == "user" and m["content"].strip() for m in out):
        raise Refused(422, "messages: no user turn with text", "invalid")
    return out


def _number(payload: dict, name: str, typ: type, lo: float, hi: float, *,
            lo_open: bool = False) -> Any:
    """``payload[name]`` checked against its type and range; None when absent or null."""
    v = payload.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and
                                                                   not isinstance(v, int)):
        raise Refused(422, f"{name}: expected {'an integer' if typ is int else 'a number'}, "
                      f"got {json.dumps(v)[:40]}", "invalid")
    if v != v or v < lo or v > hi or (lo_open and v == lo):
        bracket = "(" if lo_open else "["
        raise Refused(422, f"{name}: must be in {bracket}{lo:g}, {hi:g}], got {v}", "invalid")
    return typ(v)


def _stops(value: Any) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise Refused(422, "stop: expected a string or a list of strings", "invalid")
    if len(stops) > MAX_STOPS:
        raise Refused(422, f"stop: {len(stops)} strings, at most {MAX_STOPS}", "invalid")
    for i, s in enumerate(stops):
        if not s or len(s) > MAX_STOP_CHARS or not encodable(s):
            raise Refused(422, f"stop[{i}]: expected 1 to {MAX_STOP_CHARS} characters of valid "
                          "Unicode", "invalid")
    return stops


def _bool(payload: dict, name: str, default: bool) -> bool:
    v = payload.get(name, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise Refused(422, f"{name}: expected true or false, got {json.dumps(v)[:40]}",
                      "invalid")
    return v


UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logprobs",
               "top_logprobs", "response_format", "logit_bias")


def chat_params(payload: dict, engine: GenerationEngine) -> tuple[list[dict], Params, bool, bool]:
    """An OpenAI chat-completions body as (messages, decoding settings, stream,
    include_usage)."""
    cfg, d = engine.cfg, engine.defaults
    for name in UNSUPPORTED:
        if payload.get(name) not in (None, False, [], {}):
            raise Refused(422, f"{name}: not supported by this server", "invalid")
    n = _number(payload, "n", int, 1, 1)
    if n not in (None, 1):
        raise Refused(422, "n: only 1 choice per request is supported", "invalid")
    if payload.get("seed") is not None:
        raise Refused(422, "seed: per-request seeds are not supported by the streaming "
                      "service (landfall generate samples with a seed)", "invalid")
    msgs = _messages(payload.get("messages"), cfg)
    most = min(d.max_new_tokens, cfg.max_new_tokens)
    new = (_number(payload, "max_completion_tokens", int, 1, cfg.max_new_tokens)
           or _number(payload, "max_tokens", int, 1, cfg.max_new_tokens) or most)
    t = _number(payload, "temperature", float, 0.0, 2.0)
    top_p = _number(payload, "top_p", float, 0.0, 1.0, lo_open=True)
    greedy = (t == 0.0) if t is not None else not d.do_sample
    params = Params(max_new_tokens=new, greedy=greedy,
                    temperature=t if t else d.temperature,
                    top_p=top_p if top_p is not None else d.top_p, top_k=d.top_k,
                    stop=_stops(payload.get("stop")))
    opts = payload.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise Refused(422, "stream_options: expected an object", "invalid")
    return msgs, params, _bool(payload, "stream", False), _bool(opts, "include_usage", False)


def generate_params(payload: dict, engine: GenerationEngine) -> tuple[Any, Params, bool, bool]:
    """A ``/v1/generate`` body as (prompt or messages, decoding settings, stream, False)."""
    cfg, d = engine.cfg, engine.defaults
    has_prompt, has_msgs = payload.get("prompt") is not None, payload.get("messages") is not None
    if has_prompt == has_msgs:
        raise Refused(422, "prompt: give a prompt or messages (one of them)", "invalid")
    if has_prompt:
        request = _text(payload["prompt"], "prompt", cfg)
        if not request.strip():
            raise Refused(422, "prompt: empty", "invalid")
    else:
        request = _messages(payload["messages"], cfg)
    new = _number(payload, "max_new_tokens", int, 1, cfg.max_new_tokens) or \
        min(d.max_new_tokens, cfg.max_new_tokens)
    t = _number(payload, "temperature", float, 0.0, 10.0, lo_open=True)
    top_p = _number(payload, "top_p", float, 0.0, 1.0, lo_open=True)
    top_k = _number(payload, "top_k", int, 0, 1_000_000)
    params = Params(max_new_tokens=new, greedy=not _bool(payload, "do_sample", d.do_sample),
                    temperature=t or d.temperature, top_p=top_p or d.top_p,
                    top_k=d.top_k if top_k is None else top_k,
                    stop=_stops(payload.get("stop")))
    return request, params, _bool(payload, "stream", False), False


def _sse(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def create_generation_app(run_dir: str | Path, cfg: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app serving a causal-LM run (the model loads in the background)."""
    cfg = cfg or ServeConfig()
    run_dir = Path(run_dir)
    key = api_key(cfg)
    metrics = Metrics()
    engine = GenerationEngine(run_dir, cfg, metrics)

    async def housekeeping() -> None:
        """Every second: forget cancelled streams' handlers and release abandoned streams;
        every ``serve.trim_every_s``: hand freed heap back to the OS (``serving.memory``)."""
        trimmer = HeapTrimmer(cfg.trim_every_s)
        while True:
            await asyncio.sleep(1.0)
            if engine.ready.is_set():
                engine.reap()
                if trimmer.available and cfg.trim_every_s > 0:
                    await run_in_threadpool(trimmer.maybe_trim)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=engine.load, name="landfall-load", daemon=True).start()
        chores = asyncio.create_task(housekeeping())
        yield
        chores.cancel()
        # uvicorn has stopped accepting and waited for the streams in flight
        await run_in_threadpool(engine.close, 60.0)

    app = FastAPI(title="Landfall", version="1", lifespan=lifespan,
                  description=f"Text generation with the run `{run_dir.name}`.")
    app.state.engine = engine
    app.state.metrics = metrics
    install_common(app, metrics, key, ("/v1/generate", "/v1/chat/completions"), engine.ready,
                   lambda: engine.error is not None, lambda: engine.backend)

    @app.get("/v1/model")
    async def model_info() -> JSONResponse:
        """Model metadata, default decoding settings and limits."""
        if not engine.ready.is_set():
            return refusal(metrics, Refused(503, "model is loading", "not_ready", retry=True))
        return JSONResponse(engine.info())

    inflight = [0]  # requests being read or tokenised (the event loop is single-threaded)

    async def admit(request: Request, parse) -> tuple[Stream, bool, bool, float]:
        """Read, check, tokenise and admit a request; a Refused says why not."""
        t0 = time.monotonic()
        if inflight[0] >= cfg.max_inflight:
            raise Refused(503, f"server busy: {inflight[0]} requests in flight (limit "
                          f"{cfg.max_inflight})", "inflight_full", retry=True)
        inflight[0] += 1
        try:
            body = await read_body(request, cfg.max_body_bytes)
            payload = _obj(parse_json(body))
            if not engine.ready.is_set():
                raise Refused(503, "model is loading", "not_ready", retry=True)
            request_, params, wants_stream, usage = parse(payload, engine)
            prompt = await run_in_threadpool(engine.prompt_ids, request_)
            where = "prompt" if isinstance(request_, str) else "messages"
            limit = engine.generator.chat.max_prompt_tokens
            if len(prompt) > limit:
                raise Refused(413, f"{where}: {len(prompt)} tokens with the chat template, the "
                              f"limit is {limit} (chat.max_prompt_tokens)", "too_long")
            context = engine.generator.context
            if context and len(prompt) + params.max_new_tokens > context:
                raise Refused(413, f"max_tokens: {len(prompt)} prompt tokens + "
                              f"{params.max_new_tokens} new tokens exceed the model's context "
                              f"({context})", "too_long")
            return engine.open(prompt, params, t0), wants_stream, usage, t0
        finally:
            inflight[0] -= 1

    async def collect(stream: Stream) -> Stream:
        async for _ in stream.events():
            pass
        if stream.finish == "timeout":
            raise Refused(504, f"not finished within {cfg.stream_timeout_s} s "
                          "(serve.stream_timeout_s)", "timeout")
        if stream.finish == "error":
            raise Refused(500, "the model failed on this request", "model_error")
        return stream

    gen_schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": GenerateRequest.model_json_schema()}}}}
    chat_schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": ChatRequest.model_json_schema()}}}}
    errors = {413: {"description": "A text, the prompt or the body over its limit"},
              422: {"description": "Malformed JSON or a field out of range (named)"},
              503: {"description": "Loading, or busy (Retry-After)"},
              504: {"description": "Not finished within timeout_s"}}

    @app.post("/v1/generate", openapi_extra=gen_schema, responses=errors)
    async def generate(request: Request):
        """Write a response: ``{"text", "finish", "prompt_tokens", "new_tokens",
        "ttft_s"}``; with ``stream`` server-sent events ``{"text"}`` then ``{"finish", ...}``."""
        try:
            stream, wants_stream, _, t0 = await admit(request, generate_params)
        except Refused as exc:
            return refusal(metrics, exc)

        def summary(s: Stream) -> dict:
            return {"finish": s.finish, "prompt_tokens": s.prompt_tokens,
                    "new_tokens": s.tokens, "ttft_s": (s.first_token_at or time.monotonic())
                    - t0}

        if not wants_stream:
            try:
                s = await collect(stream)
            except Refused as exc:
                return refusal(metrics, exc)
            return {"text": s.text.strip(), **summary(s)}

        async def events():
            try:
                async for ev in stream.events():
                    if ev.text:
                        yield _sse({"text": ev.text})
                    if ev.finish:
                        yield _sse(summary(stream))
            finally:
                engine.release(stream)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions", openapi_extra=chat_schema, responses=errors)
    async def chat(request: Request):
        """OpenAI chat completions (subset); ``stream: true`` gives chat.completion.chunk
        events ending with ``data: [DONE]``."""
        try:
            stream, wants_stream, usage, _ = await admit(request, chat_params)
        except Refused as exc:
            return refusal(metrics, exc)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        base = {"id": cid, "created": created, "model": run_dir.name}
        counts = lambda s: {"prompt_tokens": s.prompt_tokens,  # noqa: E731
                            "completion_tokens": s.tokens,
                            "total_tokens": s.prompt_tokens + s.tokens}
        if not wants_stream:
            try:
                s = await collect(stream)
            except Refused as exc:
                return refusal(metrics, exc)
            return {**base, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": s.finish,
                                 "message": {"role": "assistant", "content": s.text.strip()}}],
                    "usage": counts(s)}

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            return _sse({**base, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        async def events():
            try:
                yield chunk({"role": "assistant", "content": ""})
                async for ev in stream.events():
                    if ev.text:
                        yield chunk({"content": ev.text})
                    if ev.finish in ("timeout", "error"):
                        yield _sse({"error": {"message": f"generation ended: {ev.finish}",
                                              "type": ev.finish}})
                    elif ev.finish:
                        yield chunk({}, ev.finish)
                if usage:
                    yield _sse({**base, "object": "chat.completion.chunk", "choices": [],
                                "usage": counts(stream)})
                yield _sse("[DONE]")
            finally:
                engine.release(stream)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app
