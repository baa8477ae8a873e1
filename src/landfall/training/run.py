"""One training entry point for every task: ``landfall.train(cfg, output)``.

The task (``cfg.task.name``, a plugin under ``landfall.tasks``) prepares the data, builds the
model and the objective; this module opens the run directory, wraps adapters, places the
model, runs the loop, keeps the best model and hands it to the final evaluation that the
task's head calls for. Pruning and distillation (``compression``) call ``run_training`` with
a model and objective of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from landfall import runs
from landfall.config import Config
from landfall.tasks import Task, TrainContext, get_task
from landfall.training.adapters import parameter_counts, wrap
from landfall.training.distributed import World, is_main, sharded_predictor
from landfall.training.lifecycle import (
    best_saver,
    finish_run,
    fit_summary,
    make_accelerator,
    start_run,
    write_config,
)
from landfall.training.loop import fit, seed_everything


def _make_predictor(device, bf16: bool, world: World):
    def make(model, tokenizer, labels, spec, *, batch_size: int):
        from landfall.inference.predictor import Predictor

        cls = sharded_predictor(Predictor, world)  # validation split across the ranks
        return cls(model, tokenizer, labels, spec, batch_size=batch_size, device=device,
                   bf16=bf16)

    return make


def train(cfg: Config | None, output: str | Path, *, resume: bool = False) -> dict:
    """Train the run ``cfg`` describes (any task); return its final evaluation (eval.json)."""
    cfg, run_dir = start_run(cfg, output, resume)
    task = get_task(cfg.task.name)
    task.validate(cfg)
    t_start = time.perf_counter()
    tokenizer = task.load_tokenizer(cfg)
    data = task.prepare(cfg, tokenizer)
    if is_main():  # of a distributed run, rank 0 alone writes the run directory
        write_config(run_dir, cfg)
    seed_everything(cfg.train.seed)
    model = task.build_model(cfg, data, tokenizer)
    model = wrap(model, cfg.peft, task.peft_task_type)
    if cfg.train.freeze_embeddings and cfg.peft.method == "none":
        model.get_input_embeddings().weight.requires_grad_(False)
    return run_training(cfg, run_dir, task, model, tokenizer, data,
                        lambda ctx: task.objective(cfg, data, model, tokenizer, ctx),
                        resume=resume, t_start=t_start)


def run_training(cfg: Config, run_dir: Path, task: Task, model, tokenizer, data: Any,
                 make_objective: Callable[[TrainContext], Any], *, extra: dict | None = None,
                 resume: bool = False, train: bool = True,
                 t_start: float | None = None) -> dict:
    """Place ``model``, fit it with the objective ``make_objective(ctx)`` builds, keep the best,
    then evaluate and report as the task's head says. ``train=False`` saves ``model`` as it
    is and only evaluates it.

    Run by every process of a distributed run (``landfall.scale.launch``): all of them train,
    rank 0 alone writes; the others return ``{}`` after training."""
    t_start = time.perf_counter() if t_start is None else t_start
    accelerator = make_accelerator(cfg.train.precision)
    model.to(accelerator.device)
    world = World.of(accelerator)
    ctx = TrainContext(accelerator.device, accelerator.mixed_precision == "bf16",
                       _make_predictor(accelerator.device,
                                       accelerator.mixed_precision == "bf16", world))
    save_best = best_saver(run_dir, model, tokenizer, accelerator)
    summary = {"peft": cfg.peft.method, **parameter_counts(model), **(extra or {}),
               **({"processes": world.size} if world.size > 1 else {})}
    objective = make_objective(ctx)
    if train:
        result = fit(model=model, objective=objective, cfg=cfg.train, run_dir=run_dir,
                     save_best=save_best, accelerator=accelerator, resume=resume)
        summary.update(fit_summary(result, t_start))
    elif world.main:
        save_best()
    summary.update(ctx.extras)
    if not world.main:
        return {}
    if accelerator.device.type == "cuda":  # the final evaluation reloads the best model
        model.to("cpu")
        torch.cuda.empty_cache()
    out = _FINAL[task.head](run_dir, cfg, task, data, summary)
    finish_run(run_dir)
    return out


def _classify_final(run_dir: Path, cfg: Config, task: Task, data, summary: dict) -> dict:
    from landfall.reports.evaluate import evaluate_and_report

    return evaluate_and_report(run_dir, cfg, data, summary)


def _generate_final(run_dir: Path, cfg: Config, task: Task, data, summary: dict) -> dict:
    from landfall.reports.generation import evaluate_generation_run

    records = runs.read_jsonl(run_dir / runs.METRICS)
    return evaluate_generation_run(run_dir, cfg, data,
                                   {**summary, **task.summarize(cfg, data, records)})


def _objective_final(run_dir: Path, cfg: Config, task: Task, data, summary: dict) -> dict:
    """A task without an inference head: its own figures from the logged evaluations."""
    records = runs.read_jsonl(run_dir / runs.METRICS)
    figures = task.summarize(cfg, data, records)
    out = {**{k: v for k, v in figures.items() if k != "train_extra"},
           "train": {**summary, **figures.get("train_extra", {})}}
    runs.write_json(run_dir / runs.EVAL, out)
    plots = {}
    if cfg.report.plots and records:
        from landfall.reports.plots import plot_training_curves

        plot_training_curves(records, run_dir / runs.PLOTS / "training_curves.png")
        plots["Training curves"] = f"{runs.PLOTS}/training_curves.png"
    task.write_report(run_dir, out, plots)
    return out


# how the final evaluation runs, by the kind of head a task declares (not by task name)
_FINAL = {"classify": _classify_final, "generate": _generate_final,
          "objective": _objective_final}
