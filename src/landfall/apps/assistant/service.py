"""``landfall serve RUN`` on an assistant run: OpenAI-style ``/v1/chat/completions``
(streamed and not; the route, reason, intent and sources in the extra field ``landfall``),
``/v1/models``, ``/v1/model``, and the chat page at ``/``.

The service's common parts are the generation service's: the API key, ``/healthz``,
``/readyz``, ``/metrics``, body and in-flight limits, admission, deadlines, cancellation of
streams whose client left, and the drain on shutdown (``serving.http``,
``serving.generation``). The generator decodes in the same continuous-batching engine; the
guard checks every user message, and every streamed answer before each piece reaches the
user (the text so far, at each sentence end), so a harmful answer is never shown, only
refused. Logs and transcripts are written redacted.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from prometheus_client import Counter, Histogram
from starlette.concurrency import run_in_threadpool

from landfall.apps.assistant.assistant import ROUTES, Assistant, Reply
from landfall.apps.assistant.conversation import Turn
from landfall.apps.assistant.prompts import split_sources
from landfall.apps.assistant.slots import fill
from landfall.config import ServeConfig
from landfall.serving.generation import GenerationEngine, Params
from landfall.serving.generation_llama import make_engine
from landfall.serving.generation_requests import chat_params, obj
from landfall.serving.http import (
    InFlight,
    Loader,
    Refused,
    api_key,
    install_common,
    parse_json,
    read_body,
    refusal,
)
from landfall.serving.metrics import LATENCY_BUCKETS, Metrics

PAGE = Path(__file__).with_name("chat.html")
SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")
PIECE_CHARS = 80  # an unchecked tail longer than this is checked and sent even mid-sentence


class AssistantLoader(Loader):
    """Loads the assistant (classifier, templates, knowledge base, guard) and the generator's
    engine, in the background."""

    def __init__(self, run_dir: Path, cfg: ServeConfig, metrics: Metrics) -> None:
        super().__init__(run_dir)
        self.cfg, self.metrics = cfg, metrics
        self.assistant: Assistant | None = None
        self.engine: GenerationEngine | None = None
        self.redact = None

    def _load(self) -> None:
        a = Assistant(self.run_dir, generator=False)
        if a.cfg.guardrails.redact_pii:
            from landfall.safety.pii import redactor

            self.redact = redactor()
            self.redact(["warm up the PII detector, Alex Morgan"])
        # a GGUF generator (`landfall compress`'s output) decodes on llama.cpp
        self.engine = make_engine(a.manifest.member_path("generator"), self.cfg, self.metrics)
        self.engine._load()  # noqa: SLF001 - loaded in this thread, with the assistant
        self.assistant = a
        self.backend = f"assistant; generator: {self.engine.backend}"
        self.ready.set()


def _sse(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def create_assistant_app(run_dir: str | Path, cfg: ServeConfig | None = None) -> FastAPI:
    cfg = cfg or ServeConfig()
    run_dir = Path(run_dir)
    key = api_key(cfg)
    metrics = Metrics()
    routes = Counter("landfall_assistant_replies", "Replies by route.", ["route"],
                     registry=metrics.registry)
    route_latency = Histogram("landfall_assistant_reply_seconds", "Arrival to the last piece "
                              "of a reply, by route (seconds).", ["route"],
                              buckets=LATENCY_BUCKETS, registry=metrics.registry)
    guard_latency = Histogram("landfall_assistant_guard_seconds", "Time in the guard per "
                              "check (seconds).", buckets=LATENCY_BUCKETS,
                              registry=metrics.registry)
    loader = AssistantLoader(run_dir, cfg, metrics)
    transcripts = run_dir / "transcripts"

    async def housekeeping() -> None:
        while True:
            await asyncio.sleep(1.0)
            if loader.ready.is_set():
                loader.engine.reap()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loader.start_loading()
        chores = asyncio.create_task(housekeeping())
        yield
        chores.cancel()
        if loader.engine is not None:
            await run_in_threadpool(loader.engine.close, 60.0)

    app = FastAPI(title="Landfall assistant", version="1", lifespan=lifespan,
                  description=f"The customer-service assistant `{run_dir.name}`.")
    app.state.loader = app.state.engine = loader
    app.state.metrics = metrics
    install_common(app, metrics, key, ("/v1/chat/completions", "/v1/models", "/"), loader)

    def ready() -> Assistant:
        if not loader.ready.is_set():
            raise Refused(503, "the assistant is loading", "not_ready", retry=True)
        return loader.assistant

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        """The chat page (plain HTML and JavaScript; every string inserted as text). Its one
        script runs by a per-response nonce: no inline handler or injected script would."""
        nonce = secrets.token_urlsafe(16)
        html = PAGE.read_text(encoding="utf-8").replace("<script>",
                                                        f'<script nonce="{nonce}">', 1)
        return HTMLResponse(html, headers={
            "Content-Security-Policy": f"default-src 'self'; script-src 'nonce-{nonce}'; "
                                       "style-src 'unsafe-inline'; img-src 'none'; "
                                       "object-src 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff"})

    @app.get("/v1/models")
    async def models() -> dict:
        """The OpenAI model list: this assistant."""
        return {"object": "list", "data": [{"id": run_dir.name, "object": "model",
                                            "created": int(run_dir.stat().st_mtime),
                                            "owned_by": "landfall"}]}

    @app.get("/v1/model")
    async def model_info() -> JSONResponse:
        """Members, thresholds, routes and limits."""
        try:
            a = ready()
        except Refused as exc:
            return refusal(metrics, exc)
        m = a.manifest
        return JSONResponse({
            "run": run_dir.name, "task": "assistant", "backend": loader.backend,
            "members": {k: Path(v).name if v else None for k, v in m.members.items()},
            "guarded": a.guard is not None, "thresholds": m.thresholds, "routes": ROUTES,
            "intents": sorted(a.intents), "templates": sum(map(len, a.templates.values())),
            "documents": len(a.kb.docs), "conversations": len(a.conversations),
            "limits": {k: v for k, v in cfg.__dict__.items() if k.startswith("max_")}})

    inflight = InFlight(cfg.max_inflight)

    def log(reply: Reply, message: str, text: str) -> None:
        """The request log line and the transcript: redacted."""
        said, answered = message, text
        if loader.redact is not None:
            said, answered = loader.redact([message, text])
        record = {"time": time.time(), "conversation": reply.conversation,
                  "user": said, "assistant": answered, **{k: v for k, v in reply.to_json(
                      ).items() if k in ("route", "reason", "intent", "score", "sources")}}
        if cfg.log_requests:
            print("landfall assistant: " + json.dumps(record), flush=True)
        if loader.assistant.cfg.guardrails.transcript:
            from landfall.runs import append_jsonl

            transcripts.mkdir(exist_ok=True)
            append_jsonl(transcripts / f"{reply.conversation}.jsonl", record)

    def checked(a: Assistant, text: str) -> dict | None:
        t = time.perf_counter()
        verdict = a.check(text, "output")
        if verdict is not None:
            guard_latency.observe(time.perf_counter() - t)
        return verdict

    async def decide(request: Request):
        t0 = time.monotonic()
        with inflight:
            body = await read_body(request, cfg.max_body_bytes)
            payload = obj(parse_json(body))
            a = ready()
            msgs, params, stream, _ = chat_params(payload, loader.engine)
            users = [m["content"] for m in msgs if m.get("role") == "user"]
            if not users or not users[-1].strip():
                raise Refused(422, "messages: the last user message is empty", "invalid")
            cid = payload.get("conversation_id")
            if cid is not None and not isinstance(cid, str):
                raise Refused(422, "conversation_id: expected a string", "invalid")
            conv, note = a.conversations.get(cid)
            message = users[-1]
            decision = await run_in_threadpool(a.decide, message, conv)
            return a, conv, note, message, decision, params, stream, t0

    def open_stream(a: Assistant, decision, params: Params, t0: float):
        prompt = loader.engine.prompt_ids(decision.prompt)
        most = a.manifest.generator_settings().max_new_tokens
        p = Params(max_new_tokens=min(params.max_new_tokens, most), greedy=True)
        return loader.engine.open(prompt, p, t0)

    def body(reply: Reply, t0: float) -> dict:
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                "model": run_dir.name, "landfall": reply.to_json(),
                "latency_s": round(time.monotonic() - t0, 4)}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        """OpenAI chat completions; ``conversation_id`` (extra field) continues a
        conversation; the reply's ``landfall`` field carries route, reason, intent, score and
        sources. ``stream: true`` sends chat.completion.chunk events; the first carries
        ``landfall`` with the route, the last the sources."""
        try:
            a, conv, note, message, d, params, wants_stream, t0 = await decide(request)
            stream = open_stream(a, d, params, t0) if d.route == "generate" else None
        except Refused as exc:
            return refusal(metrics, exc)
        reply = Reply("", d, conv.id, note, list(d.sources))

        def done(text: str) -> None:
            reply.text = text
            a.conversations.add(conv, Turn(message, text, d.route), failed=a.failed(d))
            routes.labels(d.route).inc()
            route_latency.labels(d.route).observe(time.monotonic() - t0)
            log(reply, message, text)

        if not wants_stream:
            try:
                text = await complete(a, d, stream, message, reply)
            except Refused as exc:
                return refusal(metrics, exc)
            done(text)
            out = body(reply, t0)
            return {**out, "object": "chat.completion", "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": text}}]}

        head = body(reply, t0)

        def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> bytes:
            return _sse({**{k: head[k] for k in ("id", "created", "model")},
                         "object": "chat.completion.chunk", **(extra or {}),
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        async def events():
            sent = ""
            try:
                yield chunk({"role": "assistant", "content": ""},
                            extra={"landfall": reply.to_json()})
                async for piece in pieces(a, d, stream, message, reply):
                    sent += piece
                    yield chunk({"content": piece})
                done(sent)
                yield chunk({}, "stop", extra={"landfall": reply.to_json()})
                yield _sse("[DONE]")
            finally:
                if stream is not None:
                    loader.engine.release(stream)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def complete(a: Assistant, d, stream, message: str, reply: Reply) -> str:
        """A whole answer (non-streamed): the stream collected, then checked once."""
        text = ""
        async for piece in pieces(a, d, stream, message, reply):
            text += piece
        return text

    async def pieces(a: Assistant, d, stream, message: str, reply: Reply):
        """The answer's pieces, each sent only after the guard has read the text so far. A
        harmful answer stops at once: what follows is the refusal, and nothing more of it."""
        if stream is None:  # template, knowledge, hand-off, refusal: known text
            text = d.text or ""
            if d.route in ("template", "knowledge"):
                verdict = await run_in_threadpool(checked, a, text)
                if verdict and verdict["harmful"]:
                    d.route, d.guard = "refuse", verdict
                    d.reason = f"the {d.route} answer was withheld: the guard finds it harmful"
                    reply.sources = []
                    text = a.cfg.assistant.refusal_message
            for p in a.pieces(text):
                yield p
            return
        raw, shown, pending, header_done, unsure = "", "", "", False, False
        async for ev in stream.events():
            raw += ev.text
            if ev.finish in ("timeout", "error"):
                raise Refused(504 if ev.finish == "timeout" else 500,
                              f"generation ended: {ev.finish}", ev.finish)
            if not header_done:  # the "Sources:" line comes first: hold it back
                head = raw.strip().lower()
                if not ev.finish and "\n" not in raw and (
                        "sources:".startswith(head) or head.startswith("sources")):
                    continue
                header_done = True
                used, pending = split_sources(raw)
                reply.sources = [d.passages[i - 1] for i in (used or [])
                                 if 0 < i <= len(d.passages)]
                unsure = used == []  # "Sources: none": read the whole answer first
            else:
                pending += ev.text
            if unsure:
                if not ev.finish:
                    continue
                final, reply.sources = await run_in_threadpool(a.finish, d, raw, message)
                if d.route == "handoff":  # the generator said it does not know
                    for p in a.pieces(final):
                        yield p
                    return
                pending = final
            open_slot = pending.count("{{") > pending.count("}}")
            if pending and (ev.finish or not open_slot and (
                    SENTENCE_END.search(pending) or len(pending) > PIECE_CHARS)):
                candidate = shown + pending
                verdict = await run_in_threadpool(checked, a, candidate)
                if verdict and verdict["harmful"]:
                    d.route, d.guard = "refuse", verdict
                    d.reason = "the answer was withheld: the guard finds it harmful"
                    yield ("\n\n" if shown else "") + a.cfg.assistant.refusal_message
                    return
                piece, left = fill(pending, a.finder.find(message), a.profile)
                d.slots_left += left
                shown, pending = candidate, ""
                yield piece
        if pending:
            yield pending

    return app


def serve_assistant(run_dir: str | Path, cfg: ServeConfig | None = None) -> None:
    import uvicorn

    cfg = cfg or ServeConfig()
    app = create_assistant_app(run_dir, cfg)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info", access_log=False,
                timeout_graceful_shutdown=cfg.stream_timeout_s,
                limit_concurrency=cfg.max_inflight + 64)
