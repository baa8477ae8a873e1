"""The HTTP service: contracts, bad input, batching, readiness, limits, shutdown, client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import imdb_rows, sliding_run, wait_ready

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model) -> Path:
    """A run directory around a random 2-label tiny BERT with sliding windows of 32 tokens."""
    return sliding_run(tmp_path_factory.mktemp("serve-run"), tiny_model, seed=3)


def _client(run, **settings):
    from fastapi.testclient import TestClient

    from landfall.config import build_config
    from landfall.serving.app import create_app

    cfg = build_config({"serve": {"threads": 1, **settings}}).serve
    return TestClient(create_app(run, cfg))


@pytest.fixture(scope="module")
def client(run):
    with _client(run, max_wait_ms=20) as c:
        wait_ready(c)
        yield c


def test_classify_matches_predict_and_reports_windows(client, run):
    from landfall.inference.loading import load_run

    texts = [r["text"] for r in imdb_rows(2)] + ["short one"]
    r = client.post("/v1/classify", json={"texts": texts})
    assert r.status_code == 200
    rows = r.json()["results"]
    ref = load_run(run, device="cpu").predict(texts)
    assert [x["windows"] for x in rows] == ref.windows.tolist() and max(ref.windows) > 1
    probs = np.array([[x["probs"]["neg"], x["probs"]["pos"]] for x in rows])
    np.testing.assert_allclose(probs, ref.probs, atol=1e-4)
    assert [x["label"] for x in rows] == [ref.labels[i] for i in ref.label_ids]


def test_model_health_metrics_and_docs(client):
    info = client.get("/v1/model").json()
    assert info["labels"] == ["neg", "pos"] and info["truncation"] == "sliding"
    assert info["backend"] == "torch" and info["limits"]["max_texts"] == 64
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    client.post("/v1/classify", json={"texts": ["x y z"]})
    text = client.get("/metrics").text
    for name in ("landfall_requests_total", "landfall_request_seconds_bucket",
                 "landfall_batch_size_bucket", "landfall_queue_depth", "landfall_tokens_total"):
        assert name in text
    assert 'landfall_requests_total{path="/v1/classify",status="200"}' in text


@pytest.mark.parametrize("body,status,needle", [
    (b"{not json", 422, "not valid JSON"),
    (b'["a"]', 422, "'texts'"),
    (b'{"texts": "a"}', 422, "expected a list"),
    (b'{"texts": []}', 422, "empty"),
    (b'{"texts": ["ok", 3]}', 422, "texts[1]"),
    (b'{"texts": ["ok", "  "]}', 422, "texts[1]: empty"),
    (json.dumps({"texts": ["a"] * 65}).encode(), 413, "limit is 64"),
    (json.dumps({"texts": ["a" * 100_001]}).encode(), 413, "texts[0]"),
])
def test_bad_input_is_4xx_naming_the_field(client, body, status, needle):
    r = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_body_limit_and_api_key(run, monkeypatch):
    monkeypatch.setenv("TEST_LANDFALL_KEY", "s3cret")
    with _client(run, max_body_bytes=200, api_key_env="TEST_LANDFALL_KEY") as c:
        wait_ready(c)
        assert c.post("/v1/classify", json={"texts": ["a"]}).status_code == 401
        ok = c.post("/v1/classify", json={"texts": ["a"]}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        big = c.post("/v1/classify", json={"texts": ["a" * 300]},
                     headers={"Authorization": "Bearer s3cret"})
        assert big.status_code == 413 and "limit is 200" in big.json()["detail"]
        assert c.get("/healthz").status_code == 200  # health stays open
    monkeypatch.delenv("TEST_LANDFALL_KEY")
    from landfall.errors import LandfallError

    with pytest.raises(LandfallError, match="TEST_LANDFALL_KEY"):
        _client(run, api_key_env="TEST_LANDFALL_KEY")


def test_not_ready_until_warmed_up(run, monkeypatch):
    from landfall.serving import app as app_mod

    gate = threading.Event()
    real = app_mod.Service._load

    def slow(self):
        gate.wait(30)
        real(self)

    monkeypatch.setattr(app_mod.Service, "_load", slow)
    with _client(run) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        busy = c.post("/v1/classify", json={"texts": ["a"]})
        assert busy.status_code == 503 and busy.headers["retry-after"]
        gate.set()
        wait_ready(c)
        assert c.post("/v1/classify", json={"texts": ["a"]}).status_code == 200


def test_concurrent_requests_share_forward_passes(run):
    with _client(run, max_wait_ms=200, max_batch_size=64) as c:
        wait_ready(c)
        n = 12
        barrier = threading.Barrier(n)
        codes = []

        def one(i):
            barrier.wait()
            codes.append(c.post("/v1/classify", json={"texts": [f"text number {i}"]})
                         .status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [200] * n
        text = c.get("/metrics").text
        count = _metric(text, "landfall_batch_size_count")
        total = _metric(text, "landfall_batch_size_sum")
        assert total == n  # one window per text
        assert count < n  # fewer forward passes than requests: they were batched


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def test_full_queue_answers_503_with_retry_after(run):
    from landfall.serving.batcher import Batcher, QueueFull

    gate = threading.Event()

    def slow(windows):
        gate.wait(10)
        return np.zeros((len(windows), 2), dtype=np.float32)

    b = Batcher(slow, max_batch_size=2, max_wait_ms=0, max_queue=4)
    first = b.submit([[1, 2]] * 2)  # taken by the worker, blocked in the model
    time.sleep(0.1)
    queued = b.submit([[1, 2]] * 4)
    with pytest.raises(QueueFull):
        b.submit([[1, 2]])
    assert b.depth == 4
    gate.set()
    assert first.result(5).shape == (2, 2) and queued.result(5).shape == (4, 2)
    b.close()

    with _client(run, max_queue=1, max_wait_ms=0) as c:  # over HTTP
        wait_ready(c)
        svc = c.app.state.service
        svc.batcher.close()
        gate2 = threading.Event()
        svc.batcher = Batcher(lambda w: (gate2.wait(10), np.zeros((len(w), 2), np.float32))[1],
                              max_batch_size=1, max_wait_ms=0, max_queue=1)
        results = {}

        def send(i):
            results[i] = c.post("/v1/classify", json={"texts": ["a"]})

        t1 = threading.Thread(target=send, args=(1,))
        t1.start()
        time.sleep(0.3)  # in the model
        t2 = threading.Thread(target=send, args=(2,))
        t2.start()
        time.sleep(0.3)  # queued
        r3 = c.post("/v1/classify", json={"texts": ["a"]})
        assert r3.status_code == 503 and r3.headers["retry-after"] == "1"
        gate2.set()
        t1.join()
        t2.join()
        assert results[1].status_code == 200 and results[2].status_code == 200


def test_queue_refuses_work_it_could_not_answer_in_time():
    """Beyond max_queue_wait_s of expected wait (queued windows / measured rate): QueueFull."""
    from landfall.serving.batcher import Batcher, QueueFull

    gate, blocking = threading.Event(), threading.Event()

    def model(windows):  # 20 ms a window; blocks while `blocking` is set
        if blocking.is_set():
            gate.wait(10)
        time.sleep(0.02 * len(windows))
        return np.zeros((len(windows), 2), dtype=np.float32)

    b = Batcher(model, max_batch_size=1, max_wait_ms=0, max_queue=1000, max_queue_wait_s=0.1)
    b.submit([[1]]).result(5)
    assert 0 < b.rate <= 50  # windows/s, measured
    blocking.set()
    first = b.submit([[1]])  # taken by the worker, held in the model
    deadline = time.monotonic() + 5
    while b.depth and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    blocking.clear()
    queued = b.submit([[1]] * 3)  # an empty queue always takes a request
    with pytest.raises(QueueFull, match="expected wait") as info:
        b.submit([[1]] * 3)  # 6 windows at <= 50/s: over 0.1 s
    assert info.value.retry_after >= 3 / 50
    gate.set()
    assert first.result(5).shape == (1, 2) and queued.result(5).shape == (3, 2)
    b.close()


def test_heap_trimmer_runs_at_most_every_interval():
    from landfall.serving.memory import HeapTrimmer

    assert not HeapTrimmer(every_s=0).maybe_trim()  # 0 = never
    t = HeapTrimmer(every_s=0.2)
    assert not t.maybe_trim()  # too soon after start
    if t.available:  # glibc
        time.sleep(0.25)
        assert t.maybe_trim() and not t.maybe_trim() and t.trims == 1


def test_request_timeout_is_504(run):
    with _client(run, timeout_s=0.2) as c:
        wait_ready(c)
        from landfall.serving.batcher import Batcher

        c.app.state.service.batcher.close()
        c.app.state.service.batcher = Batcher(
            lambda w: (time.sleep(1), np.zeros((len(w), 2), np.float32))[1])
        r = c.post("/v1/classify", json={"texts": ["a"]})
        assert r.status_code == 504 and "0.2 s" in r.json()["detail"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_finishes_in_flight_requests_and_client_works(run, tmp_path):
    """A real `landfall serve` process: requests in flight when SIGTERM arrives still get
    their answers; afterwards the port refuses connections."""
    from landfall.serving.client import Client, ServerError

    port = _free_port()
    env = {**os.environ, "LANDFALL_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "landfall", "serve", str(run), "--port",
                             str(port), "--max-wait-ms", "2000", "--set", "serve.threads=1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with Client(f"http://127.0.0.1:{port}", timeout=30) as client:
            t = time.time()
            while not client.ready():
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.time() - t < 90
                time.sleep(0.1)
            out = client.classify(["a good film", "a bad one"])
            assert [o.windows for o in out] == [1, 1] and out[0].label in ("neg", "pos")
            assert client.model()["labels"] == ["neg", "pos"]
            with pytest.raises(ServerError) as err:
                client.classify([])
            assert err.value.status == 422

            answers = []

            def send():  # each waits up to 2 s in the batcher: in flight at SIGTERM
                with Client(f"http://127.0.0.1:{port}", timeout=30) as c2:
                    answers.append(len(c2.classify(["still answered"])))

            threads = [threading.Thread(target=send) for _ in range(4)]
            for th in threads:
                th.start()
            t = time.time()  # SIGTERM once all four are accepted and queued
            while "landfall_queue_depth 4.0" not in client.metrics():
                assert time.time() - t < 20
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            for th in threads:
                th.join(30)
            assert answers == [1, 1, 1, 1]
            # uvicorn re-raises the signal once it has shut down gracefully
            assert proc.wait(30) in (0, -signal.SIGTERM)
            assert not client.healthy()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("body,needle", [
    (b'{"texts": ["\\ud800"]}', "texts[0]: not valid Unicode"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_hostile_json_is_422_not_500(client, body, needle):
    r = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_chunked_body_is_cut_off_at_the_limit(run):
    """No Content-Length: the limit holds while the chunks arrive (the rest is never read)."""
    import asyncio

    from landfall.serving.http import Refused, read_body

    def chunks():
        for _ in range(1000):
            yield b'{"texts": ["' + b"a" * 1000 + b'"]}'

    with _client(run, max_body_bytes=5000) as c:
        wait_ready(c)
        r = c.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "over 5000 bytes" in r.json()["detail"]

    read = []

    class Chunked:  # what read_body asks of a request: headers and the body stream
        headers: dict = {}

        async def stream(self):
            for _ in range(1000):
                read.append(1)
                yield b"x" * 1000

    with pytest.raises(Refused, match="over 5000 bytes"):
        asyncio.run(read_body(Chunked(), 5000))
    assert len(read) == 6  # stopped at the chunk that crossed the limit


def test_a_poisoned_request_fails_alone_and_is_counted():
    from landfall.serving.batcher import Batcher, BatchStats

    errors = []

    def model(windows):
        if any(w == [666] for w in windows):
            raise RuntimeError("poison")
        return np.ones((len(windows), 2), dtype=np.float32)

    b = Batcher(model, max_batch_size=8, max_wait_ms=200,
                stats=BatchStats(on_error=errors.append))
    good, bad, good2 = b.submit([[1]]), b.submit([[666]]), b.submit([[2], [3]])
    assert good.result(5).shape == (1, 2) and good2.result(5).shape == (2, 2)
    with pytest.raises(RuntimeError, match="poison"):
        bad.result(5)
    assert errors == [1]
    b.close()


def test_model_failure_is_500_in_metrics_and_paths_stay_private(run, monkeypatch):
    with _client(run) as c:
        wait_ready(c)
        service = c.app.state.service

        def boom(windows):
            raise RuntimeError("kernel exploded")

        monkeypatch.setattr(service.batcher, "run", boom)
        r = c.post("/v1/classify", json={"texts": ["a"]})
        assert r.status_code == 500 and "failed on this request" in r.json()["detail"]
        text = c.get("/metrics").text
        assert 'landfall_requests_total{path="/v1/classify",status="500"} 1.0' in text
        assert "landfall_errors_total 1.0" in text
        assert str(run) not in c.get("/v1/model").text
        assert str(run) not in c.get("/openapi.json").text


def test_requests_in_flight_are_bounded(run):
    with _client(run, max_inflight=1) as c:
        wait_ready(c)
        gate = threading.Event()
        service = c.app.state.service
        real = service.windows

        def slow(texts):
            gate.wait(10)
            return real(texts)

        service.windows = slow
        out = {}
        t = threading.Thread(target=lambda: out.update(
            first=c.post("/v1/classify", json={"texts": ["a"]})))
        t.start()
        time.sleep(0.5)
        second = c.post("/v1/classify", json={"texts": ["b"]})
        gate.set()
        t.join(10)
        assert second.status_code == 503 and "in flight" in second.json()["detail"]
        assert second.headers["retry-after"]
        assert out["first"].status_code == 200


def test_serve_honours_or_refuses_long_text_overrides(run):
    from fastapi.testclient import TestClient

    from landfall.config import build_config
    from landfall.errors import LandfallError
    from landfall.serving.app import create_app

    cfg = build_config({"serve": {"threads": 1}}).serve
    with TestClient(create_app(run, cfg, ["data.truncation=head"])) as c:
        wait_ready(c)
        assert c.get("/v1/model").json()["truncation"] == "head"
    with pytest.raises(LandfallError, match="only the long-text strategy"):
        create_app(run, cfg, ["train.lr=1"])


def test_predict_with_a_stride_too_large_is_a_config_error(run, tmp_path):
    from landfall.errors import ConfigError
    from landfall.inference.loading import load_run

    with pytest.raises(ConfigError, match="data.stride must be between"):
        load_run(run, overrides=["data.stride=500"])


def test_an_incomplete_onnx_serve_cache_is_rebuilt(run, monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime")
    from landfall.serving.app import _onnx_copy

    monkeypatch.setenv("LANDFALL_CACHE", str(tmp_path / "cache"))
    out = _onnx_copy(run)
    assert (out / "model" / "model.onnx").exists() and (out / "landfall.toml").exists()
    (out / "landfall.toml").unlink()  # a cache entry cut short: model.onnx without its files
    (out / "manifest.json").unlink()
    again = _onnx_copy(run)
    assert again == out and (out / "landfall.toml").exists() and (out / "manifest.json").exists()
