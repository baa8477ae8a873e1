"""Prometheus metrics of one server (its own registry, so several apps can live in a process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("landfall_requests", "HTTP requests by path and status.",
                                ["path", "status"], registry=r)
        self.latency = Histogram("landfall_request_seconds", "Request latency (seconds).",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("landfall_batch_size", "Windows per forward pass.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("landfall_queue_depth", "Windows waiting for the model.",
                                 registry=r)
        self.tokens = Counter("landfall_tokens", "Tokens run through the model.", registry=r)
        self.texts = Counter("landfall_texts", "Texts classified.", registry=r)
        self.rejected = Counter("landfall_rejected", "Requests refused by reason.", ["reason"],
                                registry=r)
        self.errors = Counter("landfall_errors", "Requests the model failed on (answered 500).",
                              registry=r)
        # generation (causal-LM runs)
        self.ttft = Histogram("landfall_time_to_first_token_seconds", "Arrival to first "
                              "generated token (seconds).", buckets=LATENCY_BUCKETS, registry=r)
        self.token_latency = Histogram("landfall_token_seconds", "Time between a stream's "
                                       "consecutive tokens (seconds).",
                                       buckets=TOKEN_BUCKETS, registry=r)
        self.generated = Counter("landfall_generated_tokens", "Tokens generated.", registry=r)
        self.streams = Gauge("landfall_streams", "Generation requests admitted and not done "
                             "(running or waiting for a place in the batch).", registry=r)
        self.finished = Counter("landfall_streams_finished", "Generation requests by how they "
                                "ended (stop, length, timeout, error, cancelled).", ["reason"],
                                registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, CPU seconds, open fds

    def on_batch(self, size: int, tokens: int) -> None:
        self.batch_size.observe(size)
        self.tokens.inc(tokens)

    def on_queue(self, depth: int) -> None:
        self.queue_depth.set(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
