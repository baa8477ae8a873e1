"""Landfall's training loop against transformers' Trainer, in one run, on the same inputs.

Both get the same model, the same token ids (the same long-text windows), max length, batch
size, epochs, learning-rate schedule and seed, and both are scored by the same evaluation code
on the same validation documents. The Trainer is configured as its docs advise for speed:
length-grouped sampling (``train_sampling_strategy="group_by_length"``) and fused AdamW.

It runs twice: once with the model's own config (attention dropout 0.1, what a Trainer user
gets), once with Landfall's model config (attention dropout 0), so that the report separates
what the config buys from what the loop buys.

    python bench/trainer_compare.py --n-train 2000 --n-eval 1000
    python bench/trainer_compare.py --test path/to/test.jsonl   # score on a given test file
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from landfall.config import build_config
from landfall.data.labels import encode_labels, infer_labels
from landfall.data.readers import read_examples
from landfall.data.splits import stratified_split
from landfall.data.tokens import tokenize
from landfall.data.windows import WindowSpec, make_windows, special_tokens
from landfall.hub import resolve_model
from landfall.inference.predictor import Predictor
from landfall.tasks.classification.metrics import compute_metrics
from landfall.utils.quiet import quiet_transformers


def parse() -> argparse.Namespace:
    data = os.environ.get("LANDFALL_DATA", str(Path(__file__).resolve().parents[2] / "shared/data"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", default=f"{data}/imdb/train.jsonl.gz")
    p.add_argument("--test", default="", help="Labelled test file; default: seeded split.")
    p.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-eval", type=int, default=1000)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--truncation", default="head+tail")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--skip", default="", help="Comma list of runs to skip: trainer,trainer_same")
    p.add_argument("--out", default="bench/results/trainer_compare.json")
    return p.parse_args()


def load_data(args):
    examples = read_examples(args.train)
    train, val = stratified_split(examples, 0.1, args.seed)
    if args.test:
        val = read_examples(args.test)
    if args.n_train and args.n_train < len(train):
        train = stratified_split(train, args.n_train / len(train), args.seed)[1]
    if args.n_eval and args.n_eval < len(val):
        val = stratified_split(val, args.n_eval / len(val), args.seed)[1]
    labels = infer_labels(train)
    return train, val, labels


def write_jsonl(path: Path, examples) -> None:
    path.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n"
                            for e in examples), encoding="utf-8")


def evaluate(model, tokenizer, labels, spec, val_docs, y_val) -> dict:
    pred = Predictor(model, tokenizer, labels, spec, batch_size=64).predict_tokens(val_docs)
    m = compute_metrics(y_val, pred.probs, labels)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ece": m["ece"]}


def run_trainer(args, model_dir, tokenizer, labels, windows, y, spec, val_docs, y_val,
                attention_dropout: float | None) -> dict:
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(args.seed)
    extra = {} if attention_dropout is None else {
        "attention_probs_dropout_prob": attention_dropout}
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, **extra)
    ds = Dataset.from_dict({"input_ids": windows, "labels": y,
                            "length": [len(w) for w in windows]})
    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs, learning_rate=args.lr, weight_decay=0.01,
            warmup_steps=0.06, lr_scheduler_type="linear", max_grad_norm=1.0,
            optim="adamw_torch_fused", train_sampling_strategy="group_by_length",
            save_strategy="no", eval_strategy="no", logging_steps=50, report_to="none",
            seed=args.seed, data_seed=args.seed, use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            dataloader_num_workers=0, disable_tqdm=False,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=ds,
                          data_collator=DataCollatorWithPadding(tokenizer))
        t = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t
    samples = int(round(args.epochs * len(windows)))
    model.eval()
    return {"train_seconds": seconds, "samples": samples, "samples_per_s": samples / seconds,
            **evaluate(model, tokenizer, labels, spec, val_docs, y_val)}


def run_landfall(args, train, val) -> dict:
    import landfall

    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(Path(tmp) / "train.jsonl", train)
        write_jsonl(Path(tmp) / "val.jsonl", val)
        cfg = build_config({
            "model": {"name": args.model},
            "data": {"train": f"{tmp}/train.jsonl", "validation": f"{tmp}/val.jsonl",
                     "max_length": args.max_length, "truncation": args.truncation},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                      "seed": args.seed, "eval_every": 10**9, "patience": 0},
            "report": {"baseline": False, "plots": False},
        })
        out = landfall.train(cfg, Path(tmp) / "run")
    t = out["train"]
    m = out["validation"]
    return {"train_seconds": t["train_seconds"], "samples": t["samples"],
            "samples_per_s": t["samples_per_s"], "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"], "ece": m["ece"]}


def main() -> None:
    args = parse()
    quiet_transformers()
    from transformers import AutoTokenizer

    model_dir = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train, val, labels = load_data(args)
    y, y_val = encode_labels(train, labels), encode_labels(val, labels)
    spec = WindowSpec(max_length=args.max_length, truncation=args.truncation,
                      specials=sum(map(len, special_tokens(tokenizer))))
    prefix, suffix = special_tokens(tokenizer)
    docs = tokenize([e.text for e in train], tokenizer)
    val_docs = tokenize([e.text for e in val], tokenizer)
    windows, owner = make_windows(docs, spec, lambda w: prefix + w + suffix)
    y_win = [y[d] for d in owner]
    lengths = [len(w) for w in windows]
    setup = {"model": args.model, "n_train": len(train), "n_eval": len(val),
             "max_length": args.max_length, "truncation": args.truncation,
             "batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr,
             "seed": args.seed, "mean_tokens": float(np.mean(lengths)),
             "threads": torch.get_num_threads(), "torch": torch.__version__,
             "device": "cuda" if torch.cuda.is_available() else "cpu"}
    print(json.dumps(setup))
    results = {}
    skip = set(args.skip.split(","))
    results["landfall"] = run_landfall(args, train, val)
    print("landfall", json.dumps(results["landfall"]), flush=True)
    if "trainer" not in skip:
        results["trainer"] = run_trainer(args, model_dir, tokenizer, labels, windows, y_win,
                                         spec, val_docs, y_val, None)
        print("trainer", json.dumps(results["trainer"]), flush=True)
    if "trainer_same" not in skip:
        results["trainer_same_config"] = run_trainer(args, model_dir, tokenizer, labels,
                                                     windows, y_win, spec, val_docs, y_val, 0.0)
        print("trainer_same_config", json.dumps(results["trainer_same_config"]), flush=True)
    ours = results["landfall"]["samples_per_s"]
    ratios = {k: ours / v["samples_per_s"] for k, v in results.items() if k != "landfall"}
    out = {"setup": setup, "results": results, "speedup_vs": ratios}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))


if __name__ == "__main__":
    main()
