"""The generation service on a tiny random causal LM trained here on real Bitext rows:
streaming order and completeness, batch join/leave gives a lone request's greedy tokens, a
disconnected client frees its place, bad input answered 422 naming the field, the limits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

import landfall
from conftest import bitext_rows, tiny_lm_config, wait_ready
from landfall.config import build_config

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from landfall.serving.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def gen_run(tiny_lm, bitext_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("serve-lm") / "run"
    cfg = tiny_lm_config(tiny_lm, bitext_small, train={"max_steps": 6},
                         report={"baseline": False, "plots": False},
                         generate={"max_new_tokens": 24})
    landfall.train(build_config(cfg), out)
    return out


def _serve_cfg(**kw):
    base = {"threads": 1, "precision": "fp32", "max_batch_size": 4, "step_tokens": 64,
            "max_new_tokens": 48, "max_kv_mb": 8}
    return build_config({"serve": {**base, **kw}}).serve


def _ready(c: TestClient) -> None:
    wait_ready(c, timeout=120)


def _client(run, **kw) -> TestClient:
    return TestClient(create_app(run, _serve_cfg(**kw)))


REQUESTS = [r["instruction"] for r in bitext_rows(8)]


def _events(lines) -> list:
    out = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_a_stream_arrives_in_order_and_complete(gen_run):
    with _client(gen_run) as c:
        _ready(c)
        body = {"messages": [{"role": "user", "content": REQUESTS[0]}], "max_tokens": 20,
                "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream")
            events = _events(r.iter_lines())
        assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert events[-1] == "[DONE]"
        usage = events[-2]["usage"]
        finals = [e for e in events[1:-2] if e["choices"][0]["finish_reason"]]
        assert len(finals) == 1 and finals[0] is events[-3]  # one end, after every piece
        assert finals[0]["choices"][0]["finish_reason"] in ("stop", "length")
        streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events[1:-2])
        whole = c.post("/v1/chat/completions", json={**body, "stream": False}).json()
        assert whole["choices"][0]["message"]["content"] == streamed.strip()
        assert whole["usage"] == usage and 0 < usage["completion_tokens"] <= 20
        gen = c.post("/v1/generate", json={"prompt": REQUESTS[0], "max_new_tokens": 20}).json()
        assert gen["text"] == streamed.strip() and gen["new_tokens"] == usage["completion_tokens"]
        # a temperature that would overflow float32 (NaN probabilities) decodes greedily
        tiny = c.post("/v1/generate", json={"prompt": REQUESTS[0], "max_new_tokens": 20,
                                            "do_sample": True, "temperature": 1e-300})
        assert tiny.status_code == 200 and tiny.json()["text"] == gen["text"]


def test_a_stop_string_ends_the_stream_before_it_and_never_leaks(gen_run):
    with _client(gen_run) as c:
        _ready(c)
        body = {"prompt": REQUESTS[2], "max_new_tokens": 40}
        full = c.post("/v1/generate", json=body).json()["text"]
        words = full.split()
        assert len(words) > 6, full
        stop = " ".join(words[3:5])
        with c.stream("POST", "/v1/generate", json={**body, "stop": [stop],
                                                    "stream": True}) as r:
            events = _events(r.iter_lines())
        pieces = [e["text"] for e in events if "text" in e]
        assert events[-1]["finish"] == "stop"
        assert "".join(pieces).strip() == full[:full.index(stop)].strip(), (full, stop, pieces)
        assert all(stop not in "".join(pieces[:i + 1]) for i in range(len(pieces)))


def test_joining_and_leaving_the_batch_gives_a_lone_requests_greedy_tokens(gen_run):
    from landfall.inference.loading import load_generation_run, run_config

    settings = run_config(gen_run).generate
    lone = load_generation_run(gen_run, device="cpu")
    lengths = [5, 30, 12, 40, 8, 25, 16, 35]  # short ones leave while long ones run on
    expected = [lone.generate([q], settings.__class__(max_new_tokens=n, batch_size=1))[0].text
                for q, n in zip(REQUESTS, lengths, strict=True)]
    with _client(gen_run, max_batch_size=4) as c:  # 8 requests, 4 places: others join later
        _ready(c)
        got: dict[int, str] = {}

        def one(i):
            r = c.post("/v1/generate", json={"prompt": REQUESTS[i],
                                             "max_new_tokens": lengths[i]})
            got[i] = r.json()["text"]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(REQUESTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert [got[i] for i in range(len(REQUESTS))] == expected


def test_the_fast_sampler_masks_as_the_stock_one_and_greedy_is_argmax():
    import torch
    from transformers.generation.continuous_batching.cb_logits_processors import (
        ContinuousBatchingTopKLogitsWarper,
        ContinuousBatchingTopPLogitsWarper,
    )
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    from landfall.serving.sampling import TopK, TopP

    torch.manual_seed(0)
    scores = torch.randn(5, 300)
    scores[0, 7] = scores[0, 9] = scores[0].max() + 1  # a tie at the top: argmax takes 7
    stock_k = ContinuousBatchingTopKLogitsWarper(TopKLogitsWarper(50))
    fast_k = TopK(TopKLogitsWarper(50))
    ks = torch.tensor([1, 5, 50, 1, 300], dtype=torch.int32)
    got, want = fast_k(scores.clone(), ks), stock_k(scores.clone(), ks)
    sampled = [1, 2, 4]
    assert torch.equal(got[sampled], want[sampled])  # the same masks for sampled rows
    for row in (0, 3):  # greedy rows: one token left, the first of the largest
        kept = torch.isfinite(got[row]).nonzero().flatten().tolist()
        assert kept == [int(scores[row].argmax())]
    assert kept and torch.isfinite(got[0]).nonzero().flatten().tolist() == [7]
    ones = torch.ones(5, dtype=torch.float32).view(dtype=torch.int32)
    fast_p = TopP(TopPLogitsWarper(0.9))
    assert torch.equal(fast_p(scores, ones), scores)  # top-p 1 everywhere: untouched
    ps = torch.tensor([1.0, 0.5, 0.9, 1.0, 0.2]).view(dtype=torch.int32)
    stock_p = ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.9))
    assert torch.equal(fast_p(scores.clone(), ps), stock_p(scores.clone(), ps))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uvicorn(app):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{port}"


def test_a_client_that_disconnects_frees_its_place(gen_run):
    app = create_app(gen_run, _serve_cfg(max_new_tokens=400, max_kv_mb=16))
    server, thread, url = _uvicorn(app)
    engine = app.state.engine
    try:
        t = time.time()
        while not engine.ready.is_set():
            assert time.time() - t < 120 and engine.error is None, engine.error
            time.sleep(0.05)
        body = {"prompt": REQUESTS[1], "max_new_tokens": 400, "do_sample": True,
                "stream": True, "stop": None}
        with httpx.Client(base_url=url, timeout=30) as h, \
                h.stream("POST", "/v1/generate", json=body) as r:
            pieces = 0
            for line in r.iter_lines():
                pieces += line.startswith("data: ")
                if pieces == 3:
                    break  # leave mid-stream: the connection closes here
        assert len(engine.streams) <= 1
        t = time.time()
        while engine.streams or engine.held_requests():
            assert time.time() - t < 10, (len(engine.streams), engine.held_requests())
            time.sleep(0.05)
        metrics = httpx.get(f"{url}/metrics").text
        assert 'landfall_streams_finished_total{reason="cancelled"} 1.0' in metrics
        # the place is free: a new request is served at once
        r = httpx.post(f"{url}/v1/generate", json={"prompt": REQUESTS[2],
                                                  "max_new_tokens": 4}, timeout=30)
        assert r.status_code == 200 and r.json()["new_tokens"] <= 4
    finally:
        server.should_exit = True
        thread.join(30)


LONG = "word " * 500
BAD = [
    ({"messages": "hi"}, 422, "messages: expected a non-empty list"),
    ({"messages": []}, 422, "messages: expected a non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}]}, 422, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, 422, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "\ud800"}]}, 422, "messages[0].content"),
    ({"messages": [{"role": "system", "content": "only a system turn"}]}, 422, "user turn"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 422, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}, 422, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "5"}, 422, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": -1}, 422, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, 422, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "top_p": 0}, 422, "top_p"),
    ({"messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 5}, 422, "stop"),
    ({"messages": [{"role": "user", "content": "x"}], "stop": [""]}, 422, "stop[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 422, "stream"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, 422, "n:"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"x": 1}]}, 422, "tools"),
    ({"messages": [{"role": "user", "content": "x"}], "seed": 1}, 422, "seed"),
    ({"messages": [{"role": "user", "content": LONG}]}, 413, "messages: "),
    ([1, 2], 422, "body: expected a JSON object"),
]


@pytest.mark.parametrize("body,status,needle", BAD)
def test_bad_chat_requests_are_refused_naming_the_field(gen_run, body, status, needle):
    with _client(gen_run) as c:
        _ready(c)
        r = c.post("/v1/chat/completions", content=json.dumps(body).encode(),
                   headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert needle in r.json()["detail"]


@pytest.mark.parametrize("body,needle", [
    ({"prompt": "x", "messages": [{"role": "user", "content": "x"}]}, "prompt: give a prompt"),
    ({}, "prompt: give a prompt"),
    ({"prompt": "  "}, "prompt: empty"),
    ({"prompt": "x", "max_new_tokens": -3}, "max_new_tokens"),
    ({"prompt": "x", "top_k": -1}, "top_k"),
    ({"prompt": "x", "temperature": 0}, "temperature"),
    ({"prompt": "x", "do_sample": 1}, "do_sample"),
])
def test_bad_generate_requests_are_refused_naming_the_field(gen_run, body, needle):
    with _client(gen_run) as c:
        _ready(c)
        r = c.post("/v1/generate", json=body)
        assert r.status_code == 422, r.text
        assert needle in r.json()["detail"]


def test_limits_carry_over_body_queue_deadline_and_key(gen_run, monkeypatch):
    def chunks():  # no Content-Length: the limit holds while the body is read
        for _ in range(100):
            yield b'{"prompt": "' + b"x" * 1000

    with _client(gen_run, max_body_bytes=5000) as c:
        _ready(c)
        r = c.post("/v1/generate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
    with _client(gen_run, max_streams=1, max_new_tokens=400, max_kv_mb=16) as c:
        _ready(c)
        out = {}
        long = threading.Thread(target=lambda: out.update(first=c.post(
            "/v1/generate", json={"prompt": REQUESTS[0], "max_new_tokens": 400,
                                  "do_sample": True})))
        long.start()
        t = time.time()
        while not c.app.state.engine.streams:
            assert time.time() - t < 10
            time.sleep(0.01)
        second = c.post("/v1/generate", json={"prompt": REQUESTS[1]})
        assert second.status_code == 503 and int(second.headers["retry-after"]) >= 1
        long.join(120)
        assert out["first"].status_code == 200
    with _client(gen_run, stream_timeout_s=0.05, max_new_tokens=400, max_kv_mb=16) as c:
        _ready(c)
        r = c.post("/v1/generate", json={"prompt": REQUESTS[0], "max_new_tokens": 400,
                                          "do_sample": True})
        assert r.status_code == 504 and "not finished within" in r.json()["detail"]
    monkeypatch.setenv("LANDFALL_TEST_KEY", "s3cret")
    with _client(gen_run, api_key_env="LANDFALL_TEST_KEY") as c:
        _ready(c)
        assert c.post("/v1/chat/completions", json={}).status_code == 401
        ok = c.post("/v1/generate", json={"prompt": "hi", "max_new_tokens": 2},
                    headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_the_typed_client_generates_and_streams(gen_run):
    from landfall.serving.client import Client

    app = create_app(gen_run, _serve_cfg())
    server, thread, url = _uvicorn(app)
    try:
        with Client(url, timeout=60) as client:
            t = time.time()
            while not client.ready():
                assert time.time() - t < 120
                time.sleep(0.05)
            whole = client.generate(REQUESTS[3], max_new_tokens=10)
            pieces = list(client.stream(REQUESTS[3], max_new_tokens=10))
            assert "".join(p.text for p in pieces).strip() == whole.text
            assert pieces[-1].finish == whole.finish and whole.new_tokens <= 10
            assert client.model()["task"] == "causal_lm"
    finally:
        server.should_exit = True
        thread.join(30)


def test_sigterm_lets_the_streams_in_flight_finish(gen_run):
    from landfall.serving.client import Client

    port = _free_port()
    env = {**os.environ, "LANDFALL_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "landfall", "serve", str(gen_run), "--port",
                             str(port), "--threads", "1", "--precision", "fp32"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        with Client(url, timeout=60) as client:
            t = time.time()
            while not client.ready():
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.time() - t < 120
                time.sleep(0.1)
            finishes = []

            def one():
                with Client(url, timeout=60) as c2:
                    pieces = list(c2.stream(REQUESTS[4], max_new_tokens=300, do_sample=True))
                    finishes.append(pieces[-1].finish)

            threads = [threading.Thread(target=one) for _ in range(3)]
            for th in threads:
                th.start()
            t = time.time()
            while "landfall_streams 3.0" not in client.metrics():
                assert time.time() - t < 30
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            for th in threads:
                th.join(60)
            assert len(finishes) == 3 and all(f in ("stop", "length") for f in finishes)
            assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()


def _tokens_generated(app) -> float:
    return app.state.metrics.generated._value.get()


@pytest.mark.parametrize("path,body", [
    ("/v1/generate", {"prompt": REQUESTS[3]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": REQUESTS[3]}]}),
])
def test_a_non_streamed_request_whose_client_left_is_cancelled(gen_run, path, body):
    """Issue 24: a client that disconnects from a non-streamed request frees its slot within
    a decoding step or so, instead of decoding on until max_tokens or the deadline."""
    app = create_app(gen_run, _serve_cfg(max_new_tokens=900, max_kv_mb=32))
    server, thread, url = _uvicorn(app)
    engine = app.state.engine
    try:
        t = time.time()
        while not engine.ready.is_set():
            assert time.time() - t < 120 and engine.error is None, engine.error
            time.sleep(0.05)
        payload = json.dumps({**body, "max_tokens": 900, "max_new_tokens": 900,
                              "temperature": 0}
                             if path.endswith("completions") else
                             {**body, "max_new_tokens": 900}).encode()
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        t = time.time()
        while not engine.streams or next(iter(engine.streams.values())).tokens < 5:
            assert time.time() - t < 30, "the request never started decoding"
            time.sleep(0.005)
        stream = next(iter(engine.streams.values()))
        sock.close()  # the client leaves mid-request, before any byte of the answer
        at_close = _tokens_generated(app)
        t = time.time()
        while engine.streams or engine.held_requests():
            assert time.time() - t < 5, (stream.tokens, stream.finish)
            time.sleep(0.005)
        assert stream.finish is None and stream.tokens < 900  # cut short, not finished
        # within a decoding step or two of the disconnect (outputs already in flight)
        assert _tokens_generated(app) - at_close <= 3
        metrics = httpx.get(f"{url}/metrics").text
        assert 'landfall_streams_finished_total{reason="cancelled"} 1.0' in metrics
    finally:
        server.should_exit = True
        thread.join(30)
