"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), against a
tiny model, bounded in examples and time: no 5xx, and every 4xx names what is wrong."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from conftest import sliding_run

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = int(os.environ.get("LANDFALL_FUZZ_EXAMPLES", "150"))
# what a 4xx detail must mention: the field, the body or the limit it broke
NAMES = ("texts", "body", "Content-Length", "API key", "limit", "messages", "prompt",
         "max_tokens", "max_completion_tokens", "max_new_tokens", "temperature", "top_p",
         "top_k", "stop", "stream", "do_sample", "n:", "seed", "tools", "functions",
         "tool_choice", "function_call", "logprobs", "top_logprobs", "response_format",
         "logit_bias")


def _fuzz(client, tally: Counter, path: str, op, mode, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def fuzz(case):
        kw = case.as_transport_kwargs(base_url="http://testserver")
        kw.pop("cookies", None)
        response = client.request(**kw)
        status = response.status_code
        tally[f"{path} {mode.value} {status}"] += 1
        assert status < 500, (kw, response.text)
        if status >= 400:
            detail = response.json()["detail"]
            text = detail if isinstance(detail, str) else json.dumps(detail)
            assert any(n in text for n in NAMES), (kw, text)

    fuzz()


def _ready_schema(client):
    """Wait until the app has loaded its model; its OpenAPI schema for schemathesis."""
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.05)
    return schemathesis.openapi.from_dict(client.get("/openapi.json").json())


def _report(name: str, tally: Counter, started: float) -> None:
    report = os.environ.get("LANDFALL_FUZZ_REPORT")
    if report:
        path = report.replace(".json", f"_{name}.json")
        with open(path, "w") as fh:
            json.dump({"requests": sum(tally.values()), "seconds": time.monotonic() - started,
                       "by_path_mode_status": dict(sorted(tally.items()))}, fh, indent=2)


def _no_5xx(tally: Counter, least: int) -> None:
    assert sum(tally.values()) > least
    assert not any(k.endswith(("500", "502", "503", "504")) for k in tally), tally


def test_fuzzing_the_schema_finds_no_5xx_and_4xx_name_the_field(tmp_path, tiny_model):
    from fastapi.testclient import TestClient

    from landfall.config import build_config
    from landfall.serving.app import create_app

    run = sliding_run(tmp_path / "run", tiny_model, seed=5)
    app = create_app(run, build_config({"serve": {"threads": 1, "max_texts": 8,
                                                   "max_chars": 2000}}).serve)
    tally: Counter = Counter()
    started = time.monotonic()
    with TestClient(app) as client:
        schema = _ready_schema(client)
        for path, method in (("/v1/classify", "POST"), ("/v1/model", "GET"),
                             ("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET")):
            op = schema[path][method]
            body = path == "/v1/classify"  # the others take no input: nothing to negate
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[: 2 if body else 1]:
                _fuzz(client, tally, path, op, mode, EXAMPLES if body else 5)
    _report("classify", tally, started)
    _no_5xx(tally, EXAMPLES)


def test_fuzzing_the_generation_api_finds_no_5xx(tmp_path, tiny_lm, bitext_small):
    """The same for a causal-LM run's /v1/generate and /v1/chat/completions (short answers:
    at most 6 new tokens, so that the positive cases run fast)."""
    from fastapi.testclient import TestClient

    import landfall
    from conftest import tiny_lm_config
    from landfall.config import build_config
    from landfall.serving.app import create_app

    run = tmp_path / "lm"
    landfall.train(build_config(tiny_lm_config(tiny_lm, bitext_small, train={"max_steps": 2},
                                               report={"baseline": False, "plots": False})),
                   run)
    app = create_app(run, build_config({"serve": {"threads": 1, "max_new_tokens": 6,
                                                   "max_texts": 8, "max_chars": 2000,
                                                   "max_kv_mb": 4}}).serve)
    tally: Counter = Counter()
    started = time.monotonic()
    with TestClient(app) as client:
        schema = _ready_schema(client)
        for path in ("/v1/generate", "/v1/chat/completions"):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(client, tally, path, schema[path]["POST"], mode, EXAMPLES // 2)
        _fuzz(client, tally, "/v1/model", schema["/v1/model"]["GET"], GenerationMode.POSITIVE, 5)
    _report("generate", tally, started)
    _no_5xx(tally, EXAMPLES)
