"""The assistant's rows: one support pair (request, written response, intent, tagged entity)
per line of the Bitext-shaped file; the build's seeded splits (train / tune / validation,
stratified by intent); out-of-domain texts for the classifier's ``out_of_scope`` class; and
the generator's training prompts (retrieved passages included)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from landfall.config import Config, expand_env
from landfall.data.readers import read_examples
from landfall.data.splits import stratified_split
from landfall.errors import DataError
from landfall.runs import write_text

OOS = "out_of_scope"
HARMFUL = "harmful"
# CLINC150 intents that a customer-support assistant of an online shop answers (orders,
# payments, accounts, cancellations) or that are conversational acts: never used as
# out-of-scope training examples
CLINC_IN_SCOPE = {"order_status", "order", "cancel", "pay_bill", "bill_due", "bill_balance",
                  "card_declined", "account_blocked", "freeze_account", "change_user_name",
                  "user_name", "greeting", "thank_you", "goodbye", "yes", "no", "maybe",
                  "repeat", "are_you_a_bot", "what_can_i_ask_you", "report_fraud",
                  "transactions", "spending_history", "lost_luggage"}


@dataclass
class Row:
    request: str
    response: str
    intent: str
    entity_type: str = ""
    entity_value: str = ""
    line: int = 0

    def to_json(self) -> dict:
        return {"instruction": self.request, "response": self.response, "intent": self.intent,
                "entity_type": self.entity_type, "entity_value": self.entity_value,
                "line": self.line}


def _s(value) -> str:
    return "" if value is None or str(value).lower() == "nan" else str(value)


def read_rows(source: str | Path, cfg: Config, require_response: bool = False) -> list[Row]:
    """Rows of a Bitext-shaped file. ``out_of_scope`` and ``harmful`` rows may have no
    response; any other row needs one when ``require_response``."""
    a = cfg.assistant
    fields = tuple(f for f in (a.response_field, a.entity_type_field, a.entity_value_field)
                   if f)
    rows = []
    for ex in read_examples(str(source), text_field=a.request_field, label_field=a.intent_field,
                            extra_fields=fields):
        extra = ex.extra or {}
        response = _s(extra.get(a.response_field))
        if require_response and not response.strip() and ex.label not in (OOS, HARMFUL):
            raise DataError("response is empty", path=ex.source, line=ex.line,
                            field=a.response_field)
        rows.append(Row(ex.text, response, str(ex.label), _s(extra.get(a.entity_type_field)),
                        _s(extra.get(a.entity_value_field)), ex.line))
    return rows


def holdout(cfg: Config) -> set[str]:
    return {x.strip() for x in cfg.assistant.holdout_intents.split(",") if x.strip()}


@dataclass
class Splits:
    train: list[Row]
    tune: list[Row]
    validation: list[Row]


def split_rows(rows: list[Row], cfg: Config) -> Splits:
    """Seeded, stratified by intent: validation first, then the tuning rows from the rest."""
    a = cfg.assistant

    class _Ex:  # stratified_split reads .label
        def __init__(self, i: int) -> None:
            self.i, self.label = i, rows[i].intent

    rest, val = stratified_split([_Ex(i) for i in range(len(rows))], a.validation_fraction,
                                 a.seed)
    frac = a.tune_fraction / (1 - a.validation_fraction)
    train, tune = stratified_split(rest, frac, a.seed + 1)
    pick = lambda xs: [rows[x.i] for x in sorted(xs, key=lambda x: x.i)]  # noqa: E731
    return Splits(pick(train), pick(tune), pick(val))


def write_rows(path: str | Path, rows: list[Row]) -> Path:
    return write_text(path, "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n"
                                    for r in rows))


def read_split(path: str | Path) -> list[Row]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(Row(d["instruction"], d["response"], d["intent"], d["entity_type"],
                           d["entity_value"], d["line"]))
    return out


def out_of_domain(cfg: Config, seed: int) -> list[str]:
    """CLINC150 texts outside customer support: its own oos queries and ``oos_per_intent``
    texts of each intent not in ``CLINC_IN_SCOPE`` (seeded)."""
    m = cfg.members
    if not m.oos_data or m.oos_per_intent == 0:
        return []
    source = expand_env(m.oos_data, "members.oos_data")
    by_intent: dict[str, list[str]] = {}
    for ex in read_examples(source, text_field="text", label_field="intent"):
        if ex.label not in CLINC_IN_SCOPE:
            by_intent.setdefault(str(ex.label), []).append(ex.text)
    rng = random.Random(seed)  # seeded sampling, not security  # nosec B311
    out = []
    for intent in sorted(by_intent):
        texts = by_intent[intent]
        out += texts if intent == "oos" else rng.sample(texts, min(m.oos_per_intent,
                                                                   len(texts)))
    return out


def asdict_rows(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
