"""Micro-benchmark: one training step of MiniLM at batch 16 x 256 tokens, by setting.

Separates what each setting costs: attention dropout (which keeps PyTorch's SDPA off its fused
kernel), foreach vs fused AdamW. Random token ids, so every sequence is full length.

    python bench/step_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import AutoModelForSequenceClassification

from landfall.hub import resolve_model
from landfall.utils.quiet import quiet_transformers

SETTINGS = {
    "attention dropout 0.1, foreach AdamW": {"attn_drop": 0.1, "fused": False},
    "attention dropout 0.0, foreach AdamW": {"attn_drop": 0.0, "fused": False},
    "attention dropout 0.0, fused AdamW": {"attn_drop": 0.0, "fused": True},
}


def step_time(attn_drop: float, fused: bool, steps: int, batch: int, length: int) -> float:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model("minilm"), num_labels=2, attention_probs_dropout_prob=attn_drop
    ).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5,
                            **({"fused": True} if fused else {"foreach": True}))
    ids = torch.randint(1000, 20000, (batch, length))
    mask = torch.ones_like(ids)
    y = torch.randint(0, 2, (batch,))
    times = []
    for _ in range(steps + 1):  # the first step warms up and is dropped
        t = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=256)
    args = p.parse_args()
    quiet_transformers()
    print("| setting | s/step | samples/s |\n|---|---|---|")
    for name, kw in SETTINGS.items():
        s = step_time(**kw, steps=args.steps, batch=args.batch, length=args.length)
        print(f"| {name} | {s:.2f} | {args.batch / s:.2f} |", flush=True)


if __name__ == "__main__":
    main()
