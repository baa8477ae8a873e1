"""Typed config: files, overrides, clear errors."""

from __future__ import annotations

import pytest

from landfall.config import build_config, expand_env, field_help, load_config
from landfall.errors import ConfigError


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[train]\nlr = 1e-4\nepochs = 3\n[data]\ntruncation = "sliding"\n')
    cfg = load_config(f, ["train.lr=2e-5", "train.freeze_embeddings=true"])
    assert cfg.train.lr == 2e-5 and cfg.train.epochs == 3.0
    assert cfg.train.freeze_embeddings is True and cfg.data.truncation == "sliding"


def test_yaml_uses_the_same_names(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  batch_size: 8\nmodel:\n  name: minilm\n")
    cfg = load_config(f)
    assert cfg.train.batch_size == 8 and cfg.model.name == "minilm"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=fast", "train.lr: expected float"),
        ("train.nope=1", "unknown field 'train.nope'"),
        ("bogus.x=1", "unknown section 'bogus'"),
        ("data.truncation=middle", "must be one of"),
        ("lr=1", "expected section.field=value"),
    ],
)
def test_bad_overrides_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config({}, [override])


def test_bad_file_names_the_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[train\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_every_field_has_help():
    rows = field_help()
    assert len(rows) > 20 and all(len(h) > 10 for *_, h in rows)


def test_env_expansion(monkeypatch):
    monkeypatch.setenv("LANDFALL_DATA", "/data")
    assert expand_env("${LANDFALL_DATA}/imdb", "data.train") == "/data/imdb"
    monkeypatch.delenv("LANDFALL_DATA")
    with pytest.raises(ConfigError, match="data.train: environment variable LANDFALL_DATA"):
        expand_env("${LANDFALL_DATA}/imdb", "data.train")


def test_layer_lr_decay_groups(tiny_model):
    from transformers import AutoModelForSequenceClassification

    from landfall.training.optim import param_groups

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    flat = param_groups(model, 0.01, 1e-3)
    assert {g["lr"] for g in flat} == {1e-3} and len(flat) == 2
    groups = param_groups(model, 0.01, 1e-3, layer_decay=0.5)
    by_lr = {}
    for g in groups:
        by_lr.setdefault(g["lr"], 0)
        by_lr[g["lr"]] += sum(p.numel() for p in g["params"])
    # 2 layers: head 1e-3, layer 1 5e-4, layer 0 2.5e-4, embeddings 1.25e-4
    assert sorted(by_lr) == [1.25e-4, 2.5e-4, 5e-4, 1e-3]
    emb = model.get_input_embeddings().weight
    assert any(emb is p for g in groups if g["lr"] == 1.25e-4 for p in g["params"])
    total = sum(p.numel() for p in model.parameters())
    assert sum(by_lr.values()) == total


def test_a_run_written_before_a_field_was_renamed_still_loads():
    """Runs trained before `serve.guard_labels` became `serve.harmful_classes` carry the old
    name in their landfall.toml: it is read as the new one."""
    from landfall.config import build_config

    cfg = build_config({"serve": {"guard_labels": "hate_speech"},
                        "audit": {"guard_labels": "hate_speech"}})
    assert cfg.serve.harmful_classes == "hate_speech"
    assert cfg.audit.harmful_classes == "hate_speech"
