"""A seeded, stratified train/validation split."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from landfall.data.readers import Example
from landfall.errors import LandfallError

T = TypeVar("T", bound=Example)


def stratified_split(examples: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, validation), validation holding ``fraction`` of the examples per class.

    The split is stratified by label unless some class has fewer than two examples (or some
    example has no label); then it is a plain seeded random split.
    """
    from sklearn.model_selection import train_test_split

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise LandfallError(f"validation fraction must be a number in (0, 1), got {fraction!r}")
    if not 0.0 < fraction < 1.0:
        raise LandfallError(
            f"validation fraction must be between 0 and 1 (exclusive), got {fraction}"
        )
    total = len(examples)
    n_validation = math.ceil(fraction * total)
    n_train = total - n_validation
    if n_train < 1 or n_validation < 1:
        raise LandfallError(
            f"cannot split {total} example(s) with validation fraction {fraction}: "
            f"that leaves {n_train} for training and {n_validation} for validation"
        )
    labels = [example.label for example in examples]
    counts = Counter(labels)
    stratify: list[str | None] | None = labels
    if None in counts or min(counts.values()) < 2:
        stratify = None
    elif n_validation < len(counts) or n_train < len(counts):
        raise LandfallError(
            f"validation fraction {fraction} of {total} examples gives {n_validation} for "
            f"validation and {n_train} for training, fewer than the {len(counts)} classes "
            "that a stratified split needs in each; change the fraction or add examples"
        )
    train, validation = train_test_split(
        list(examples), test_size=n_validation, stratify=stratify, random_state=seed, shuffle=True
    )
    return list(train), list(validation)
