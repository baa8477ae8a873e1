"""What every training command shares: opening a run directory, saving the best model,
summing up, and closing the run."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import tomli_w
import torch

from landfall import runs
from landfall.config import Config
from landfall.errors import LandfallError
from landfall.inference.loading import run_config
from landfall.inference.precision import bf16_native, why_not_bf16
from landfall.training.checkpoint import latest_checkpoint
from landfall.training.distributed import is_main
from landfall.training.loop import FitResult, seed_everything


def configure_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


# fields a resumed run may change; any other change would make it a different run
RESUMABLE = {"train.threads", "train.eval_batch_size", "report.baseline", "report.plots"}


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if resume:
        if latest_checkpoint(run_dir) is None:
            done = (run_dir / runs.EVAL).exists()
            raise LandfallError(f"{run_dir}: " + ("training has already finished" if done
                                                   else "no checkpoint to resume from"))
    elif (run_dir / runs.CHECKPOINTS).exists() or (run_dir / runs.MODEL).exists():
        raise LandfallError(
            f"{run_dir}: already holds a run; use --resume {run_dir} or another --output"
        )


def _resume_config(run_dir: Path, cfg: Config | None) -> Config:
    saved = run_config(run_dir)
    if cfg is None:
        return saved
    old, new = saved.to_dict(), cfg.to_dict()
    changed = [f"{s}.{k}" for s in new for k in new[s]
               if new[s][k] != old[s][k] and f"{s}.{k}" not in RESUMABLE]
    if changed:
        raise LandfallError(
            f"{run_dir}: a resumed run keeps its config; these fields differ from "
            f"{runs.CONFIG}: {', '.join(changed)} (only {', '.join(sorted(RESUMABLE))} may)"
        )
    return cfg


def make_accelerator(precision: str):
    """bf16 mixed precision where the hardware computes it natively (a GPU with bf16, a CPU
    with AVX512-BF16 or AMX: 2.5x faster SmolLM2 steps than fp32 on an AVX512-BF16 EPYC);
    elsewhere PyTorch emulates bf16 products, slower than fp32, so it is refused."""
    from accelerate import Accelerator

    for var, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(var, "").lower() in ("1", "true", "yes"):
            # refused before anything is built: the loop would train unsharded state dicts
            # and checkpoint one shard (docs/guide/scale-out.md, "FSDP")
            raise LandfallError(f"{name} (accelerate config, {var}) is not supported by "
                                "Landfall's training loop: every model it trains fits one "
                                "device, so use DDP (landfall train --processes N, or "
                                "accelerate launch with distributed_type MULTI_GPU/MULTI_CPU)")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    native = bf16_native(device)
    if precision == "bf16" and not native:
        raise LandfallError(f"train.precision=bf16: {why_not_bf16(device)}; use auto or fp32")
    bf16 = precision == "bf16" or (precision == "auto" and native)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # accelerate keeps one process-wide state and refuses a second Accelerator with
        # another precision; a Python caller may train one run in fp32, the next in bf16
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()
    return Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not cuda)


def start_run(cfg: Config | None, output: str | Path, resume: bool) -> tuple[Config, Path]:
    """Check the run directory, settle the config (the saved one on resume), seed, set up."""
    run_dir = Path(output)
    _check_run_dir(run_dir, resume)
    if resume:
        cfg = _resume_config(run_dir, cfg)
    elif cfg is None:
        raise LandfallError("a config is needed (or --resume RUN_DIR)")
    configure_threads(cfg.train.threads)
    if torch.cuda.is_available():  # bit-for-bit repeatable runs (and resumes) on GPU too
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.train.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main():  # another rank's clean-up would delete rank 0's temporary files
        runs.clean_stale(run_dir)
    return cfg, run_dir


def write_config(run_dir: Path, cfg: Config) -> None:
    runs.write_text(run_dir / runs.CONFIG, tomli_w.dumps(cfg.to_dict()))
    runs.write_manifest(run_dir, task=cfg.task.name, backend="torch",
                        base_model=cfg.model.name, peft=cfg.peft.method)


def best_saver(run_dir: Path, model, tokenizer, accelerator):
    """A callback that writes the model as a plain transformers directory, atomically."""

    def save_best() -> None:
        unwrapped = accelerator.unwrap_model(model)

        def write(tmp: Path) -> None:
            unwrapped.save_pretrained(tmp)  # a peft model writes its adapter and head only
            if hasattr(unwrapped, "get_base_model"):  # label names for the reload
                unwrapped.get_base_model().config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        runs.save_dir(run_dir / runs.MODEL, write)

    return save_best


def fit_summary(result: FitResult, t_start: float) -> dict:
    p = result.progress
    return {
        "train_seconds": p.train_seconds,
        "eval_seconds": p.eval_seconds,
        "samples_per_s": result.samples_per_s,
        "steps": p.step,
        "total_steps": result.total_steps,
        "samples": p.samples,
        "best_step": p.best_step,
        "stopped_early": p.stopped_early,
        "wall_seconds_this_process": time.perf_counter() - t_start,
    }


def finish_run(run_dir: Path) -> None:
    """Drop the checkpoints of a finished run (renamed first: a kill mid-delete must not
    leave a half-deleted checkpoint that --resume would pick up)."""
    trash = run_dir / f".{runs.CHECKPOINTS}.trash"
    if (run_dir / runs.CHECKPOINTS).exists():
        os.replace(run_dir / runs.CHECKPOINTS, trash)
    shutil.rmtree(trash, ignore_errors=True)
