"""Ray: ``predict --engine ray`` writes the file the single-process predict writes (byte for
byte, in input order) and resumes after its driver is killed; Ray Serve answers with the
bodies of ``serve``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings

import pytest

from conftest import imdb_rows, sliding_run

try:
    import ray
    import ray.data  # noqa: F401
except ImportError:  # `make test` installs it (the dev extra); say loudly when it did not
    warnings.warn("Ray is not installed: the Ray tests did NOT run (pip install "
                  "'ray[data,serve]')", stacklevel=1)
    pytest.skip("ray not installed: Ray batch inference and Ray Serve NOT tested",
                allow_module_level=True)

from landfall.inference import predict as predict_mod
from landfall.inference.predict import predict_file
from landfall.scale.ray_batch import ray_engine

CHUNK = 16  # small chunks, so that 2 actors share the file and the order is tested


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory):
    rows = imdb_rows(40)  # 80 real reviews, 5 chunks
    path = tmp_path_factory.mktemp("ray") / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def run_dir(tiny_model, tmp_path_factory):
    return sliding_run(tmp_path_factory.mktemp("run"), tiny_model, seed=1)


def test_ray_predict_writes_the_single_process_file_and_resumes(ray_local, run_dir,
                                                               texts_file, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(predict_mod, "CHUNK", CHUNK)
    single = tmp_path / "single.jsonl"
    predict_file(run_dir, texts_file, single, batch_size=8)
    on_ray = tmp_path / "ray.jsonl"
    out = predict_file(run_dir, texts_file, on_ray, batch_size=8,
                       engine=ray_engine(actors=2, threads=1))
    assert out["n"] == 80 and out["resumed_from"] == 0
    assert on_ray.read_bytes() == single.read_bytes()
    assert [json.loads(x)["line"] for x in on_ray.read_text().splitlines()] == \
        list(range(1, 81))

    # a driver killed (SIGKILL) after two chunks leaves a partial file that the next call
    # continues, on Ray again
    killed = tmp_path / "killed.jsonl"
    script = f"""
import os, signal
from landfall.inference import predict
from landfall.scale.ray_batch import ray_engine
predict.CHUNK = {CHUNK}
inner = ray_engine(actors=2, threads=1)
def engine(cls, kw, chunks):
    for i, rows in enumerate(inner(cls, kw, chunks)):
        yield rows
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
predict.predict_file({str(run_dir)!r}, {str(texts_file)!r}, {str(killed)!r}, batch_size=8,
                     engine=engine)
"""
    env = {**os.environ, "LANDFALL_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    partial = tmp_path / "killed.jsonl.partial"
    assert partial.read_text().count("\n") == 2 * CHUNK
    again = predict_file(run_dir, texts_file, killed, batch_size=8,
                         engine=ray_engine(actors=2, threads=1))
    assert again["resumed_from"] == 2 * CHUNK
    assert killed.read_bytes() == single.read_bytes()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_serve_answers_with_the_bodies_of_serve(ray_local, run_dir):
    """Two replicas of the same app behind Ray Serve's proxy: the same /v1/classify and
    /v1/model bodies as the app in this process, and each replica's /metrics."""
    import time

    import httpx
    from fastapi.testclient import TestClient
    from ray import serve

    from conftest import wait_ready
    from landfall.api import build_service_app
    from landfall.config import build_config
    from landfall.scale.ray_serve import deployment_options, run

    cfg = build_config({"serve": {"threads": 1, "max_wait_ms": 5}}).serve
    texts = [r["text"] for r in imdb_rows(3)] + ["short one", "x y z"]
    with TestClient(build_service_app(run_dir, cfg, [])) as local:
        wait_ready(local)
        want = local.post("/v1/classify", json={"texts": texts}).json()
        want_model = local.get("/v1/model").json()
        refused = local.post("/v1/classify", json={"texts": []})

    ray_cfg = build_config({"ray": {"replicas": 2, "replica_cpus": 0.5}}).ray
    assert deployment_options(ray_cfg)["num_replicas"] == 2
    port = _free_port()
    run(lambda: build_service_app(run_dir, cfg, []), ray_cfg, host="127.0.0.1", port=port,
        blocking=False)
    try:
        url = f"http://127.0.0.1:{port}"
        t, ready = time.time(), 0
        while ready < 8:  # both replicas loaded: several answers in a row say ready
            ready = ready + 1 if httpx.get(url + "/readyz", timeout=30).status_code == 200 \
                else 0
            assert time.time() - t < 120
            time.sleep(0.1)
        got = [httpx.post(url + "/v1/classify", json={"texts": texts}, timeout=60).json()
               for _ in range(4)]  # spread over both replicas
        assert all(g == want for g in got)
        assert httpx.get(url + "/v1/model", timeout=30).json() == want_model
        bad = httpx.post(url + "/v1/classify", json={"texts": []}, timeout=30)
        assert (bad.status_code, bad.json()) == (refused.status_code, refused.json())
        assert "landfall_requests_total" in httpx.get(url + "/metrics", timeout=30).text
    finally:
        serve.shutdown()


def test_ray_autoscaling_settings_are_config_fields():
    from landfall.config import build_config
    from landfall.errors import LandfallError
    from landfall.scale.ray_serve import deployment_options

    cfg = build_config({}, ["ray.replicas=2", "ray.max_replicas=6",
                            "ray.target_ongoing_requests=4"]).ray
    opts = deployment_options(cfg)
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"]["min_replicas"] == 2
    assert opts["autoscaling_config"]["max_replicas"] == 6
    assert opts["autoscaling_config"]["target_ongoing_requests"] == 4.0
    with pytest.raises(LandfallError, match="max_replicas"):
        deployment_options(build_config({}, ["ray.replicas=3", "ray.max_replicas=2"]).ray)


def test_ray_evaluate_gives_the_figures_of_evaluate(ray_local, run_dir, tmp_path,
                                                   monkeypatch):
    from landfall.inference.chunks import local
    from landfall.reports.evaluate import evaluate

    monkeypatch.setattr(predict_mod, "CHUNK", CHUNK)
    rows = imdb_rows(24)
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    whole = evaluate(run_dir, data, tmp_path / "whole", batch_size=8)
    chunked = evaluate(run_dir, data, tmp_path / "chunked", batch_size=8, engine=local)
    on_ray = evaluate(run_dir, data, tmp_path / "ray", batch_size=8,
                      engine=ray_engine(actors=2, threads=1))
    assert on_ray["metrics"] == chunked["metrics"]  # the same chunks: the same figures
    assert on_ray["metrics"]["n"] == 48
    assert on_ray["metrics"]["accuracy"] == whole["metrics"]["accuracy"]
    assert on_ray["metrics"]["nll"] == pytest.approx(whole["metrics"]["nll"], rel=1e-5)
