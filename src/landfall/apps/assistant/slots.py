"""Slots: the ``{{Placeholder}}`` names in answer templates, filled from the request's
entities and from the business profile, and left as they are where nothing fills them
(kept and counted, never an error).

Entities are found with what the training data teaches: the values tagged per entity type in
its rows (account types, cities, countries) become a gazetteer, and identifiers (order and
invoice numbers, amounts, names after a title) follow fixed patterns. A mined template has
its source row's own entity value replaced by that type's slot, so that the next customer's
value goes there.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from landfall.errors import LandfallError

SLOT = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
# entity type (Bitext's entity_type) -> the slot it fills
TYPE_SLOT = {"order_id": "Order Number", "invoice_id": "Invoice Number",
             "person_name": "Person Name", "account_type": "Account Type",
             "delivery_city": "Delivery City", "delivery_country": "Delivery Country",
             "refund_amount": "Refund Amount"}
# the same slot under the other names Bitext's writers used for it
ALIASES = {"Order Number": ("Order Number Anonymized", "Purchase ID Anonymized",
                            "Order ID Anonymized", "Order Number", "Order ID"),
           "Invoice Number": ("Invoice Number Anonymized", "Bill Number Anonymized",
                              "Invoice Number", "Invoice ID")}
PATTERNS = {
    "order_id": re.compile(r"(?<![\w#])(\d{5,18})(?!\w)"),
    "invoice_id": re.compile(r"(#\d{3,10})(?!\w)"),
    "person_name": re.compile(r"\b((?:Mr|Mrs|Ms|Miss|Dr)\.?\s+[A-Z][a-z]+)"),
    "refund_amount": re.compile(r"(\$\s?\d+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?\s?(?:dollars|"
                                r"euros|usd|eur|\$))", re.IGNORECASE),
}
GAZETTEER_TYPES = ("account_type", "delivery_city", "delivery_country")


def slots_in(text: str) -> list[str]:
    return [m.group(1) for m in SLOT.finditer(text)]


@dataclass
class EntityFinder:
    """Finds the entities of a request: gazetteers from training tags, patterns for ids."""

    gazetteer: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def learn(cls, tagged: Iterable[tuple[str, str]]) -> EntityFinder:
        values: dict[str, set[str]] = {}
        for etype, value in tagged:
            if etype in GAZETTEER_TYPES and value.strip():
                values.setdefault(etype, set()).add(value.strip())
        return cls({t: sorted(v, key=lambda s: (-len(s), s)) for t, v in values.items()})

    def find(self, text: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for etype, values in self.gazetteer.items():
            for v in values:
                if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text, re.IGNORECASE):
                    found[etype] = v
                    break
        for etype, pattern in PATTERNS.items():
            m = pattern.search(text)
            if m and etype not in found:
                found[etype] = m.group(1).strip()
        if "invoice_id" in found and found.get("order_id") == found["invoice_id"].lstrip("#"):
            del found["order_id"]
        return found

    def to_json(self) -> dict:
        return {"gazetteer": self.gazetteer}


def slotify(text: str, entity_type: str, entity_value: str) -> str:
    """A response with its own request's entity value replaced by the type's slot."""
    slot = TYPE_SLOT.get(entity_type)
    value = entity_value.strip()
    if not slot or len(value) < 2:
        return text
    if entity_type in ("order_id", "invoice_id"):  # the writers padded ids: 4587345 -> 00004587345
        core = re.escape(value.lstrip("#0") or value)
        return re.sub(rf"(?<!\w)#?0*{core}(?!\w)", "{{" + slot + "}}", text)
    return re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "{{" + slot + "}}", text)


def read_profile(path: str | Path) -> dict[str, str]:
    """A business profile: slot name = value (TOML, or a JSON object)."""
    p = Path(path)
    if not p.is_file():
        raise LandfallError(f"assistant.profile: {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LandfallError(f"{p}: cannot parse the business profile: {exc}") from None
    bad = [k for k, v in data.items() if not isinstance(v, str | int | float)]
    if bad:
        raise LandfallError(f"{p}: profile field {bad[0]!r} must be a string or a number "
                            "(slot name = value)")
    return {str(k): str(v) for k, v in data.items()}


def fill(text: str, entities: dict[str, str], profile: dict[str, str]) -> tuple[str, list[str]]:
    """(text with every fillable slot filled, the slots left as they are)."""
    values = dict(profile)
    for etype, value in entities.items():
        slot = TYPE_SLOT.get(etype)
        if slot:
            for name in (slot, *ALIASES.get(slot, ())):
                values[name] = value
    lowered = {k.lower(): v for k, v in values.items()}
    left: list[str] = []

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name.lower() in lowered:
            return lowered[name.lower()]
        left.append(name)
        return m.group(0)

    return SLOT.sub(sub, text), left
