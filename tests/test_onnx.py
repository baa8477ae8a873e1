"""ONNX Runtime backend: export, agreement with PyTorch, int8 quantisation, run-dir loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import imdb_rows, sliding_run

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model) -> Path:
    """A run directory around a random 2-label tiny BERT with sliding windows of 32 tokens."""
    return sliding_run(tmp_path_factory.mktemp("run"), tiny_model, seed=1)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [r["text"] for r in imdb_rows(6)]


def test_onnx_run_agrees_with_pytorch(tiny_run, texts, tmp_path):
    from landfall.compression.onnx_export import export_onnx
    from landfall.inference.loading import load_run
    from landfall.inference.onnx_backend import OnnxClassifier

    out = export_onnx(tiny_run, tmp_path / "onnx")
    assert (out / "model" / "model.onnx").is_file()
    assert not list((out / "model").glob("*.safetensors"))
    torch_pred = load_run(tiny_run, device="cpu").predict(texts)
    onnx_predictor = load_run(out)
    assert isinstance(onnx_predictor.model, OnnxClassifier)
    onnx_pred = onnx_predictor.predict(texts)
    assert onnx_pred.labels == torch_pred.labels == ["neg", "pos"]
    assert (onnx_pred.windows == torch_pred.windows).all() and onnx_pred.windows.max() > 1
    np.testing.assert_allclose(onnx_pred.logits, torch_pred.logits, atol=1e-4)
    info = json.loads((out / "compression.json").read_text())
    assert info["quantize"] == "none" and info["backend"] == "onnxruntime"


def test_dynamic_int8_is_smaller_and_predicts(tiny_run, texts, tmp_path):
    import landfall
    from landfall.compression.onnx_export import export_onnx

    out = export_onnx(tiny_run, tmp_path / "int8", quantize="dynamic")
    info = json.loads((out / "compression.json").read_text())
    assert info["model_bytes"] < info["source_model_bytes"] / 2.5
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    landfall.predict(out, data, tmp_path / "pred.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert len(rows) == len(texts) and {r["label"] for r in rows} <= {"neg", "pos"}


def test_static_int8_calibrates_on_texts(tiny_run, texts, tmp_path):
    from landfall.compression.onnx_export import export_onnx
    from landfall.errors import LandfallError
    from landfall.inference.loading import load_run

    with pytest.raises(LandfallError, match="calibration"):
        export_onnx(tiny_run, tmp_path / "nocal", quantize="static")
    out = export_onnx(tiny_run, tmp_path / "static", quantize="static", calibration_texts=texts)
    pred = load_run(out).predict(texts)
    assert pred.probs.shape == (len(texts), 2) and np.isfinite(pred.probs).all()
    with pytest.raises(LandfallError, match="already an ONNX run"):
        export_onnx(out, tmp_path / "again")
