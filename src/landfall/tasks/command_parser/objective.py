"""The parser's objective: cross-entropy of each command word's tag (its first token);
scored on validation by exact match of the decoded tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from landfall.tasks.command_parser.lexicon import TAG_ID, TAGS
from landfall.tasks.command_parser.model import collate_ids, encode, to_result


@dataclass
class Encoded:
    ids: list[list[int]]
    types: list[list[int]]
    labels: list[list[int]]  # per token, -100 off the command words' first tokens
    first: list[list[int]]


def encode_examples(tokenizer, examples, max_length: int, sensors: bool) -> Encoded:
    out = Encoded([], [], [], [])
    for e in examples:
        ids, types, first = encode(tokenizer, e.words, e.sensors if sensors else "", max_length)
        lab = [-100] * len(ids)
        for w, pos in enumerate(first):
            if pos >= 0:
                lab[pos] = TAG_ID[e.tags[w]]
        out.ids.append(ids)
        out.types.append(types)
        out.labels.append(lab)
        out.first.append(first)
    return out


@dataclass
class Tagging:
    train: Encoded
    val: Encoded
    val_examples: list[Any]
    model: torch.nn.Module
    pad_id: int
    eval_batch_size: int = 64

    @property
    def lengths(self) -> list[int]:
        return [len(i) for i in self.train.ids]

    def loss(self, model, idx, n, device, autocast) -> torch.Tensor:
        rows = [(self.train.ids[i], self.train.types[i]) for i in idx]
        batch, labels = collate_ids(rows, self.pad_id, [self.train.labels[i] for i in idx])
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast():
            logits = model(**batch).logits
        return torch.nn.functional.cross_entropy(
            logits.float().flatten(0, 1), labels.to(device).flatten(), ignore_index=-100,
            reduction="sum") / max(1, int((labels != -100).sum())) * (len(idx) / n)

    @torch.no_grad()
    def evaluate(self) -> tuple[dict, float]:
        model = self.model
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        right = total = exact = 0
        loss_sum = 0.0
        by_style: dict[str, list[int]] = {}
        for s in range(0, len(self.val.ids), self.eval_batch_size):
            idx = range(s, min(s + self.eval_batch_size, len(self.val.ids)))
            batch, labels = collate_ids([(self.val.ids[i], self.val.types[i]) for i in idx],
                                        self.pad_id, [self.val.labels[i] for i in idx])
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
            loss_sum += torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100,
                reduction="sum").item()
            pred = logits.argmax(-1)
            keep = labels != -100
            right += int((pred[keep] == labels[keep]).sum())
            total += int(keep.sum())
            for row, i in enumerate(idx):
                ex = self.val_examples[i]
                tags = [TAGS[pred[row, p]] if p >= 0 else "O" for p in self.val.first[i]]
                r = to_result(ex.words, tags)
                ok = int(r.plan is not None and r.plan.key() == ex.plan.key())
                exact += ok
                by_style.setdefault(ex.style, []).append(ok)
        model.train(was)
        n = max(1, len(self.val.ids))
        record = {"eval_loss": loss_sum / max(1, total), "eval_tag_accuracy": right / max(1, total),
                  "eval_exact_match": exact / n}
        for style, oks in by_style.items():
            record[f"eval_exact_match_{style}"] = sum(oks) / len(oks)
        return record, exact / n
