"""Seeded, stratified train/validation splits: row by row, or in blocks of adjacent rows."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TypeVar

from landfall.data.readers import Example
from landfall.errors import LandfallError

T = TypeVar("T", bound=Example)


def _sizes(total: int, fraction: float) -> tuple[int, int]:
    """(train, validation) sizes of a split of ``total`` examples; bad fractions fail clearly."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise LandfallError(f"validation fraction must be a number in (0, 1), got {fraction!r}")
    if not 0.0 < fraction < 1.0:
        raise LandfallError(
            f"validation fraction must be between 0 and 1 (exclusive), got {fraction}"
        )
    n_validation = math.ceil(fraction * total)
    n_train = total - n_validation
    if n_train < 1 or n_validation < 1:
        raise LandfallError(
            f"cannot split {total} example(s) with validation fraction {fraction}: "
            f"that leaves {n_train} for training and {n_validation} for validation"
        )
    return n_train, n_validation


def stratified_split(examples: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, validation), validation holding ``fraction`` of the examples per class.

    The split is stratified by label unless some class has fewer than two examples (or some
    example has no label); then it is a plain seeded random split.
    """
    from sklearn.model_selection import train_test_split

    total = len(examples)
    n_train, n_validation = _sizes(total, fraction)
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


def blocked_split(
    examples: Sequence[T], fraction: float, seed: int, block: int
) -> tuple[list[T], list[T]]:
    """(train, validation) like :func:`stratified_split`, but moving whole blocks of ``block``
    adjacent rows of one class (same ``source``, rows ``line // block`` alike) to one side.

    Rows near each other in a file are often related: IMDb's files list the reviews of one
    movie together, so a row-by-row split puts a movie's reviews on both sides and a model
    that memorises titles and names is scored on movies it has seen (the official test set
    shares no movie with train). Written by hand because sklearn's ``StratifiedGroupKFold``
    can only hold out ``1 / n_splits``, not an arbitrary fraction: per class, blocks are
    shuffled with ``seed`` and taken until the class's share is reached.
    """
    if block < 1:
        raise LandfallError(f"split block must be a positive number of rows, got {block}")
    _sizes(len(examples), fraction)
    groups: dict[str | None, dict[tuple[str, int], list[int]]] = defaultdict(dict)
    for i, example in enumerate(examples):
        key = (example.source, example.line // block)
        groups[example.label].setdefault(key, []).append(i)
    rng = random.Random(seed)  # seeded data split, not security  # nosec B311
    held: set[int] = set()
    for label in sorted(groups, key=str):
        blocks = list(groups[label].values())
        rng.shuffle(blocks)
        size = sum(len(rows) for rows in blocks)
        target, taken = math.ceil(fraction * size), 0
        for rows in blocks:
            if taken >= target:
                break
            held.update(rows)
            taken += len(rows)
        if taken == size:
            raise LandfallError(
                f"class {label!r} has {size} example(s) in {len(blocks)} block(s) of up to "
                f"{block} rows: none would be left for training; use a smaller data.split_block"
            )
    train = [e for i, e in enumerate(examples) if i not in held]
    validation = [e for i, e in enumerate(examples) if i in held]
    return train, validation
