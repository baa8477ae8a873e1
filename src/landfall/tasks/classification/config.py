"""The classification task's config section ``[oos]``: out-of-scope rejection."""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import help_field as _f
from landfall.config import register_section

OOS_METHODS = ("max_prob", "energy", "class")


@dataclass
class OOSConfig:
    label: str = _f(
        "",
        "Out-of-scope label (e.g. oos for CLINC150): calibrate a rejection rule on validation "
        "and write oos.json (empty = off).",
    )
    method: str = _f(
        "max_prob",
        "How to reject: max_prob (max in-scope softmax probability below a threshold), energy "
        "(logsumexp of the in-scope logits below a threshold) or class (the trained oos class).",
        choices=OOS_METHODS,
    )
    target_recall: float = _f(
        0.0,
        "0 = the threshold maximising the mean of in-scope accuracy and oos recall on "
        "validation; > 0 = the most accurate threshold reaching this oos recall.",
        ge=0.0,
        le=1.0,
    )


register_section("oos", OOSConfig, task="classification")
