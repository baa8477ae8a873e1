"""The naive baseline the serving bench compares against: a transformers text-classification
pipeline behind FastAPI, one pipeline call per request (what most tutorials show).

    python bench/naive_server.py RUN_DIR --port 8001

Configured as the pipeline's docs advise for this job: the same model directory, truncation
at the run's max_length, the handler a plain ``def`` so FastAPI runs it in its thread pool
(the event loop stays free), torch threads left at their default.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

from landfall.inference.loading import model_dir, run_config


class Body(BaseModel):
    texts: list[str]


def make_app(run_dir: str) -> FastAPI:
    cfg = run_config(run_dir)
    clf = pipeline("text-classification", model=str(model_dir(run_dir)), device="cpu",
                   truncation=True, max_length=cfg.data.max_length, top_k=None)
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/v1/classify")
    def classify(body: Body):
        out = clf(body.texts)
        return {"results": [{"label": max(o, key=lambda x: x["score"])["label"],
                             "probs": {x["label"]: x["score"] for x in o}} for o in out]}

    return app


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--port", type=int, default=8001)
    a = p.parse_args()
    uvicorn.run(make_app(a.run_dir), host="127.0.0.1", port=a.port, log_level="warning")
