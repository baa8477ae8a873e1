"""What pruning (recovery fine-tune) and distillation share with ``landfall train``: a new run
directory, the loop, the best-model saver, the final evaluation and report."""

from __future__ import annotations

from pathlib import Path

from landfall.config import Config
from landfall.data.prepare import Prepared
from landfall.training.lifecycle import start_run, write_config


def begin(cfg: Config, output: str | Path) -> Path:
    """Open a fresh run directory (refusing one that holds a run) and write the config."""
    cfg, run_dir = start_run(cfg, output, resume=False)
    write_config(run_dir, cfg)
    return run_dir


def fit_and_report(cfg: Config, run_dir: Path, model, tokenizer, data: Prepared,
                   make_objective, extra: dict, train: bool = True) -> dict:
    """Train ``model`` with the objective ``make_objective(predictor)`` builds, through the
    one training entry point (``training.run.run_training``): keep the best, evaluate it from
    disk, write the report; returns the evaluation. ``train=False`` saves ``model`` as it is
    and only evaluates it."""
    from landfall.data.windows import WindowSpec, special_tokens
    from landfall.tasks import get_task
    from landfall.training.run import run_training

    spec = WindowSpec.from_config(cfg.data, sum(map(len, special_tokens(tokenizer))))

    def build(ctx):
        return make_objective(ctx.make_predictor(model, tokenizer, data.labels, spec,
                                                 batch_size=cfg.train.eval_batch_size))

    return run_training(cfg, run_dir, get_task(cfg.task.name), model, tokenizer, data, build,
                        extra=extra, train=train)
