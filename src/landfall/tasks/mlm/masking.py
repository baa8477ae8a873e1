"""Masked-language-model corruption: the BERT recipe (15 %, then 80 % [MASK] / 10 % random /
10 % unchanged), per token or per whole word.

Written by hand because transformers' DataCollatorForLanguageModeling needs offset mappings
for whole-word masking and then drops the 10 % random replacement; here words come from the
token ids alone (WordPiece continuation pieces start with ``##``), so cached ids suffice.
Randomness comes from torch's global generator, which checkpoints save and restore.
"""

from __future__ import annotations

import torch

IGNORE = -100  # label of positions that are not predicted


def word_starts(tokenizer) -> torch.Tensor:
    """Bool per vocabulary id: does this token begin a word (not a ``##`` continuation)?"""
    vocab = tokenizer.get_vocab()
    starts = torch.ones(max(vocab.values()) + 1, dtype=torch.bool)
    for token, i in vocab.items():
        if token.startswith("##"):
            starts[i] = False
    return starts


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    prob: float = 0.15,
    starts: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt ``input_ids`` (B, L); return (inputs, labels) with labels = IGNORE where unmasked.

    ``maskable`` (B, L) is False on special and padding positions. With ``starts`` (a
    word_starts table) whole words are chosen: a word's pieces are masked together.
    """
    g = {"generator": generator} if generator is not None else {}
    if starts is None:
        chosen = (torch.rand(input_ids.shape, **g) < prob) & maskable
    else:
        begins = starts[input_ids] & maskable
        word = torch.cumsum(begins.long(), dim=1)  # word number of each token, per row
        pick = torch.rand((input_ids.shape[0], input_ids.shape[1] + 1), **g) < prob
        chosen = pick.gather(1, word) & maskable & (word > 0)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    inputs = input_ids.clone()
    r = torch.rand(input_ids.shape, **g)
    inputs[chosen & (r < 0.8)] = mask_id
    random_pos = chosen & (r >= 0.8) & (r < 0.9)
    inputs[random_pos] = torch.randint(vocab_size, input_ids.shape, **g)[random_pos]
    return inputs, labels
