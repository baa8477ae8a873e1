"""Masked-LM objective: the corrupted-token loss; scored by held-out perplexity."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from landfall.data.batching import collate, pad_multiple
from landfall.tasks.mlm.masking import IGNORE, mask_tokens


def masked_logits(model, batch: dict, labels: torch.Tensor):
    """Vocabulary logits at the masked positions only, with their labels.

    transformers' *ForMaskedLM models project every position onto the vocabulary (30 k x 384
    for MiniLM: as many FLOPs as the encoder itself), though only ~15 % are scored. The
    prediction head is position-wise, so running it on the masked positions alone gives the
    same loss at about half the cost. Models whose head we do not know, and models wrapped
    for multi-process training (their forward must go through the wrapper), get the full pass.
    """
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if head is None or base is None:
        return model(**batch).logits.flatten(0, 1), labels.flatten()
    hidden = base(**batch).last_hidden_state
    keep = labels != IGNORE
    return head(hidden[keep]), labels[keep]


@dataclass
class MaskedLM:
    """Masked-language-model pretraining on chunks of unlabelled text; scored by perplexity."""

    chunks: list[list[int]]  # training chunks, special tokens included
    heldout: list[list[int]]  # held-out chunks for perplexity
    pad_id: int
    mask_id: int
    vocab_size: int
    special_ids: list[int]
    prob: float = 0.15
    starts: torch.Tensor | None = None  # word_starts table for whole-word masking
    eval_seed: int = 0
    model: torch.nn.Module | None = None  # set by the caller: evaluated in place
    eval_batch_size: int = 64

    @property
    def lengths(self) -> list[int]:
        return [len(c) for c in self.chunks]

    def _corrupt(self, seqs: list[list[int]], device) -> dict[str, torch.Tensor]:
        batch = collate(seqs, self.pad_id, pad_multiple(device))
        ids = batch["input_ids"]
        maskable = batch["attention_mask"].bool() & ~torch.isin(ids, torch.tensor(self.special_ids))
        inputs, labels = mask_tokens(ids, maskable, mask_id=self.mask_id,
                                     vocab_size=self.vocab_size, prob=self.prob,
                                     starts=self.starts)
        mask = batch["attention_mask"]
        return {"input_ids": inputs.to(device), "attention_mask": mask.to(device),
                "labels": labels.to(device)}

    def loss(self, model, idx, n, device, autocast) -> torch.Tensor:
        batch = self._corrupt([self.chunks[i] for i in idx], device)
        labels = batch.pop("labels")
        with autocast():
            logits, labels = masked_logits(model, batch, labels)
        per_token = torch.nn.functional.cross_entropy(
            logits.float(), labels, ignore_index=IGNORE, reduction="sum"
        )
        masked = (labels != IGNORE).sum().clamp(min=1)
        # mean over this batch's masked tokens, weighted by its share of the step's items
        return per_token / masked * (len(idx) / n)

    @torch.no_grad()
    def evaluate(self) -> tuple[dict, float]:
        """Perplexity on the held-out chunks, with the same masks at every evaluation
        (a forked generator: the training RNG stream is left untouched)."""
        model = self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.eval_seed)
            for start in range(0, len(self.heldout), self.eval_batch_size):
                batch = self._corrupt(self.heldout[start : start + self.eval_batch_size], device)
                labels = batch.pop("labels")
                logits = model(**batch).logits.float()
                total += torch.nn.functional.cross_entropy(
                    logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum"
                ).item()
                count += int((labels != IGNORE).sum())
        model.train(was_training)
        loss = total / max(count, 1)
        return {"eval_loss": loss, "eval_perplexity": math.exp(loss)}, -loss
