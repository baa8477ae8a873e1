"""Data-parallel training (``landfall train --processes``, torchrun): 2 gloo processes train
to the weights 1 process reaches with the same global batch; a killed rank ends the run with
one message and the run resumes exactly; two torchrun agents meeting through a c10d
rendezvous on 127.0.0.1 finish the same run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import landfall
from conftest import tiny_config
from landfall import runs
from landfall.errors import LandfallError

# dropout off and fp32 (bf16 autocast would round the gradients differently when the batch
# is cut in two): the two runs then differ only by float summation order
EXACT = ["model.dropout=0", "model.attention_dropout=0", "train.precision=fp32"]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def setup(tiny_model, imdb_small, tmp_path_factory):
    """A config (72 training reviews, global batch 8 x 2 accumulation = 5 steps, validation
    every 2 steps, checkpoints every 2) and its 2-process run."""
    import tomli_w

    root = tmp_path_factory.mktemp("scale")
    raw = tiny_config(tiny_model, imdb_small, report={"baseline": False, "plots": False},
                      train={"epochs": 1.0, "grad_accum": 2, "checkpoint_every": 2,
                             "eval_every": 2})
    raw["data"].update(max_length=32, head_tokens=16)
    cfg = root / "c.toml"
    cfg.write_text(tomli_w.dumps(raw))
    two = root / "two"
    out = landfall.train(cfg, two, overrides=EXACT, processes=2)
    return cfg, two, out


def test_two_processes_train_to_the_weights_of_one(setup, tmp_path):
    cfg, two, out = setup
    one = tmp_path / "one"
    landfall.train(cfg, one, overrides=EXACT)
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=k)
    assert out["train"]["processes"] == 2 and out["train"]["steps"] == 5
    # validation was sharded and gathered: the same 24 documents, the same figures
    ev1 = runs.read_jsonl(one / "metrics.jsonl")
    ev2 = runs.read_jsonl(two / "metrics.jsonl")
    assert [r["step"] for r in ev1] == [r["step"] for r in ev2]
    for r1, r2 in zip(ev1, ev2, strict=True):
        for key in ("eval_loss", "loss"):
            if key in r1:
                assert r1[key] == pytest.approx(r2[key], rel=1e-5)
    assert out["validation"]["n"] == 24
    assert not (two / "checkpoints").exists()  # a finished run drops them, as with one


def test_a_killed_rank_ends_the_run_with_one_message_and_it_resumes_exactly(setup, tmp_path,
                                                                          monkeypatch):
    cfg, two, _ = setup
    broken = tmp_path / "broken"
    monkeypatch.setenv("LANDFALL_KILL_AT_STEP", "3")
    monkeypatch.setenv("LANDFALL_KILL_RANK", "1")
    with pytest.raises(LandfallError, match=r"rank 1 ended first \(killed by SIGKILL\)") as e:
        landfall.train(cfg, broken, overrides=EXACT, processes=2)
    assert "ranks 0 were stopped" in str(e.value) and "--resume" in str(e.value)
    ckpt = broken / "checkpoints" / "step-0000002"
    assert ckpt.is_dir()
    rng = load_file(str(ckpt / "rng.safetensors"))
    assert {"torch.rank0", "torch.rank1"} <= rng.keys()
    monkeypatch.delenv("LANDFALL_KILL_AT_STEP")
    landfall.train(None, broken, resume=True, processes=2)
    a, b = _weights(two), _weights(broken)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_agents_meet_through_c10d_and_finish_the_run(setup, tmp_path):
    """Two "machines": two torchrun agents, one process each, nnodes=2."""
    cfg, two, _ = setup
    out = tmp_path / "nodes"
    port = _free_port()
    env = {**os.environ, "LANDFALL_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    env.pop("LANDFALL_KILL_AT_STEP", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
           "--nproc-per-node", "1", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "landfall-test",
           "-m", "landfall", "train", "--config", str(cfg), "--output", str(out),
           *[x for o in EXACT for x in ("--set", o)]]
    agents = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    results = [a.communicate(timeout=300) for a in agents]
    for a, (_, err) in zip(agents, results, strict=True):
        assert a.returncode == 0, err[-3000:]
    # the run rank 0 reported, once; its weights are the 2-process run's
    printed = "".join(o for o, _ in results)
    assert printed.count("validation accuracy") == 1
    a, b = _weights(two), _weights(out)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_lora_causal_lm_trains_on_two_processes(tiny_lm, bitext_small, tmp_path):
    """The causal-LM task with LoRA adapters through DDP (a Config object from Python: the
    launcher hands it to the workers as TOML); rank 0 writes the adapter and the report."""
    pytest.importorskip("peft")
    from conftest import tiny_lm_config
    from landfall.config import build_config

    raw = tiny_lm_config(tiny_lm, bitext_small, peft={"method": "lora", "r": 4, "alpha": 8,
                                                      "target_modules": "q_proj,v_proj"},
                         train={"max_steps": 3, "checkpoint_every": 2, "eval_every": 3},
                         report={"baseline": False, "plots": False, "generation_limit": 2})
    run = tmp_path / "lora2"
    out = landfall.train(build_config(raw), run, processes=2)
    assert out["train"]["processes"] == 2 and out["train"]["steps"] == 3
    assert (run / "model" / "adapter_config.json").exists()
    assert "rougeL" in out["validation"]
    weights = load_file(str(run / "model" / "adapter_model.safetensors"))
    assert weights and all(torch.isfinite(w).all() for w in weights.values())


def test_an_fsdp_or_deepspeed_launch_is_refused_before_anything_is_built(monkeypatch):
    from landfall.errors import LandfallError
    from landfall.training.lifecycle import make_accelerator

    for var in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.setenv(var, "true")
        with pytest.raises(LandfallError, match="not supported.*--processes"):
            make_accelerator("fp32")
        monkeypatch.delenv(var)
