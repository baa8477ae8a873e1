"""Task plugins: the registry, and a fourth task defined here that trains through the one
entry point without an edit anywhere else."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

import landfall
from conftest import tiny_config
from landfall.config import build_config, help_field, register_section
from landfall.errors import ConfigError
from landfall.tasks import Task, get_task, register, task_names


def test_builtin_tasks_are_found_by_name():
    assert {"classification", "mlm", "causal_lm"} <= set(task_names())
    assert get_task("causal_lm").supports("generate")
    assert not get_task("classification").supports("generate")
    with pytest.raises(ConfigError, match="unknown task 'nope'.*causal_lm"):
        get_task("nope")


@dataclass
class _LengthObjective:
    """Predict a text's length in tokens (scaled) from its mean embedding."""

    train: list[list[int]]
    val: list[list[int]]
    model: torch.nn.Module

    @property
    def lengths(self):
        return [len(t) for t in self.train]

    def _loss(self, model, seqs):
        x = torch.stack([model.emb(torch.tensor(s)).mean(0) for s in seqs])
        y = torch.tensor([len(s) / 100 for s in seqs])
        return ((model.head(x).squeeze(-1) - y) ** 2).sum()

    def loss(self, model, idx, n, device, autocast):
        return self._loss(model, [self.train[i] for i in idx]) / n

    @torch.no_grad()
    def evaluate(self):
        mse = self._loss(self.model, self.val).item() / len(self.val)
        return {"eval_mse": mse}, -mse


class _Regressor(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 8)
        self.head = torch.nn.Linear(8, 1)

    def save_pretrained(self, path):  # what the run directory's saver asks of a model
        from safetensors.torch import save_model

        save_model(self, str(path / "model.safetensors"))


@dataclass
class ToyLengthConfig:
    """The toy task's own config section, declared in its folder like any task's."""

    chars: int = help_field(300, "Characters of each text the toy task reads.", ge=1)


register_section("toy_length", ToyLengthConfig, task="toy_length")


class ToyLengthTask(Task):
    name = "toy_length"
    head = "objective"

    def prepare(self, cfg, tokenizer):
        from landfall.data.readers import read_texts

        docs = [tokenizer(e.text[:cfg.toy_length.chars])["input_ids"]
                for e in read_texts(cfg.data.train)]
        return docs[:64], docs[64:]

    def build_model(self, cfg, data, tokenizer):
        return _Regressor(len(tokenizer))

    def objective(self, cfg, data, model, tokenizer, ctx):
        return _LengthObjective(data[0], data[1], model)

    def summarize(self, cfg, data, records):
        evals = [r["eval_mse"] for r in records if "eval_mse" in r]
        return {"validation": {"mse": min(evals)}}


def test_a_fourth_task_registered_here_trains_through_the_one_entry_point(
        tiny_model, imdb_small, tmp_path):
    register(ToyLengthTask())
    raw = tiny_config(tiny_model, imdb_small, train={"lr": 1e-2, "max_steps": 6})
    raw["task"] = {"name": "toy_length"}
    raw["toy_length"] = {"chars": 120}
    with pytest.raises(ConfigError, match=r"toy_length.chars: must be >= 1"):
        build_config(raw, ["toy_length.chars=0"])
    out = landfall.train(build_config(raw), tmp_path / "toy")
    assert out["validation"]["mse"] > 0
    assert json.loads((tmp_path / "toy" / "eval.json").read_text())["train"]["steps"] == 6
    saved = (tmp_path / "toy" / "landfall.toml").read_text()
    assert 'name = "toy_length"' in saved and "chars = 120" in saved  # its section is kept
    # a run of another task keeps only its own task's sections (and any set by hand), so it
    # never needs a plugin it does not use to be read again
    other = build_config({"task": {"name": "classification"}}).to_dict()
    assert "oos" in other and "toy_length" not in other and "chat" not in other
    assert "chat" in build_config({"chat": {"system_prompt": "Hi"}}).to_dict()
    assert (tmp_path / "toy" / "model" / "model.safetensors").exists()


class _NaNGradient(_LengthObjective):
    """A finite loss (0) whose gradient is NaN: sqrt at 0 times 0."""

    def loss(self, model, idx, n, device, autocast):
        return (model.head.weight.sum() * 0).sqrt()


class NaNTask(ToyLengthTask):
    name = "toy_nan"

    def objective(self, cfg, data, model, tokenizer, ctx):
        return _NaNGradient(data[0], data[1], model)


def test_non_finite_gradients_stop_training_before_the_weights_change(
        tiny_model, imdb_small, tmp_path):
    from landfall.errors import LandfallError

    register(NaNTask())
    raw = tiny_config(tiny_model, imdb_small, train={"max_steps": 3})
    raw["task"] = {"name": "toy_nan"}
    with pytest.raises(LandfallError, match="non-finite gradients at step 1"):
        landfall.train(build_config(raw), tmp_path / "nan")
    assert not (tmp_path / "nan" / "model").exists()
