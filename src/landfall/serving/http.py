"""HTTP plumbing every Landfall service shares (classifier and generator alike).

Bodies are read with their size limit enforced while they arrive (chunked bodies too), JSON
is parsed with hostile input answered 422, refusals carry their reason (counted in
``/metrics``) and a Retry-After when trying again can help, the API key guards ``/v1/*``, and
``/healthz``, ``/readyz``, ``/metrics`` answer the same way for every kind of run.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from landfall.config import ServeConfig
from landfall.errors import LandfallError
from landfall.serving.metrics import Metrics

RETRY_AFTER_S = 1


class Refused(Exception):
    """A request answered with an error status; ``reason`` labels it in ``/metrics``."""

    def __init__(self, status: int, detail: str, reason: str, retry: bool = False,
                 retry_after: float = 0.0) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason, self.retry = status, detail, reason, retry
        self.retry_after = retry_after  # seconds, when known (else RETRY_AFTER_S)


class InFlight:
    """The requests a service is reading, checking or queueing, at most ``limit``
    (``serve.max_inflight``): ``with inflight:`` raises a 503 beyond it. The event loop is
    single-threaded, so a plain counter is enough."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count = limit, 0

    def __enter__(self) -> InFlight:
        if self.count >= self.limit:
            raise Refused(503, f"server busy: {self.count} requests in flight (limit "
                          f"{self.limit})", "inflight_full", retry=True)
        self.count += 1
        return self

    def __exit__(self, *exc) -> None:
        self.count -= 1


def encodable(text: str) -> bool:
    """False for strings that are not valid Unicode (lone surrogates such as '\\ud800')."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it grows past ``limit`` bytes while it is
    read: a declared Content-Length is checked first, a chunked body as its chunks arrive."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Refused(400, "Content-Length is not a number", "invalid") from None
        if size > limit:
            raise Refused(413, f"body of {size} bytes, the limit is {limit}", "body_too_large")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise Refused(413, f"body over {limit} bytes (the limit)", "body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The body as JSON, or 422 (also for nesting too deep for the parser)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(422, f"body is not valid JSON: {exc}", "invalid") from None
    except RecursionError:
        raise Refused(422, "body is not valid JSON: nested too deeply", "invalid") from None


def api_key(cfg: ServeConfig) -> str | None:
    """The API key from ``serve.api_key_env`` (None when the service is open)."""
    if not cfg.api_key_env:
        return None
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise LandfallError(f"--api-key-env {cfg.api_key_env}: that environment variable is "
                            "not set (or empty)")
    return key


def refusal(metrics: Metrics, exc: Refused) -> JSONResponse:
    """The JSON answer of a refused request, counted by reason."""
    metrics.rejected.labels(exc.reason).inc()
    wait = max(RETRY_AFTER_S, math.ceil(exc.retry_after))  # whole seconds, at least 1
    headers = {"Retry-After": str(wait)} if exc.retry else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)


class Loader:
    """What a service loads in the background after the server starts, so that ``/healthz``
    answers at once: ``ready`` once loaded and warmed up, ``error`` (for the log) if not."""

    def __init__(self, run_dir) -> None:
        self.run_dir = run_dir
        self.ready = threading.Event()
        self.error: str | None = None
        self.backend = ""  # what runs the model, once loaded

    def _load(self) -> None:
        raise NotImplementedError

    def load(self) -> None:
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and the log
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"landfall serve: loading {self.run_dir} failed: {self.error}", flush=True)

    def start_loading(self) -> None:
        threading.Thread(target=self.load, name="landfall-load", daemon=True).start()


def install_common(app: FastAPI, metrics: Metrics, key: str | None, paths: tuple[str, ...],
                   loader: Loader) -> None:
    """The API-key check and request counting (middleware), ``/healthz``, ``/readyz`` and
    ``/metrics``. ``paths`` are the service's own routes (others count as "other")."""
    known = {*paths, "/v1/model", "/healthz", "/readyz", "/metrics"}

    @app.middleware("http")
    async def count(request: Request, call_next):
        t = time.perf_counter()
        path = request.url.path
        if key and path.startswith("/v1/"):
            given = request.headers.get("x-api-key") or request.headers.get(
                "authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), key.encode()):
                response = refusal(metrics, Refused(401, "missing or wrong API key",
                                                    "unauthorised"))
                metrics.requests.labels(path, "401").inc()
                return response
        response = await call_next(request)
        label = path if path in known else "other"
        metrics.requests.labels(label, str(response.status_code)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - t)
        return response

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process is up and answering."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """The model is loaded and warmed up (503 until then, or if loading failed)."""
        if loader.ready.is_set():
            return JSONResponse({"status": "ready", "backend": loader.backend})
        # the reason is in the server's log, not here: it may name paths on this machine
        body = {"status": "failed", "error": "the model failed to load (see the server log)"} \
            if loader.error else {"status": "loading"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics: requests by status, latency, batches, queue, tokens."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")
