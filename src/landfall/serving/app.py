"""``landfall serve``: any run directory behind FastAPI, with dynamic batching and limits.

A causal-LM run is served by ``serving.generation_app`` (streamed generation); a classifier
here. Endpoints: ``POST /v1/classify``, ``GET /v1/model``, ``GET /healthz`` (process up),
``GET /readyz`` (model loaded and warmed up), ``GET /metrics`` (Prometheus), ``/docs``.

The model loads in a background thread after the server starts, so ``/healthz`` answers at
once and ``/readyz`` (and ``/v1/classify``) say 503 until the warm-up pass is done.
Tokenisation runs in a worker thread and inference in the batcher's thread: the event loop
only parses, queues and answers, so health checks stay fast under load.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from landfall import runs
from landfall.config import ServeConfig
from landfall.data.windows import aggregate_logits, make_windows
from landfall.errors import LandfallError
from landfall.inference.predictor import Prediction, softmax
from landfall.inference.results import Labeller
from landfall.serving.batcher import Batcher, BatchStats, Closed, QueueFull
from landfall.serving.http import (
    InFlight,
    Loader,
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
from landfall.serving.screen import Screen


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(description="Texts to classify (1 to max_texts, each non-empty).")


class TextResult(BaseModel):
    label: str = Field(description="Predicted label (the run's out-of-scope label if rejected).")
    probs: dict[str, float] = Field(description="Class probabilities.")
    windows: int = Field(description="Windows the text was split into (long texts > 1).")
    oos_score: float | None = Field(None, description="In-scope score, when the run has a rule.")
    guard: dict | None = Field(None, description="The guard's verdict (serve.guard with "
                               "guard_action=flag): harmful, score, label.")


class ClassifyResponse(BaseModel):
    results: list[TextResult]


def _check_texts(payload: Any, cfg: ServeConfig) -> list[str]:
    """The request's texts, or a Refused naming the field that is wrong."""
    if not isinstance(payload, dict) or "texts" not in payload:
        raise Refused(422, "body must be a JSON object with a 'texts' list", "invalid")
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise Refused(422, f"texts: expected a list of strings, got {type(texts).__name__}",
                       "invalid")
    if not texts:
        raise Refused(422, "texts: the list is empty", "invalid")
    if len(texts) > cfg.max_texts:
        raise Refused(413, f"texts: {len(texts)} texts, the limit is {cfg.max_texts} per "
                       "request", "too_many_texts")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise Refused(422, f"texts[{i}]: expected a string, got {type(t).__name__}",
                           "invalid")
        if not t.strip():
            raise Refused(422, f"texts[{i}]: empty text", "invalid")
        if not encodable(t):
            raise Refused(422, f"texts[{i}]: not valid Unicode (a lone surrogate such as "
                           "\\ud800)", "invalid")
        if len(t) > cfg.max_chars:
            raise Refused(413, f"texts[{i}]: {len(t)} characters, the limit is "
                           f"{cfg.max_chars}", "text_too_long")
    return texts


class Service(Loader):
    """The loaded model and its batcher; ``ready`` once warmed up."""

    def __init__(self, run_dir: Path, cfg: ServeConfig, metrics: Metrics,
                 overrides: list[str] | None = None) -> None:
        super().__init__(run_dir)
        self.cfg, self.metrics = cfg, metrics
        self.overrides = list(overrides or [])  # the long-text strategy, as for predict
        self.trimmer = HeapTrimmer(cfg.trim_every_s)
        self.predictor = None
        self.batcher: Batcher | None = None
        self.labeller = Labeller.for_run(run_dir)

    def _load(self) -> None:
        import torch

        from landfall.inference.loading import load_run, model_dir
        from landfall.inference.onnx_backend import is_onnx_dir

        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        run = self.run_dir
        onnx_run = is_onnx_dir(model_dir(run))
        if self.cfg.backend == "torch" and onnx_run:
            raise LandfallError(f"{run}: an ONNX run cannot be served by torch")
        if self.cfg.backend == "onnx" and not onnx_run:
            run = _onnx_copy(run)
        predictor = load_run(run, batch_size=self.cfg.max_batch_size,
                             overrides=self.overrides)
        predictor.max_tokens = self.cfg.max_batch_tokens
        self.backend = "torch" if predictor.is_torch else "onnx"
        self.predictor = predictor
        # warm-up: a full batch at the run's window length (allocations, ORT's first run)
        n = predictor.spec.max_length - 2
        ids = predictor.tokenizer("warm up " * n, add_special_tokens=False)["input_ids"][:n]
        dummy = [predictor.add_special(ids)] * self.cfg.max_batch_size
        predictor.window_logits(dummy[:1])
        predictor.window_logits(dummy)
        self.batcher = Batcher(predictor.window_logits, max_batch_size=self.cfg.max_batch_size,
                               max_wait_ms=self.cfg.max_wait_ms,
                               max_batch_tokens=self.cfg.max_batch_tokens,
                               max_queue=self.cfg.max_queue,
                               max_queue_wait_s=self.cfg.max_queue_wait_s,
                               stats=BatchStats(self._on_batch, self.metrics.on_queue,
                                                self.metrics.errors.inc))
        self.ready.set()

    def _on_batch(self, size: int, tokens: int) -> None:
        self.metrics.on_batch(size, tokens)
        self.trimmer.maybe_trim()  # in the model thread, between forward passes

    def windows(self, texts: list[str]):
        from landfall.data.tokens import tokenize

        p = self.predictor
        docs = tokenize(texts, p.tokenizer, cache=False)
        return make_windows(docs, p.spec, p.add_special)

    def results(self, logits: np.ndarray, owner: list[int], n: int) -> list[dict]:
        p = self.predictor
        agg = aggregate_logits(logits, owner, n, p.spec.aggregate)
        counts = np.bincount(np.asarray(owner, dtype=np.int64), minlength=n)
        return self.labeller.rows(Prediction(softmax(agg), counts, p.labels, agg))

    def info(self) -> dict:
        p = self.predictor
        rule = self.labeller.rule
        return {"run": self.run_dir.name, "backend": self.backend, "labels": p.labels,
                "model_type": getattr(p.model.config, "model_type", None),
                "max_length": p.spec.max_length, "truncation": p.spec.truncation,
                "aggregate": p.spec.aggregate,
                "oos": {"label": rule.label, "method": rule.method} if rule else None,
                "limits": {k: v for k, v in asdict(self.cfg).items()
                           if k.startswith("max_") or k == "timeout_s"}}


def _onnx_copy(run_dir: Path) -> Path:
    """The run exported to ONNX Runtime (fp32, fused), cached by the weights' identity."""
    from landfall.compression.onnx_export import export_onnx
    from landfall.hub import cache_dir
    from landfall.inference.loading import model_dir

    src = model_dir(run_dir)
    stamp = ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                     for f in sorted(src.iterdir()) if f.is_file())
    key = hashlib.sha256(f"{src.resolve()};{stamp}".encode()).hexdigest()[:16]
    out = cache_dir() / "onnx" / key
    # manifest.json is the export's last file: without it the cache entry is incomplete
    if not ((out / "model" / "model.onnx").exists() and (out / runs.MANIFEST).exists()):
        import shutil

        shutil.rmtree(out, ignore_errors=True)  # an incomplete entry is rebuilt whole
        export_onnx(run_dir, out)
    return out


def create_app(run_dir: str | Path, cfg: ServeConfig | None = None,
               overrides: list[str] | None = None, guard: Any = None,
               redactor: Any = None, audit: dict | None = None) -> FastAPI:
    """The FastAPI app serving ``run_dir`` (the model loads in the background); ``overrides``
    change the long-text strategy (``data.truncation=sliding``...), as for ``predict``;
    ``guard`` screens inputs, ``redactor`` cleans the request log and ``audit`` (the summary of
    the audit that cleared the run) is shown at /v1/model (``serving.screen``)."""
    from landfall.inference.ensemble import is_ensemble
    from landfall.inference.loading import check_inference_overrides, model_dir, run_task

    cfg = cfg or ServeConfig()
    run_dir = Path(run_dir)
    if not is_ensemble(run_dir):
        task = run_task(run_dir)
        task.require("serve", str(run_dir))
        if task.head == "generate":  # a run that writes: the generation service
            from landfall.serving.generation_app import create_generation_app

            if overrides:
                raise LandfallError(f"{run_dir}: a {task.name} run takes no --set "
                                    f"{overrides[0].split('=')[0]} (long-text settings are "
                                    "for classifiers)")
            model_dir(run_dir)
            return create_generation_app(run_dir, cfg, Screen(cfg, guard, redactor, audit))
    if is_ensemble(run_dir):
        raise LandfallError(f"{run_dir}: serving an ensemble is not supported yet; serve a "
                            "member, or predict with the ensemble offline")
    model_dir(run_dir)  # fail now, with a clear message, if there is no model
    overrides = check_inference_overrides(overrides)
    key = api_key(cfg)
    metrics = Metrics()
    service = Service(run_dir, cfg, metrics, overrides)
    screen = Screen(cfg, guard, redactor, audit)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start_loading()
        yield
        # uvicorn has stopped accepting and waited for in-flight requests; finish the queue
        if service.batcher is not None:
            await run_in_threadpool(service.batcher.close, True, 60.0)

    app = FastAPI(title="Landfall", version="1", lifespan=lifespan,
                  description=f"Text classification with the run `{run_dir.name}`.")
    app.state.service = service
    app.state.metrics = metrics

    def refuse(exc: Refused) -> JSONResponse:
        return refusal(metrics, exc)

    install_common(app, metrics, key, ("/v1/classify",), service)

    @app.get("/v1/model")
    async def model_info() -> JSONResponse:
        """Labels, model metadata, long-text strategy and limits."""
        if not service.ready.is_set():
            return refuse(Refused(503, "model is loading", "not_ready", retry=True))
        return JSONResponse(service.info() | screen.info())

    inflight = InFlight(cfg.max_inflight)  # requests inside _classify
    schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": ClassifyRequest.model_json_schema()}}}}

    @app.post("/v1/classify", response_model=ClassifyResponse, openapi_extra=schema,
              responses={413: {"description": "Too many texts, a text or the body too long"},
                         422: {"description": "Malformed JSON or wrong field types"},
                         503: {"description": "Loading, or the queue is full (Retry-After)"},
                         504: {"description": "Not answered within timeout_s"}})
    async def classify(request: Request):
        """Classify texts: per text the label, class probabilities and window count."""
        t0 = time.monotonic()
        try:
            with inflight:
                return await _classify(request, t0)
        except Refused as exc:
            return refuse(exc)

    async def _classify(request: Request, t0: float):
        try:
            body = await read_body(request, cfg.max_body_bytes)
            payload = parse_json(body)
            texts = _check_texts(payload, cfg)
            if not service.ready.is_set():
                raise Refused(503, "model is loading", "not_ready", retry=True)
            verdicts = await run_in_threadpool(screen.check, texts) if screen.active else None
            windows, owner = await run_in_threadpool(service.windows, texts)
            try:
                future = service.batcher.submit(windows)
            except QueueFull as exc:
                raise Refused(503, f"server busy: {exc}", "queue_full", retry=True,
                               retry_after=exc.retry_after) from None
            except Closed:
                raise Refused(503, "server is shutting down", "closing", retry=True) from None
            left = cfg.timeout_s - (time.monotonic() - t0)
            try:
                logits = await asyncio.wait_for(asyncio.wrap_future(future), max(left, 0.001))
            except TimeoutError:
                future.cancel()  # skipped by the batcher if it has not started
                raise Refused(504, f"not answered within {cfg.timeout_s} s", "timeout") \
                    from None
            except Exception as exc:  # noqa: BLE001 - the model failed on this request
                print(f"landfall serve: the model failed on a request: "
                      f"{type(exc).__name__}: {exc}", flush=True)
                raise Refused(500, "the model failed on this request", "model_error") \
                    from None
        except Refused as exc:
            return refuse(exc)
        metrics.texts.inc(len(texts))
        results = service.results(logits, owner, len(texts))
        if verdicts is not None:
            for r, v in zip(results, verdicts, strict=True):
                r["guard"] = v
        if cfg.log_requests:
            await run_in_threadpool(screen.log, "/v1/classify", texts,
                                    [r["label"] for r in results])
        return {"results": results}

    return app


def serve(run_dir: str | Path, cfg: ServeConfig | None = None,
          overrides: list[str] | None = None, guard: Any = None, redactor: Any = None,
          audit: dict | None = None) -> None:
    """Run the server until SIGINT/SIGTERM (in-flight requests are finished first)."""
    import uvicorn

    cfg = cfg or ServeConfig()
    app = create_app(run_dir, cfg, overrides, guard, redactor, audit)
    # on SIGTERM the requests in flight may finish: a stream may take its whole deadline
    drain = cfg.stream_timeout_s if hasattr(app.state, "engine") else max(cfg.timeout_s, 5)
    # uvicorn's own bound: connections beyond it get 503 before any of our code runs
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info", access_log=False,
                timeout_graceful_shutdown=drain, limit_concurrency=cfg.max_inflight + 64)
