"""What pruning (recovery fine-tune) and distillation share with ``landfall train``: a new run
directory, the loop, the best-model saver, the final evaluation and report."""

from __future__ import annotations

import time
from pathlib import Path

from landfall.config import Config
from landfall.data.prepare import Prepared
from landfall.training.lifecycle import (
    best_saver,
    finish_run,
    fit_summary,
    make_accelerator,
    start_run,
    write_config,
)
from landfall.training.loop import fit


def begin(cfg: Config, output: str | Path) -> Path:
    """Open a fresh run directory (refusing one that holds a run) and write the config."""
    cfg, run_dir = start_run(cfg, output, resume=False)
    write_config(run_dir, cfg)
    return run_dir


def fit_and_report(cfg: Config, run_dir: Path, model, tokenizer, data: Prepared,
                   make_objective, extra: dict, train: bool = True) -> dict:
    """Train ``model`` with the objective ``make_objective(predictor)`` builds, keep the best,
    evaluate it from disk and write the report; returns the evaluation. ``train=False``
    saves ``model`` as it is and only evaluates it."""
    from landfall.data.windows import WindowSpec, special_tokens
    from landfall.inference.predictor import Predictor
    from landfall.reports.evaluate import evaluate_and_report
    from landfall.training.adapters import parameter_counts

    t_start = time.perf_counter()
    accelerator = make_accelerator(cfg.train.precision)
    model.to(accelerator.device)
    spec = WindowSpec.from_config(cfg.data, sum(map(len, special_tokens(tokenizer))))
    predictor = Predictor(model, tokenizer, data.labels, spec,
                          batch_size=cfg.train.eval_batch_size, device=accelerator.device,
                          bf16=accelerator.mixed_precision == "bf16")
    save_best = best_saver(run_dir, model, tokenizer, accelerator)
    summary = {**parameter_counts(model), **extra}
    if train:
        result = fit(model=model, objective=make_objective(predictor), cfg=cfg.train,
                     run_dir=run_dir, save_best=save_best, accelerator=accelerator)
        summary.update(fit_summary(result, t_start))
    else:
        save_best()
    model.to("cpu")
    out = evaluate_and_report(run_dir, cfg, data, summary)
    finish_run(run_dir)
    return out
