"""Supervised fine-tuning objective: next-token loss on the response tokens only.

Sequences are right-padded per batch (length-bucketed by the loop's sampler, so padding is
small and no example attends to another). The vocabulary projection is applied only where a
response token is predicted: the prompt positions would cost the full 49 k-wide matmul and
then be thrown away.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from landfall.data.batching import pad_multiple
from landfall.tasks.causal_lm.data import IGNORE, Tokenised


def collate_sft(items: list[Tokenised], pad_id: int, multiple: int = 1):
    """input_ids, attention_mask and labels (IGNORE on prompt and padding), right-padded."""
    width = max(len(t.ids) for t in items)
    width = -(-width // multiple) * multiple if multiple > 1 else width
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, t in enumerate(items):
        seq = torch.as_tensor(t.ids, dtype=torch.long)
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
        labels[row, t.prompt_len : len(seq)] = seq[t.prompt_len:]
    return ids, mask, labels


def _decoder_parts(model):
    """(backbone, lm_head) of a causal LM, through a peft wrapper if there is one."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(inner, getattr(inner, "base_model_prefix", "model"), None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    return backbone, head


def response_loss(model, ids, mask, labels, autocast) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over the response tokens, how many there were)."""
    target = labels[:, 1:]
    keep = target != IGNORE
    backbone, head = _decoder_parts(model)
    with autocast():
        if backbone is not None and head is not None:
            hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
            logits = head(hidden[:, :-1][keep])
        else:  # unknown layout: the full forward
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1][keep]
    loss = torch.nn.functional.cross_entropy(logits.float(), target[keep], reduction="sum")
    return loss, int(keep.sum())


@dataclass
class CausalLM:
    train: list[Tokenised]
    validation: list[Tokenised]
    pad_id: int
    model: torch.nn.Module | None = None  # evaluated in place
    eval_batch_size: int = 16

    @property
    def lengths(self) -> list[int]:
        return [len(t.ids) for t in self.train]

    def loss(self, model, idx, n, device, autocast) -> torch.Tensor:
        ids, mask, labels = collate_sft([self.train[i] for i in idx], self.pad_id,
                                        pad_multiple(device))
        total, count = response_loss(model, ids.to(device), mask.to(device), labels.to(device),
                                     autocast)
        # mean over this batch's response tokens, weighted by its share of the step's items
        return total / max(count, 1) * (len(idx) / n)

    @torch.no_grad()
    def evaluate(self) -> tuple[dict, float]:
        """Validation loss per response token (and its perplexity); higher score = lower loss."""
        model = self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        order = sorted(range(len(self.validation)), key=lambda i: len(self.validation[i].ids))
        total, count = 0.0, 0
        for start in range(0, len(order), self.eval_batch_size):
            batch = [self.validation[i] for i in order[start:start + self.eval_batch_size]]
            ids, mask, labels = collate_sft(batch, self.pad_id, pad_multiple(device))
            loss, k = response_loss(model, ids.to(device), mask.to(device), labels.to(device),
                                    contextlib.nullcontext)
            total += loss.item()
            count += k
        model.train(was_training)
        mean = total / max(count, 1)
        return {"eval_loss": mean, "eval_perplexity": math.exp(min(mean, 50.0))}, -mean

