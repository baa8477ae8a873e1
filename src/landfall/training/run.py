"""``landfall.train(cfg, output)``: data → model → fit → final evaluation → report."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import tomli_w
import torch

from landfall import runs
from landfall.config import Config
from landfall.data.prepare import prepare
from landfall.data.windows import WindowSpec, make_windows, special_tokens
from landfall.errors import LandfallError
from landfall.hub import resolve_model
from landfall.inference.loading import run_config
from landfall.inference.predictor import Predictor
from landfall.inference.rejection import check_oos_data
from landfall.training.checkpoint import latest_checkpoint
from landfall.training.loop import fit, seed_everything
from landfall.training.objectives import Classification


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


def _set_dropout(model_config, cfg: Config) -> dict:
    """Dropout names differ between architectures: set the ones this config has."""
    kw = {}
    for name in ("hidden_dropout_prob", "dropout", "classifier_dropout", "seq_classif_dropout"):
        if hasattr(model_config, name):
            kw[name] = cfg.model.dropout
    for name in ("attention_probs_dropout_prob", "attention_dropout"):
        if hasattr(model_config, name):
            kw[name] = cfg.model.attention_dropout
    return kw


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
        **_set_dropout(base, cfg),
    )
    return model, tokenizer


def _accelerator(precision: str):
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    gpu_bf16 = cuda and torch.cuda.is_bf16_supported(including_emulation=False)
    if precision == "bf16" and not gpu_bf16:
        # bf16 on a CPU without bf16 units (AVX512-BF16/AMX) is slower than fp32
        raise LandfallError("train.precision=bf16 needs a GPU with bf16 support; use auto")
    bf16 = precision == "bf16" or (precision == "auto" and gpu_bf16)
    return Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not cuda)


def train(cfg: Config | None, output: str | Path, *, resume: bool = False) -> dict:
    """Fine-tune a classifier as ``cfg`` says; return the final evaluation (also eval.json)."""
    run_dir = Path(output)
    _check_run_dir(run_dir, resume)
    if resume:
        cfg = _resume_config(run_dir, cfg)
    elif cfg is None:
        raise LandfallError("train needs a config (or --resume RUN_DIR)")
    configure_threads(cfg.train.threads)
    if torch.cuda.is_available():  # bit-for-bit repeatable runs (and resumes) on GPU too
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.train.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.clean_stale(run_dir)
    t_start = time.perf_counter()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model.name))
    data = prepare(cfg.data, tokenizer, cfg.train.seed)
    check_oos_data(cfg.oos, data.labels, data.validation.y, data.train_source)  # fail early
    runs.write_text(run_dir / runs.CONFIG, tomli_w.dumps(cfg.to_dict()))
    seed_everything(cfg.train.seed)
    model, tokenizer = load_model(cfg, data.labels)
    accelerator = _accelerator(cfg.train.precision)
    model.to(accelerator.device)
    if cfg.train.freeze_embeddings:
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

    def save_best() -> None:
        unwrapped = accelerator.unwrap_model(model)

        def write(tmp: Path) -> None:
            unwrapped.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        runs.save_dir(run_dir / runs.MODEL, write)

    result = fit(model=model, objective=objective, cfg=cfg.train, run_dir=run_dir,
                 save_best=save_best, accelerator=accelerator, resume=resume)

    from landfall.reports.evaluate import evaluate_and_report

    summary = {
        "train_seconds": result.progress.train_seconds,
        "eval_seconds": result.progress.eval_seconds,
        "samples_per_s": result.samples_per_s,
        "steps": result.progress.step,
        "total_steps": result.total_steps,
        "samples": result.progress.samples,
        "train_windows": len(windows),
        "best_step": result.progress.best_step,
        "stopped_early": result.progress.stopped_early,
        "wall_seconds_this_process": time.perf_counter() - t_start,
    }
    if accelerator.device.type == "cuda":  # the report reloads the best model onto the GPU
        model.to("cpu")
        torch.cuda.empty_cache()
    out = evaluate_and_report(run_dir, cfg, data, summary)
    # rename first: a kill mid-delete must not leave a half-deleted checkpoint to resume from
    trash = run_dir / f".{runs.CHECKPOINTS}.trash"
    if (run_dir / runs.CHECKPOINTS).exists():
        os.replace(run_dir / runs.CHECKPOINTS, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return out
