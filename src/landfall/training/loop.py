"""The training loop: accelerate for device placement and mixed precision, our own sampler.

What is optimised and how it is scored comes from an ``Objective`` (a task plugin's:
``landfall.tasks``).

We do not hand the data to accelerate's DataLoader: the batch order must be a pure function
of (seed, epoch) so that a resumed run can skip what it has seen without reading it.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landfall import runs
from landfall.config import TrainConfig
from landfall.data.batching import training_batches
from landfall.errors import LandfallError
from landfall.tasks.base import Objective
from landfall.training.checkpoint import (
    Progress,
    checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from landfall.training.distributed import World, rng_state
from landfall.training.optim import make_optimizer, make_scheduler
from landfall.utils.progress import log, progress_bar


@dataclass
class FitResult:
    progress: Progress
    total_steps: int
    samples_per_s: float


def plan_steps(n_items: int, cfg: TrainConfig) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps)."""
    batches = math.ceil(n_items / cfg.batch_size)
    per_epoch = math.ceil(batches / cfg.grad_accum)
    total = math.ceil(cfg.epochs * per_epoch)
    if cfg.max_steps:
        total = min(total, cfg.max_steps) if total else cfg.max_steps
    return per_epoch, max(total, 1)


def _eval_every(cfg: TrainConfig, per_epoch: int) -> int:
    return cfg.eval_every or max(1, math.ceil(per_epoch / 2))


def _fault_injection(step: int, rank: int = 0) -> None:
    """Tests set LANDFALL_KILL_AT_STEP to SIGKILL this process after that step (only the
    rank LANDFALL_KILL_RANK when it is set)."""
    at = os.environ.get("LANDFALL_KILL_AT_STEP")
    only = os.environ.get("LANDFALL_KILL_RANK")
    if at and step == int(at) and (only is None or int(only) == rank):
        os.kill(os.getpid(), signal.SIGKILL)


def fit(
    *,
    model: torch.nn.Module,
    objective: Objective,
    cfg: TrainConfig,
    run_dir: Path,
    save_best: Callable[[], None],
    accelerator: Any,
    resume: bool = False,
) -> FitResult:
    """Train ``model`` in place; write metrics, checkpoints and the best model to ``run_dir``.

    As one of N data-parallel processes (``training.distributed``), each optimizer step's
    micro-batches are the same global ones as with one process, each cut into N shards;
    DDP averages the gradients, every rank takes the same step, and only rank 0 writes.
    """
    lengths = objective.lengths
    world = World.of(accelerator)
    if cfg.batch_size % world.size:
        raise LandfallError(
            f"train.batch_size={cfg.batch_size} is the global micro-batch, cut into one "
            f"share per process: with {world.size} processes it must be a multiple of "
            f"{world.size}")
    optimizer = make_optimizer(model, cfg)
    per_epoch, total = plan_steps(len(lengths), cfg)
    scheduler = make_scheduler(optimizer, cfg, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    metrics_path = run_dir / runs.METRICS

    progress = Progress()
    ckpt = _restore(run_dir, accelerator.unwrap_model(model), optimizer, scheduler,
                    world.rank) if resume else None
    if ckpt is not None:
        progress = ckpt
        if world.main:  # metrics logged after the checkpoint will be logged again
            kept = [r for r in runs.read_jsonl(metrics_path)
                    if r.get("step", 0) <= progress.step]
            runs.write_text(metrics_path, "".join(runs.json_line(r) for r in kept))
    elif world.main:
        runs.write_text(metrics_path, "")  # a run killed before its first checkpoint
    every = _eval_every(cfg, per_epoch)
    model.train()
    # the running loss between two log lines is part of the checkpointed state
    window = progress.extra.setdefault("window", {"loss": 0.0, "samples": 0})
    window_t = time.perf_counter()

    bar = progress_bar(total=total, desc="training", initial=progress.step, unit="step",
                       disable=not world.main)
    # train_seconds: wall time of the loop less evaluation (checkpoints and logging included)
    t_mark = time.perf_counter()
    while progress.step < total and not progress.stopped_early:
        batches = training_batches(lengths, cfg.batch_size, cfg.seed, progress.epoch)
        while progress.batch_in_epoch < len(batches) and progress.step < total:
            t0 = time.perf_counter()
            micro = batches[progress.batch_in_epoch : progress.batch_in_epoch + cfg.grad_accum]
            n = sum(len(b) for b in micro)
            step_loss = _accumulate(model, micro, objective, accelerator, world)
            if not math.isfinite(step_loss):
                raise LandfallError(
                    f"training diverged at step {progress.step + 1} (loss {step_loss}); "
                    f"try a lower train.lr (now {cfg.lr})"
                )
            # the norm is computed anyway (clipping at inf is a no-op): a finite loss can still
            # back-propagate inf/NaN gradients, which must never reach the weights
            norm = accelerator.clip_grad_norm_(model.parameters(),
                                               cfg.max_grad_norm or float("inf"))
            if not math.isfinite(float(norm)):
                raise LandfallError(
                    f"non-finite gradients at step {progress.step + 1} (loss {step_loss:.4g}); "
                    f"the weights were not updated and the last checkpoint is intact; try a "
                    f"lower train.lr (now {cfg.lr}) or train.max_grad_norm > 0"
                )
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            progress.batch_in_epoch += len(micro)
            progress.samples += n
            eval_dt = 0.0
            window["loss"] += step_loss * n
            window["samples"] += n
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", sps=f"{n / (time.perf_counter() - t0):.1f}",
                            refresh=False)

            if world.main and (progress.step % 10 == 0 or progress.step == total):
                elapsed = time.perf_counter() - window_t
                runs.append_jsonl(metrics_path, {
                    "step": progress.step, "epoch": progress.epoch
                    + progress.batch_in_epoch / len(batches),
                    "loss": window["loss"] / max(window["samples"], 1),
                    "lr": scheduler.get_last_lr()[0],
                    "samples_per_s": window["samples"] / max(elapsed, 1e-9),
                })
                window.update(loss=0.0, samples=0)
                window_t = time.perf_counter()
            if progress.step % every == 0 or progress.step == total:
                t_eval = time.perf_counter()
                _evaluate(objective, progress, metrics_path, save_best, world.main)
                window_t = time.perf_counter()
                eval_dt = window_t - t_eval
                progress.eval_seconds += eval_dt
                if cfg.patience and progress.evals_without_gain >= cfg.patience:
                    progress.stopped_early = True
            now = time.perf_counter()
            progress.train_seconds += now - t_mark - eval_dt
            t_mark = now
            if progress.stopped_early:
                break
            if progress.step % cfg.checkpoint_every == 0 and progress.step < total:
                rngs = world.gather(rng_state()) if world.size > 1 else None
                if world.main:
                    save_checkpoint(run_dir, accelerator.unwrap_model(model), optimizer,
                                    scheduler, progress, rank_rng=rngs)
            _fault_injection(progress.step, world.rank)
        if progress.batch_in_epoch >= len(batches):
            progress.epoch += 1
            progress.batch_in_epoch = 0
    bar.close()
    sps = progress.samples / max(progress.train_seconds, 1e-9)
    return FitResult(progress, total, sps)


def _restore(run_dir: Path, model, optimizer, scheduler, rank: int = 0) -> Progress | None:
    """The newest checkpoint that loads; a damaged one is skipped with a warning."""
    found = checkpoints(run_dir)
    errors = []
    for path in found:
        try:
            progress = load_checkpoint(path, model, optimizer, scheduler, rank=rank)
        except LandfallError as exc:
            errors.append(str(exc))
            log(f"warning: {exc}; falling back to an earlier checkpoint")
            continue
        if errors:
            log(f"resuming from {path.name} (step {progress.step})")
        return progress
    if errors:
        raise LandfallError("no checkpoint could be restored: " + "; ".join(errors))
    return None


def _accumulate(model, micro: list[list[int]], objective: Objective, accelerator,
                world: World = World()) -> float:
    """Forward and backward over one optimizer step's micro-batches; returns the step's loss.

    Each loss is summed over its items and divided by the step's total, so every item weighs
    the same whatever the micro-batch sizes. With N processes each rank takes its shard of
    every micro-batch; its loss is multiplied by N because DDP averages the N gradients (the
    mean of N x shard sums / n is the global sum / n); gradients are all-reduced once per
    step (``no_sync`` on the other micro-batches). A rank whose shard of an uneven last batch
    is empty runs one item at weight 0, so that every rank takes part in every all-reduce.
    """
    n = sum(len(b) for b in micro)
    total = 0.0
    for i, idx in enumerate(micro):
        if world.size == 1:
            loss = objective.loss(model, idx, n, accelerator.device, accelerator.autocast)
            accelerator.backward(loss)
            total += loss.item()
            continue
        mine, weight = world.shard(idx), float(world.size)
        if not mine:
            mine, weight = idx[:1], 0.0
        last = i == len(micro) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            loss = objective.loss(model, mine, n, accelerator.device, accelerator.autocast)
            accelerator.backward(loss * weight)
        total += loss.item() * (weight / world.size)
    return world.sum(total)


def _evaluate(
    objective: Objective, progress: Progress, metrics_path: Path, save_best: Callable[[], None],
    write: bool = True,
) -> None:
    """Score, keep the best model, count evaluations without improvement, log (the files only
    when ``write``: rank 0 of a distributed run)."""
    record, score = objective.evaluate()
    record = {"step": progress.step, **record}
    if progress.best_metric is None or score > progress.best_metric:
        progress.best_metric, progress.best_step = score, progress.step
        progress.evals_without_gain = 0
        if write:
            save_best()
        record["best"] = True
    else:
        progress.evals_without_gain += 1
    if write:
        runs.append_jsonl(metrics_path, record)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
