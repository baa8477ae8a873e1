"""Annotator votes as soft training targets (``data.vote_fields``, ``train.vote_weight``).

Crowd-labelled sets often keep how many annotators chose each class (Davidson et al. 2017:
columns ``hate_speech``, ``offensive_language``, ``neither`` beside the majority ``class``).
Training on the vote distribution, not only on the majority label, tells the model which
examples annotators disagreed on ("learning from disagreement", Uma et al. 2021; Fornaciari
et al. 2021). No library reads vote columns into targets, hence this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from landfall.data.readers import Example
from landfall.errors import ConfigError, DataError


def parse_vote_fields(spec: str) -> dict[str, str]:
    """``"a,b=col_b"`` -> {label: column}: an entry is a label whose votes sit in the column
    of the same name, or ``label=column``."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        label, _, column = entry.partition("=")
        label, column = label.strip(), (column.strip() or label.strip())
        if not label or label in out:
            raise ConfigError(f"data.vote_fields: entry {entry!r} is empty or repeats a label")
        out[label] = column
    return out


def vote_columns(spec: str) -> tuple[str, ...]:
    """The columns ``data.vote_fields`` reads (to ask the reader for)."""
    return tuple(parse_vote_fields(spec).values())


def vote_targets(
    examples: Sequence[Example], labels: Sequence[str], spec: str
) -> list[list[float]]:
    """Each example's vote share per class, in ``labels`` order (each row sums to 1)."""
    columns = parse_vote_fields(spec)
    missing = [x for x in labels if x not in columns]
    unknown = [x for x in columns if x not in labels]
    if missing or unknown:
        raise ConfigError(f"data.vote_fields must name every label once: missing {missing}, "
                          f"not a label {unknown} (labels: {list(labels)})")
    out = []
    for e in examples:
        row = []
        for label in labels:
            raw = (e.extra or {}).get(columns[label])
            try:
                value = float(raw)
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value) or value < 0:
                raise DataError(f"vote count must be a number >= 0, got {raw!r}",
                                path=e.source, line=e.line, field=columns[label])
            row.append(value)
        total = sum(row)
        if total <= 0:
            raise DataError("no votes: every vote column is 0", path=e.source, line=e.line,
                            field=",".join(columns.values()))
        out.append([v / total for v in row])
    return out
