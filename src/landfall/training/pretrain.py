"""``landfall.pretrain(cfg, output)``: masked-LM (continued) pretraining on unlabelled text.

The result's ``model/`` is a plain transformers masked-LM directory; ``landfall train`` with
``model.name = RUN_DIR/model`` fine-tunes it (the MLM head is dropped, a classifier added).
"""

from __future__ import annotations

import time
from pathlib import Path

from landfall import runs
from landfall.config import Config, expand_env
from landfall.data.readers import read_texts
from landfall.data.splits import stratified_split
from landfall.data.tokens import tokenize
from landfall.data.windows import WindowSpec, make_windows, special_tokens
from landfall.errors import ConfigError
from landfall.hub import resolve_model
from landfall.tasks.mlm import word_starts
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
from landfall.training.objectives import MaskedLM


def load_mlm(cfg: Config, tokenizer):
    """The model with an MLM head. Checkpoints shipped without one (all-MiniLM-L6-v2,
    all-mpnet-base-v2) get a fresh head whose decoder is tied to the input embeddings, so
    only the small transform layer starts from random."""
    from transformers import AutoConfig, AutoModelForMaskedLM, BertConfig

    if cfg.pretrain.from_scratch:
        p = cfg.pretrain
        if p.hidden % p.heads:
            raise ConfigError(f"pretrain.hidden={p.hidden} is not divisible by heads={p.heads}")
        conf = BertConfig(vocab_size=len(tokenizer), hidden_size=p.hidden,
                          num_hidden_layers=p.layers, num_attention_heads=p.heads,
                          intermediate_size=4 * p.hidden,
                          max_position_embeddings=max(512, cfg.data.max_length),
                          pad_token_id=tokenizer.pad_token_id,
                          hidden_dropout_prob=cfg.model.dropout,
                          attention_probs_dropout_prob=cfg.model.attention_dropout)
        return AutoModelForMaskedLM.from_config(conf)
    path = resolve_model(cfg.model.name)
    kw = dropout_overrides(AutoConfig.from_pretrained(path), cfg)
    model = AutoModelForMaskedLM.from_pretrained(path, tie_word_embeddings=True, **kw)
    model.tie_weights()
    return model


def _chunks(docs, spec: WindowSpec, add) -> list[list[int]]:
    windows, _ = make_windows(docs, spec, add)
    return [w for w in windows if len(w) > spec.specials]


def pretrain(cfg: Config | None, output: str | Path, *, resume: bool = False) -> dict:
    """Masked-LM pretraining as ``cfg`` says; returns the final evaluation (also eval.json)."""
    cfg, run_dir = start_run(cfg, output, resume)
    t_start = time.perf_counter()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model.name))
    if tokenizer.mask_token_id is None:
        raise ConfigError(f"{cfg.model.name}: its tokenizer has no mask token")
    source = expand_env(cfg.data.train, "data.train")
    texts = read_texts(source, text_field=cfg.data.text_field, limit=cfg.data.limit or None)
    train, held = stratified_split(texts, cfg.pretrain.heldout_fraction, cfg.train.seed)
    write_config(run_dir, cfg)
    prefix, suffix = special_tokens(tokenizer)
    spec = WindowSpec(max_length=cfg.data.max_length, truncation="sliding", stride=0,
                      max_windows=0, specials=len(prefix) + len(suffix))
    spec.validate()

    def add(w: list[int]) -> list[int]:
        return prefix + w + suffix

    chunks = _chunks(tokenize([t.text for t in train], tokenizer, desc="tokenising"), spec, add)
    heldout = _chunks(tokenize([t.text for t in held], tokenizer), spec, add)

    seed_everything(cfg.train.seed)
    model = load_mlm(cfg, tokenizer)
    accelerator = make_accelerator(cfg.train.precision)
    model.to(accelerator.device)
    objective = MaskedLM(
        chunks, heldout, pad_id=tokenizer.pad_token_id, mask_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer), special_ids=sorted(set(tokenizer.all_special_ids)),
        prob=cfg.pretrain.mlm_probability,
        starts=word_starts(tokenizer) if cfg.pretrain.whole_word else None,
        eval_seed=cfg.train.seed, model=model, eval_batch_size=cfg.train.eval_batch_size,
    )
    before, _ = objective.evaluate()  # the starting point, for the report
    result = fit(model=model, objective=objective, cfg=cfg.train, run_dir=run_dir,
                 save_best=best_saver(run_dir, model, tokenizer, accelerator),
                 accelerator=accelerator, resume=resume)
    records = runs.read_jsonl(run_dir / runs.METRICS)
    evals = [r for r in records if "eval_perplexity" in r]
    best = min(evals, key=lambda r: r["eval_perplexity"]) if evals else {}
    out = {
        "heldout": {"perplexity": best.get("eval_perplexity"), "loss": best.get("eval_loss"),
                    "step": best.get("step"), "chunks": len(heldout),
                    "initial_perplexity": before["eval_perplexity"]},
        "train": {**fit_summary(result, t_start), "chunks": len(chunks),
                  "documents": len(train)},
        "data": {"train": source},
    }
    runs.write_json(run_dir / runs.EVAL, out)
    if cfg.report.plots and records:
        from landfall.reports.plots import plot_training_curves

        plot_training_curves(records, run_dir / runs.PLOTS / "training_curves.png")
    finish_run(run_dir)
    return out
