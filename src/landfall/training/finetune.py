"""``landfall.train(cfg, output)``: data → model → fit → final evaluation → report."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from landfall.config import Config
from landfall.data.prepare import prepare
from landfall.data.windows import WindowSpec, make_windows, special_tokens
from landfall.errors import LandfallError
from landfall.hub import resolve_model
from landfall.inference.predictor import Predictor
from landfall.inference.rejection import check_oos_data
from landfall.training.adapters import parameter_counts, wrap
from landfall.training.lifecycle import (
    best_saver,
    dropout_overrides,
    finish_run,
    fit_summary,
    make_accelerator,
    start_run,
    write_config,
)
from landfall.training.loop import fit, seed_everything
from landfall.training.objectives import Classification


def _max_positions(config) -> int:
    """Longest input the model's position embeddings cover (0 = unknown)."""
    n = getattr(config, "max_position_embeddings", 0) or 0
    if n and config.model_type in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        n -= (config.pad_token_id or 0) + 1  # positions start after the padding index
    return n


def load_model(cfg: Config, labels: list[str]):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model(cfg.model.name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoConfig.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        **dropout_overrides(base, cfg),
    )
    return wrap(model, cfg.peft), tokenizer


def train(cfg: Config | None, output: str | Path, *, resume: bool = False) -> dict:
    """Fine-tune a classifier as ``cfg`` says; return the final evaluation (also eval.json)."""
    cfg, run_dir = start_run(cfg, output, resume)
    t_start = time.perf_counter()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model.name))
    data = prepare(cfg.data, tokenizer, cfg.train.seed)
    check_oos_data(cfg.oos, data.labels, data.validation.y, data.train_source)  # fail early
    write_config(run_dir, cfg)
    seed_everything(cfg.train.seed)
    model, tokenizer = load_model(cfg, data.labels)
    accelerator = make_accelerator(cfg.train.precision)
    model.to(accelerator.device)
    if cfg.train.freeze_embeddings and cfg.peft.method == "none":
        model.get_input_embeddings().weight.requires_grad_(False)

    spec = WindowSpec.from_config(cfg.data, sum(map(len, special_tokens(tokenizer))))
    spec.validate()
    limit = _max_positions(model.config)
    if limit and spec.max_length > limit:
        raise LandfallError(f"data.max_length={spec.max_length} exceeds what "
                            f"{cfg.model.name} can read ({limit} tokens)")
    predictor = Predictor(model, tokenizer, data.labels, spec,
                          batch_size=cfg.train.eval_batch_size, device=accelerator.device,
                          bf16=accelerator.mixed_precision == "bf16")
    windows, owner = make_windows(data.train.docs, spec, predictor.add_special)
    objective = Classification(windows, [data.train.y[d] for d in owner], data.validation.docs,
                               data.validation.y, predictor, cfg.train.metric)

    result = fit(model=model, objective=objective, cfg=cfg.train, run_dir=run_dir,
                 save_best=best_saver(run_dir, model, tokenizer, accelerator),
                 accelerator=accelerator, resume=resume)

    from landfall.reports.evaluate import evaluate_and_report

    summary = {**fit_summary(result, t_start), "train_windows": len(windows),
               "peft": cfg.peft.method, **parameter_counts(model)}
    if accelerator.device.type == "cuda":  # the report reloads the best model onto the GPU
        model.to("cpu")
        torch.cuda.empty_cache()
    out = evaluate_and_report(run_dir, cfg, data, summary)
    finish_run(run_dir)
    return out
