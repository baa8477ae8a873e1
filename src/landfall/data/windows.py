"""Long-text strategies: turn a document's token ids into model-sized windows.

Written by hand because neither tokenizers nor transformers' pipeline offer head+tail or
per-document aggregation; the same code serves training, evaluation, prediction and serving.
Windows are built from token ids *without* special tokens; ``add_special`` wraps each one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from landfall.config import TRUNCATIONS, DataConfig


@dataclass(frozen=True)
class WindowSpec:
    max_length: int = 256
    truncation: str = "head+tail"
    head_tokens: int = 0  # 0 = half the window
    stride: int = 64
    max_windows: int = 8
    aggregate: str = "mean"
    specials: int = 2  # special tokens added per window ([CLS] ... [SEP] for BERT)

    @classmethod
    def from_config(cls, data: DataConfig, specials: int) -> WindowSpec:
        return cls(data.max_length, data.truncation, data.head_tokens, data.stride,
                   data.max_windows, data.aggregate, specials)

    @property
    def body(self) -> int:
        """Content tokens per window."""
        return self.max_length - self.specials

    def validate(self) -> None:
        from landfall.errors import ConfigError

        if self.truncation not in TRUNCATIONS:
            raise ConfigError(f"data.truncation must be one of {TRUNCATIONS}")
        if self.body < 1:
            raise ConfigError(f"data.max_length={self.max_length} leaves no room for text")
        if self.truncation == "head+tail" and not 0 <= self.head_tokens <= self.body:
            raise ConfigError(
                f"data.head_tokens={self.head_tokens} does not fit a window of "
                f"{self.body} text tokens (data.max_length={self.max_length}); use 0 for half"
            )
        if self.truncation == "sliding" and not 0 <= self.stride < self.body:
            raise ConfigError(f"data.stride must be between 0 and {self.body - 1}")


def split_windows(ids: Sequence[int], spec: WindowSpec) -> list[list[int]]:
    """The content windows of one document (special tokens not yet added)."""
    ids = list(ids)
    body = spec.body
    if len(ids) <= body:
        return [ids]
    if spec.truncation == "head":
        return [ids[:body]]
    if spec.truncation == "tail":
        return [ids[-body:]]
    if spec.truncation == "head+tail":
        head = spec.head_tokens or body // 2
        tail = body - head
        return [ids[:head] + (ids[-tail:] if tail else [])]
    step = body - spec.stride
    starts = list(range(0, len(ids) - spec.stride, step))
    # the last window ends at the document's end, so no tail is lost
    starts[-1] = min(starts[-1], len(ids) - body)
    if spec.max_windows and len(starts) > spec.max_windows:
        # keep the first and last windows and evenly spaced ones between
        n = spec.max_windows
        pick = [round(i * (len(starts) - 1) / (n - 1)) for i in range(n)] if n > 1 else [0]
        starts = [starts[i] for i in sorted(set(pick))]
    return [ids[s : s + body] for s in starts]


def make_windows(
    docs: Sequence[Sequence[int]],
    spec: WindowSpec,
    add_special: Callable[[list[int]], list[int]],
) -> tuple[list[list[int]], list[int]]:
    """Windows of every document and, for each window, the index of its document."""
    windows: list[list[int]] = []
    owner: list[int] = []
    for d, ids in enumerate(docs):
        for w in split_windows(ids, spec):
            windows.append(add_special(w))
            owner.append(d)
    return windows, owner


def aggregate_logits(
    logits: np.ndarray, owner: Sequence[int], n_docs: int, how: str = "mean"
) -> np.ndarray:
    """Combine window logits into one row per document (mean or element-wise max)."""
    owner_arr = np.asarray(owner, dtype=np.int64)
    out = np.zeros((n_docs, logits.shape[1]), dtype=np.float64)
    if how == "max":
        out.fill(-np.inf)
        np.maximum.at(out, owner_arr, logits)
    else:
        np.add.at(out, owner_arr, logits)
        out /= np.maximum(np.bincount(owner_arr, minlength=n_docs), 1)[:, None]
    return out


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence ([CLS] / [SEP], <s> / </s>).

    transformers 5 tokenizers no longer expose ``build_inputs_with_special_tokens``; encoding
    a probe word with and without special tokens gives the same answer for any model.
    """
    probe = "hello"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for pos in range(len(full) - len(bare) + 1):
        if full[pos : pos + len(bare)] == bare:
            return list(full[:pos]), list(full[pos + len(bare) :])
    raise ValueError("cannot locate the text inside the tokenizer's special-token template")
