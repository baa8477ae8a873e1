"""``landfall serve`` on a causal-LM run: written answers, streamed, from one shared batch.

Endpoints: ``POST /v1/generate`` (a prompt or chat messages; ``stream`` for server-sent
events), ``POST /v1/chat/completions`` (the OpenAI subset: messages, ``max_tokens`` /
``max_completion_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``stop``, ``stream``,
``stream_options.include_usage``), so that existing OpenAI clients work unchanged; and, as
for classifiers, ``/v1/model``, ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``.

Every field is checked before anything runs (``serving.generation_requests``); a bad one is
answered 422 naming it (413 for what is over a limit). Tokenising the prompt runs in a worker
thread, decoding in the engine's thread (``serving.generation``); the event loop only parses,
admits and streams.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from landfall.config import ServeConfig
from landfall.errors import LandfallError
from landfall.serving.generation import Stream
from landfall.serving.generation_llama import make_engine
from landfall.serving.generation_requests import (
    ChatRequest,
    GenerateRequest,
    chat_params,
    generate_params,
    obj,
)
from landfall.serving.http import (
    InFlight,
    Refused,
    api_key,
    install_common,
    parse_json,
    read_body,
    refusal,
)
from landfall.serving.memory import HeapTrimmer
from landfall.serving.metrics import Metrics
from landfall.serving.screen import Screen


def _inline(schema: dict) -> dict:
    """A pydantic JSON schema with its ``$defs`` written in place: inside an OpenAPI document
    ``#/$defs/...`` would point at the document's root, where nothing is defined."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


async def client_left(request: Request) -> None:
    """Returns once the client has disconnected: ASGI's ``http.disconnect`` message, which
    the server sends after the body when the connection closes (what Starlette's
    StreamingResponse listens for to stop a stream)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _sse(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def create_generation_app(run_dir: str | Path, cfg: ServeConfig | None = None,
                          screen: Screen | None = None) -> FastAPI:
    """The FastAPI app serving a causal-LM run (the model loads in the background);
    ``screen`` guards prompts and responses and logs requests (``serving.screen``)."""
    cfg = cfg or ServeConfig()
    screen = screen or Screen(cfg)
    run_dir = Path(run_dir)
    key = api_key(cfg)
    metrics = Metrics()
    engine = make_engine(run_dir, cfg, metrics)  # llama.cpp for a GGUF run, else torch

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
        engine.start_loading()
        chores = asyncio.create_task(housekeeping())
        yield
        chores.cancel()
        # uvicorn has stopped accepting and waited for the streams in flight
        await run_in_threadpool(engine.close, 60.0)

    app = FastAPI(title="Landfall", version="1", lifespan=lifespan,
                  description=f"Text generation with the run `{run_dir.name}`.")
    app.state.engine = engine
    app.state.metrics = metrics
    install_common(app, metrics, key, ("/v1/generate", "/v1/chat/completions"), engine)

    @app.get("/v1/model")
    async def model_info() -> JSONResponse:
        """Model metadata, default decoding settings and limits."""
        if not engine.ready.is_set():
            return refusal(metrics, Refused(503, "model is loading", "not_ready", retry=True))
        return JSONResponse(engine.info() | screen.info())

    inflight = InFlight(cfg.max_inflight)  # requests being read or tokenised

    async def admit(request: Request, parse) -> tuple[Stream, bool, bool, float, str]:
        """Read, check, tokenise and admit a request; a Refused says why not. The last item
        is what the user wrote (the prompt, or the user messages), for the guard and log."""
        t0 = time.monotonic()
        with inflight:
            body = await read_body(request, cfg.max_body_bytes)
            payload = obj(parse_json(body))
            if not engine.ready.is_set():
                raise Refused(503, "model is loading", "not_ready", retry=True)
            request_, params, wants_stream, usage = parse(payload, engine)
            said = request_ if isinstance(request_, str) else "\n".join(
                m["content"] for m in request_ if m.get("role") == "user")
            if screen.active:  # the guard reads what the user wrote
                await run_in_threadpool(screen.check, [said],
                                        "prompt" if isinstance(request_, str) else "messages")
            prompt = await run_in_threadpool(engine.prompt_ids, request_)
            where = "prompt" if isinstance(request_, str) else "messages"
            try:  # Params carries max_new_tokens, as the GenerateConfig it checks
                engine.generator.check_prompt(prompt, params, where, new_field="max_tokens")
            except LandfallError as exc:
                raise Refused(413, str(exc), "too_long") from None
            return engine.open(prompt, params, t0), wants_stream, usage, t0, said

    async def screened(path: str, said: str, text: str) -> dict:
        """The guard's verdict on a response ({"guard": ...}; a Refused when refusing), and
        the request logged."""
        extra = {}
        if screen.active:
            extra["guard"] = (await run_in_threadpool(screen.check, [text], "response"))[0]
        if cfg.log_requests:
            await run_in_threadpool(screen.log, path, [said], text)
        return extra

    async def flagged(path: str, said: str, text: str) -> dict:
        """``screened`` at the end of a stream: what was sent cannot be withheld, so a refusal
        becomes a flag."""
        try:
            return await screened(path, said, text)
        except Refused as exc:
            return {"guard": {"harmful": True, "detail": exc.detail}}

    async def collect(stream: Stream, request: Request) -> Stream:
        """A non-streamed answer: the stream's events until it ends, or until its client
        disconnects. Then the stream is cancelled as a streamed one is (leaving
        ``Stream.events`` releases it: the decoding loop drops it at its next step)."""
        async def drain() -> None:
            async for _ in stream.events():
                pass

        work = asyncio.ensure_future(drain())
        gone = asyncio.ensure_future(client_left(request))
        try:
            done, _ = await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the handler itself cancelled (shutdown): stop decoding too
            for task in (work, gone):
                task.cancel()
            raise
        gone.cancel()
        if work not in done:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise Refused(499, "the client closed the connection", "client_gone")
        work.result()
        if stream.finish == "timeout":
            raise Refused(504, f"not finished within {cfg.stream_timeout_s} s "
                          "(serve.stream_timeout_s)", "timeout")
        if stream.finish == "error":
            raise Refused(500, "the model failed on this request", "model_error")
        return stream

    gen_schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inline(GenerateRequest.model_json_schema())}}}}
    chat_schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inline(ChatRequest.model_json_schema())}}}}
    errors = {413: {"description": "A text, the prompt or the body over its limit"},
              422: {"description": "Malformed JSON or a field out of range (named)"},
              503: {"description": "Loading, or busy (Retry-After)"},
              504: {"description": "Not finished within timeout_s"}}

    @app.post("/v1/generate", openapi_extra=gen_schema, responses=errors)
    async def generate(request: Request):
        """Write a response: ``{"text", "finish", "prompt_tokens", "new_tokens",
        "ttft_s"}``; with ``stream`` server-sent events ``{"text"}`` then ``{"finish", ...}``."""
        try:
            stream, wants_stream, _, t0, said = await admit(request, generate_params)
        except Refused as exc:
            return refusal(metrics, exc)

        def summary(s: Stream) -> dict:
            return {"finish": s.finish, "prompt_tokens": s.prompt_tokens,
                    "new_tokens": s.tokens, "ttft_s": (s.first_token_at or time.monotonic())
                    - t0}

        if not wants_stream:
            try:
                s = await collect(stream, request)
                extra = await screened("/v1/generate", said, s.text.strip())
            except Refused as exc:
                return refusal(metrics, exc)
            return {"text": s.text.strip(), **summary(s), **extra}

        async def events():
            try:
                async for ev in stream.events():
                    if ev.text:
                        yield _sse({"text": ev.text})
                    if ev.finish:
                        extra = await flagged("/v1/generate", said, stream.text.strip())
                        yield _sse({**summary(stream), **extra})
            finally:
                engine.release(stream)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions", openapi_extra=chat_schema, responses=errors)
    async def chat(request: Request):
        """OpenAI chat completions (subset); ``stream: true`` gives chat.completion.chunk
        events ending with ``data: [DONE]``."""
        try:
            stream, wants_stream, usage, _, said = await admit(request, chat_params)
        except Refused as exc:
            return refusal(metrics, exc)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        base = {"id": cid, "created": created, "model": run_dir.name}
        counts = lambda s: {"prompt_tokens": s.prompt_tokens,  # noqa: E731
                            "completion_tokens": s.tokens,
                            "total_tokens": s.prompt_tokens + s.tokens}
        if not wants_stream:
            try:
                s = await collect(stream, request)
                extra = await screened("/v1/chat/completions", said, s.text.strip())
            except Refused as exc:
                return refusal(metrics, exc)
            return {**base, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": s.finish,
                                 "message": {"role": "assistant", "content": s.text.strip()}}],
                    "usage": counts(s), **extra}

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
                        extra = await flagged("/v1/chat/completions", said,
                                              stream.text.strip())
                        if extra:
                            yield _sse({**base, "object": "chat.completion.chunk",
                                        "choices": [], **extra})
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
