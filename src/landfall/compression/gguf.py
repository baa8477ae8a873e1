"""A causal-LM run as a GGUF run directory, by llama.cpp's own converter and quantiser.

``convert_hf_to_gguf.py`` (with its ``conversion/`` and ``gguf-py/``) is not installed by any
package: it lives in llama.cpp's source tree, which the sdist of llama-cpp-python vendors. It
is taken from there: ``$LANDFALL_LLAMA_CPP`` (a llama.cpp checkout) if set, else the sdist of
the installed llama-cpp-python version, downloaded once with pip and kept (converter files
only) in Landfall's cache. The converter writes F16 (or F32); the quantised types go through
``llama_model_quantize`` of the installed llama.cpp library. Nothing here re-implements
either: the tensor layouts (Llama's rotary permutation, the tokenizer's pre-tokenizer id) are
exactly llama.cpp's.

The run directory is written whole in a temporary folder and renamed into place at the end, so
a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import ast
import ctypes
import json
import os
import shutil
import subprocess  # runs pip and llama.cpp's converter, fixed arguments  # nosec B404
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from landfall import runs
from landfall.errors import LandfallError
from landfall.hub import cache_dir
from landfall.inference.llama_backend import GGUF_FILE, INSTALL_HINT, check_gguf_dir
from landfall.utils.progress import log

# the GGUF types offered, and how each is made: the converter's --outtype, or a quantiser type
QUANTS = {"F16": ("f16", None), "Q8_0": ("f32", "LLAMA_FTYPE_MOSTLY_Q8_0"),
          "Q4_K_M": ("f32", "LLAMA_FTYPE_MOSTLY_Q4_K_M")}
# the tokenizer files that stay beside the GGUF (the prompts are formatted and tokenised by
# them, exactly as for the torch run)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt",
                   "added_tokens.json", "generation_config.json", "config.json")
CONVERT_TIMEOUT_S = 3600


def llama_cpp_source() -> Path:
    """The llama.cpp source folder holding ``convert_hf_to_gguf.py``."""
    env = os.environ.get("LANDFALL_LLAMA_CPP")
    if env:
        root = Path(env)
        if not (root / "convert_hf_to_gguf.py").is_file():
            raise LandfallError(f"LANDFALL_LLAMA_CPP={env}: no convert_hf_to_gguf.py there")
        return root
    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        raise LandfallError(f"GGUF conversion needs llama-cpp-python: {INSTALL_HINT}") from None
    name = f"llama_cpp_python-{version}"
    base = cache_dir() / "llama.cpp"
    root = base / name / "vendor" / "llama.cpp"
    if (root / "convert_hf_to_gguf.py").is_file():
        return root
    sdist = base / "sdist" / f"{name}.tar.gz"
    if not sdist.exists():
        log(f"downloading the llama-cpp-python {version} sdist (for llama.cpp's converter)")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",  # nosec B603
                            "--no-binary", ":all:", f"llama-cpp-python=={version}", "-d",
                            str(sdist.parent)], capture_output=True, text=True, timeout=900)
        if r.returncode != 0 or not sdist.exists():
            raise LandfallError("could not fetch llama.cpp's converter (the llama-cpp-python "
                                f"{version} sdist): {r.stderr.strip()[-400:]}; or set "
                                "LANDFALL_LLAMA_CPP to a llama.cpp checkout")
    keep = tuple(f"{name}/vendor/llama.cpp/{p}" for p in
                 ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "models/"))
    with runs.atomic_path(base / name) as tmp:
        tmp.mkdir()
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(keep)]
            for m in members:
                m.name = m.name[len(name) + 1:]
            tar.extractall(tmp, members=members, filter="data")
    if not (root / "convert_hf_to_gguf.py").is_file():
        raise LandfallError(f"{sdist.name} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
    return root


def supported_architectures(source: Path) -> set[str]:
    """The transformers architectures llama.cpp's converter knows (its ``TEXT_MODEL_MAP``),
    read from the source without importing it."""
    tree = ast.parse((source / "conversion" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "TEXT_MODEL_MAP":
            return set(ast.literal_eval(node.value))
    raise LandfallError(f"{source}: llama.cpp's conversion/__init__.py has no TEXT_MODEL_MAP "
                        "(a converter version Landfall does not know)")


def check_architecture(model: Path, source: Path) -> str:
    cfg = json.loads((model / "config.json").read_text(encoding="utf-8"))
    archs = cfg.get("architectures") or []
    known = supported_architectures(source)
    if not archs or archs[0] not in known:
        raise LandfallError(f"{model}: architecture {archs[0] if archs else '(none)'} is not "
                            "one llama.cpp's converter supports (e.g. LlamaForCausalLM, "
                            "Qwen2ForCausalLM, GPT2LMHeadModel); keep a torch variant instead")
    return archs[0]


def quantize(src: Path, dst: Path, ftype_name: str, threads: int = 0) -> None:
    """``src`` (an F32/F16 GGUF) quantised to ``ftype_name`` by llama.cpp's
    ``llama_model_quantize``."""
    from landfall.inference.llama_backend import require_llama_cpp

    llama_cpp = require_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype_name)
    params.nthread = threads or os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(),
                                        ctypes.byref(params))
    if rc != 0 or not dst.exists():
        raise LandfallError(f"llama_model_quantize({src.name} -> {ftype_name}) returned {rc}")


def convert(model: Path, out_file: Path, outtype: str, source: Path | None = None) -> Path:
    """llama.cpp's convert_hf_to_gguf.py on the transformers directory ``model``."""
    source = source or llama_cpp_source()
    check_architecture(model, source)
    r = subprocess.run([sys.executable, "convert_hf_to_gguf.py", str(model.resolve()),  # nosec B603
                        "--outfile", str(out_file.resolve()), "--outtype", outtype],
                       cwd=source, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
    if r.returncode != 0 or not out_file.exists():
        lines = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {r.returncode}"
        raise LandfallError(f"{model}: llama.cpp's converter failed: {why}")
    return out_file


def _merged_model(src: Path, work: Path) -> Path:
    """The run's transformers directory with any adapter merged in (the converter needs plain
    weights)."""
    from landfall.inference.adapters import is_adapter_dir
    from landfall.inference.loading import model_dir
    from landfall.inference.torch_int8 import is_torch_int8

    path = model_dir(src)
    if (path / GGUF_FILE).exists():
        raise LandfallError(f"{src}: already a GGUF run; convert the run it was made from")
    if is_torch_int8(path):
        raise LandfallError(f"{src}: a torch-int8 variant; convert the run it was made from")
    if is_adapter_dir(path):
        from landfall.compression.merge import export_merged

        export_merged(src, work / "merged")
        return model_dir(work / "merged")
    return path


def export_gguf(src: str | Path, out: str | Path, quant: str = "F16", *,
                f32_cache: Path | None = None) -> Path:
    """Write ``out``: the causal-LM run ``src`` as a GGUF run directory of type ``quant``
    (F16, Q8_0, Q4_K_M). ``f32_cache``: an F32 GGUF of the same run to quantise from (it is
    made there when missing), so several types convert once."""
    from landfall.inference.loading import run_config
    from landfall.tasks import get_task

    src, out = Path(src), Path(out)
    if quant not in QUANTS:
        raise LandfallError(f"GGUF type {quant!r}: choose from {', '.join(QUANTS)}")
    get_task(run_config(src).task.name).require("generate", str(src))
    outtype, ftype = QUANTS[quant]
    if ftype is not None:
        from landfall.inference.llama_backend import require_llama_cpp

        require_llama_cpp()  # before minutes of conversion
    source = llama_cpp_source()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=out.parent) as work_dir:
        work = Path(work_dir)
        model = _merged_model(src, work)
        check_architecture(model, source)

        def write(tmp: Path) -> None:
            dest = tmp / runs.MODEL
            dest.mkdir()
            if ftype is None:
                log(f"converting {src} to GGUF {quant}")
                convert(model, dest / GGUF_FILE, outtype, source)
            else:
                f32 = f32_cache or work / "model.f32.gguf"
                if not f32.exists():
                    log(f"converting {src} to GGUF F32 (to quantise)")
                    part = f32.with_name(f32.name + ".part")
                    convert(model, part, "f32", source)
                    part.replace(f32)
                log(f"quantising to {quant}")
                quantize(f32, dest / GGUF_FILE, ftype)
            for name in TOKENIZER_FILES:
                if (model / name).is_file():
                    shutil.copyfile(model / name, dest / name)
            check_gguf_dir(dest)  # a GGUF without tokenizer or chat template: refused here
            runs.copy_run_files(src, tmp)
            runs.write_json(tmp / "compression.json", {
                "source": str(src), "backend": "llama.cpp", "format": "gguf", "type": quant,
                "note": f"GGUF {quant} (llama.cpp's converter"
                        + (", then llama_model_quantize)" if ftype else ")")})

        runs.save_dir(out, write)
    return out
