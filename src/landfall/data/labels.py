"""The label set of a training set, and labels as class indices."""

from __future__ import annotations

import re
from collections.abc import Sequence

from landfall.data.readers import Example
from landfall.errors import DataError

_INTEGER = re.compile(r"^[+-]?\d+$")
_MAX_LISTED = 20


def infer_labels(examples: Sequence[Example], *, source: str = "<data>") -> list[str]:
    """The sorted set of labels (numerically when all are integers); needs two or more."""
    if not examples:
        raise DataError("no examples", path=source)
    seen: set[str] = set()
    for example in examples:
        if example.label is None:
            raise DataError("missing label", path=example.source, line=example.line)
        seen.add(example.label)
    if len(seen) < 2:
        (only,) = seen
        raise DataError(
            f"single-class training set: every example has label {only!r}; "
            "need at least two classes",
            path=source,
        )
    if all(_INTEGER.match(label) for label in seen):
        return sorted(seen, key=lambda label: (int(label), label))
    return sorted(seen)


def encode_labels(
    examples: Sequence[Example], labels: Sequence[str], *, label_field: str = "label"
) -> list[int]:
    """Each example's label as its index in ``labels``."""
    index = {label: i for i, label in enumerate(labels)}
    encoded: list[int] = []
    for example in examples:
        if example.label is None:
            raise DataError(
                "missing label", path=example.source, line=example.line, field=label_field
            )
        position = index.get(example.label)
        if position is None:
            raise DataError(
                f"unknown label {example.label!r}; known labels: {describe_labels(labels)}",
                path=example.source,
                line=example.line,
                field=label_field,
            )
        encoded.append(position)
    return encoded


def describe_labels(labels: Sequence[str]) -> str:
    """The labels as a short readable list (the first few when there are many)."""
    shown = ", ".join(repr(label) for label in labels[:_MAX_LISTED])
    if len(labels) > _MAX_LISTED:
        shown += f", ... ({len(labels)} in all)"
    return shown
