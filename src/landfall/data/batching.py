"""Batching by length, shared by training, evaluation, prediction and serving.

Sequences of similar length go together so that little compute is spent on padding. The
training order is a pure function of (seed, epoch): a resumed run recomputes it and skips the
batches already seen, without touching the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def training_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group: int = 50
) -> list[list[int]]:
    """Shuffled batches of indices, length-grouped inside mega-batches of ``group`` batches.

    Like transformers' ``group_by_length`` sampler: shuffle, cut into mega-batches, sort each
    by length, cut into batches, then shuffle the batch order (so that lengths still vary
    from step to step). The longest batch goes first so that an out-of-memory shows at once.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lens = np.asarray(lengths)
    mega = batch_size * group
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = order[start : start + mega]
        chunk = chunk[np.argsort(-lens[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    perm = rng.permutation(len(batches)).tolist()
    longest = max(range(len(batches)), key=lambda b: max(lens[batches[b]]), default=0)
    perm.remove(longest)
    return [batches[longest]] + [batches[i] for i in perm]


def inference_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int = 0
) -> list[list[int]]:
    """Indices sorted by length (longest first) and cut into batches.

    ``max_tokens`` (if > 0) also bounds batch_size x longest length, so that a batch of long
    sequences is smaller than a batch of short ones.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        full = len(current) >= batch_size or (
            max_tokens > 0 and current and (len(current) + 1) * width > max_tokens
        )
        if full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(
    seqs: Sequence[Sequence[int]], pad_id: int, multiple: int = 1
) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence (rounded up to ``multiple``); return ids and mask."""
    width = max(len(s) for s in seqs)
    width = -(-width // multiple) * multiple if multiple > 1 else width
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[row, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def pad_multiple(device: torch.device | str) -> int:
    """Round padded lengths to 8 on GPUs (tensor-core tiles); on CPUs padding is pure cost."""
    return 8 if torch.device(device).type == "cuda" else 1
