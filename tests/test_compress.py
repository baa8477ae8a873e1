"""Compression: structured pruning, distillation, torch int8 and the budgeted `compress`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, imdb_small) -> Path:
    """The tiny BERT fine-tuned on 96 real reviews: a run to compress."""
    import landfall
    from landfall.config import build_config

    raw = tiny_config(tiny_model, imdb_small, train={"epochs": 2.0, "eval_every": 0,
                                                     "checkpoint_every": 1000},
                      report={"baseline": False, "plots": False})
    run = tmp_path_factory.mktemp("teacher") / "run"
    landfall.train(build_config(raw), run)
    return run


def _classifier(n_layers=2, heads=4, ffn=16):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=n_layers,
                     num_attention_heads=heads, intermediate_size=ffn, num_labels=2,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(cfg).eval()


def _inputs():
    ids = torch.randint(1, 50, (3, 7))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_cutting_silent_heads_and_neurons_leaves_outputs_unchanged():
    """Heads and neurons whose output weights are zero contribute nothing: removing them
    physically must give the same logits from a smaller model."""
    from landfall.compression.prune import apply

    model = _classifier()
    d = 16 // 4
    with torch.no_grad():
        for ly in model.bert.encoder.layer:
            ly.attention.output.dense.weight[:, 1 * d:2 * d] = 0  # head 1 silent
            ly.output.dense.weight[:, :8] = 0  # neurons 0-7 silent
    x = _inputs()
    with torch.no_grad():
        before = model(**x).logits
    n_before = sum(p.numel() for p in model.parameters())
    apply(model, [[0, 2, 3]] * 2, [list(range(8, 16))] * 2)
    with torch.no_grad():
        after = model(**x).logits
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in model.parameters()) < n_before
    assert model.bert.encoder.layer[0].attention.self.query.out_features == 3 * d


def test_importance_scores_a_silent_head_lowest():
    from landfall.compression.prune import importance, plan

    model = _classifier()
    with torch.no_grad():
        for ly in model.bert.encoder.layer:
            ly.attention.output.dense.weight[:, 8:12] = 0  # head 2 silent
            ly.output.dense.weight[:, 3] = 0  # neuron 3 silent
    batches = [(_inputs(), torch.tensor([0, 1, 0])) for _ in range(3)]
    heads, ffn = importance(model, batches)
    assert heads.shape == (2, 4) and (heads >= 0).all()
    assert (heads[:, 2] == 0).all() and (heads.sum(1) > 0).all()
    keep_h, keep_f = plan(heads, ffn, heads=0.25, ffn=0.25)
    assert all(2 not in k and len(k) == 3 for k in keep_h)
    assert all(3 not in k and len(k) == 12 for k in keep_f)


def test_pruned_run_is_smaller_loads_and_predicts(trained, tmp_path, imdb_small):
    import landfall
    from landfall.compression.measure import param_count
    from landfall.inference.loading import load_run

    out = tmp_path / "pruned"
    result = landfall.prune(trained, out, ["prune.heads=0.5", "prune.ffn=0.5",
                                           "prune.recovery_steps=3",
                                           "prune.importance_batches=2"])
    assert param_count(out / "model") < param_count(trained / "model")
    info = json.loads((out / "pruning.json").read_text())
    assert all(len(v) == 1 for v in info["heads_removed"].values())  # 1 of 2 heads per layer
    assert info["ffn_kept"] == [32, 32]
    p = load_run(out, device="cpu")
    probs = p.predict(["a fine film", "dreadful"]).probs
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1)
    assert 0 <= result["validation"]["accuracy"] <= 1
    landfall.evaluate(out, imdb_small, tmp_path / "ev")  # like any run


def test_ffn_only_pruning_is_plain_transformers(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    import landfall
    from landfall.inference.loading import load_run

    out = tmp_path / "ffn"
    landfall.prune(trained, out, ["prune.heads=0", "prune.ffn=0.5", "prune.recovery_steps=0",
                                  "prune.importance_batches=2"])
    plain = AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    assert plain.config.intermediate_size == 32
    ours = load_run(out, device="cpu")
    x = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(plain(**x).logits, ours.model(**x).logits)


def test_distillation_loss_is_zero_when_student_matches_teacher():
    from landfall.compression.distill import Distillation

    class P:  # what the objective needs of a predictor
        pad_id = 0

    model = _classifier()
    windows = [[2, 5, 7, 9], [3, 4, 8]]
    with torch.no_grad():
        from landfall.data.batching import collate

        teacher = model(**collate(windows, 0)).logits.numpy()
    obj = Distillation(windows, [0, -1], [], [], P(), teacher_logits=teacher, alpha=1.0)
    loss = obj.loss(model, [0, 1], 2, "cpu", _no_autocast)
    assert abs(loss.item()) < 1e-5
    obj.teacher_logits = np.array([[5.0, -5.0], [-5.0, 5.0]], dtype=np.float32)  # confident
    assert obj.loss(model, [0, 1], 2, "cpu", _no_autocast).item() > 1e-3


def _no_autocast():
    import contextlib

    return contextlib.nullcontext()


def test_distilled_layer_student_is_a_plain_smaller_model(trained, tmp_path, imdb_small):
    from transformers import AutoModelForSequenceClassification

    import landfall

    out = tmp_path / "student"
    result = landfall.distill(trained, out, overrides=[
        "distill.student=layers:1", "train.epochs=1", f"distill.transfer={imdb_small}",
        "distill.transfer_limit=20"])
    student = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert student.config.num_hidden_layers == 1
    assert result["train"]["transfer_texts"] == 20
    assert result["train"]["total_params"] < sum(
        p.numel() for p in AutoModelForSequenceClassification.from_pretrained(
            trained / "model").parameters())


def test_distill_refuses_a_student_as_deep_as_the_teacher(trained, tmp_path):
    import landfall
    from landfall.errors import LandfallError

    with pytest.raises(LandfallError, match="layers:2"):
        landfall.distill(trained, tmp_path / "s", overrides=["distill.student=layers:2"])


def test_choose_keeps_the_smallest_within_budget_and_breaks_ties_by_speed():
    from landfall.compression.pipeline import choose

    rows = [{"method": "big", "drop_points": 0.0, "mb_on_disk": 80, "docs_per_s_b32": 10},
            {"method": "broken", "drop_points": 5.0, "mb_on_disk": 5, "docs_per_s_b32": 90},
            {"method": "small-slow", "drop_points": 0.4, "mb_on_disk": 20, "docs_per_s_b32": 12},
            {"method": "small-fast", "drop_points": 0.1, "mb_on_disk": 20.5,
             "docs_per_s_b32": 15}, {"method": "failed", "error": "x"}]
    assert choose(rows, 0.5)["method"] == "small-fast"
    assert choose(rows, 0.05) is None or choose(rows, 0.05)["method"] == "big"
    assert choose(rows, 10)["method"] == "broken"


def test_compress_rejects_a_recipe_that_breaks_accuracy(trained, imdb_small, tmp_path,
                                                        monkeypatch):
    """A candidate that is smallest but wrong (its classifier inverted) must lose to one
    within budget; the result loads like a run and the table and plot are written."""
    import landfall
    from landfall.compression import recipes
    from landfall.inference.loading import load_run

    # labels = the original's own predictions: it scores 100 %, any real damage shows
    rows = [json.loads(x) for x in imdb_small.read_text().splitlines()]
    pred = load_run(trained, device="cpu").predict([r["text"] for r in rows])
    data = tmp_path / "eval.jsonl"
    data.write_text("".join(json.dumps({"text": r["text"], "label": pred.labels[i]}) + "\n"
                            for r, i in zip(rows, pred.label_ids, strict=True)))

    def broken(src, out, ctx):  # int8 of a copy whose decision is flipped
        import shutil

        from transformers import AutoModelForSequenceClassification

        flipped = tmp_path / "flipped"
        shutil.copytree(src, flipped)
        model = AutoModelForSequenceClassification.from_pretrained(flipped / "model")
        with torch.no_grad():
            model.classifier.weight.neg_()
            model.classifier.bias.neg_()
        model.save_pretrained(flipped / "model")
        return recipes.RECIPES["onnx-int8-dynamic"](flipped, out, ctx)

    monkeypatch.setitem(recipes.RECIPES, "broken-int8", broken)
    out = tmp_path / "compressed"
    summary = landfall.compress(trained, str(data), out, max_drop=0.5,
                                methods=["onnx-fp32", "broken-int8", "torch-int8"],
                                latency_docs=3)
    rows = {r["method"]: r for r in summary["rows"]}
    assert rows["original"]["accuracy"] == 1.0
    assert rows["broken-int8"]["drop_points"] > 50
    assert summary["chosen"] != "broken-int8"
    assert abs(rows["onnx-fp32"]["drop_points"]) < 1e-9
    assert (out / "compress" / "report.md").read_text().count("|") > 20
    assert (out / "compress" / "pareto.png").stat().st_size > 1000
    p = load_run(out, device="cpu")
    assert p.predict(["great"]).probs.shape == (1, 2)


def test_torch_int8_run_quantises_at_load(trained, tmp_path):
    from landfall.compression.recipes import Context, torch_int8
    from landfall.inference.loading import load_run

    out = torch_int8(trained, tmp_path / "q", Context())
    p = load_run(out)
    assert any("quantized" in type(m).__module__ for m in p.model.modules())
    ref = load_run(trained, device="cpu").predict(["good", "bad film"]).probs
    np.testing.assert_allclose(p.predict(["good", "bad film"]).probs, ref, atol=0.05)


def test_bf16_run_is_half_the_size_and_upcast_without_bf16_units(trained, tmp_path,
                                                                   monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from landfall.compression.recipes import Context, torch_bf16
    from landfall.inference import precision
    from landfall.inference.loading import load_run

    out = torch_bf16(trained, tmp_path / "h", Context())
    size = (out / "model" / "model.safetensors").stat().st_size
    assert size < 0.55 * (trained / "model" / "model.safetensors").stat().st_size
    plain = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert plain.dtype == torch.bfloat16  # plain transformers reads it as bf16
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    p = load_run(out, device="cpu")
    assert next(p.model.parameters()).dtype == torch.float32  # upcast once, at load
    note = json.loads((out / "compression.json").read_text())["note"]
    assert note.startswith("bf16 weights")
    ref = load_run(trained, device="cpu").predict(["good", "bad film"]).probs
    np.testing.assert_allclose(p.predict(["good", "bad film"]).probs, ref, atol=0.02)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # a CPU with AMX / bf16
    p = load_run(out, device="cpu")
    assert next(p.model.parameters()).dtype == torch.bfloat16
    probs = p.predict(["good", "bad film"]).probs  # runs in bf16, answers in float
    np.testing.assert_allclose(probs, ref, atol=0.05)


def test_keep_float_leaves_named_parts_unquantised(trained, tmp_path):
    from landfall.compression.onnx_export import export_onnx, node_groups

    out = export_onnx(trained, tmp_path / "mixed", quantize="dynamic",
                      keep_float=["embeddings", "layer.0"])
    info = json.loads((out / "compression.json").read_text())
    assert info["kept_in_float"] == ["embeddings", "layer.0"]
    full = export_onnx(trained, tmp_path / "full", quantize="dynamic")
    mixed_float = node_groups(out / "model" / "model.onnx")  # float ops left, by part
    full_float = node_groups(full / "model" / "model.onnx")
    assert len(mixed_float["layer.0"]) > len(full_float.get("layer.0", []))
    assert len(mixed_float.get("layer.1", [])) == len(full_float.get("layer.1", []))
    from landfall.errors import LandfallError

    with pytest.raises(LandfallError, match="no such part"):
        export_onnx(trained, tmp_path / "bad", quantize="dynamic", keep_float=["layer.9"])
