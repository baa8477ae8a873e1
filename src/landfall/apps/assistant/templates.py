"""Answer templates: vetted responses per intent, mined from the training responses and kept
in an editable file (``RUN/templates.jsonl``, one template a line) that a person reviews and
changes; the assistant reads it at load time, so an edit needs no rebuild.

Mining: for each intent, the responses nearest the intent's mean MiniLM embedding (the most
central ones: typical wording, no outlier), with their own request's entity value replaced
by its slot.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from landfall.apps.assistant.knowledge import json_objects
from landfall.apps.assistant.slots import slotify
from landfall.errors import DataError, LandfallError
from landfall.runs import write_text

FILE = "templates.jsonl"


@dataclass
class Template:
    intent: str
    text: str
    source: str = ""  # where it was mined from ("train line 812") or "edited"
    centrality: float = 0.0  # cosine with the intent's mean response embedding


def mine(rows, embedder, per_intent: int = 1) -> list[Template]:
    """The ``per_intent`` most central responses of each intent."""
    by_intent: dict[str, list] = {}
    for r in rows:
        by_intent.setdefault(r.intent, []).append(r)
    out = []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        vectors = embedder.embed([r.response for r in group])
        centre = vectors.mean(0)
        centre /= max(float(np.linalg.norm(centre)), 1e-9)
        sims = vectors @ centre
        for j in np.argsort(-sims)[:per_intent]:
            r = group[int(j)]
            out.append(Template(intent, slotify(r.response, r.entity_type, r.entity_value),
                                f"train line {r.line}", round(float(sims[j]), 4)))
    return out


def write(path: str | Path, templates: list[Template]) -> Path:
    return write_text(path, "".join(json.dumps(asdict(t), ensure_ascii=False) + "\n"
                                    for t in templates))


def read(path: str | Path, known_intents: set[str] | None = None) -> dict[str, list[Template]]:
    """The templates by intent; a line that does not parse, lacks a field or names an intent
    the classifier does not know is refused with its file, line and field."""
    p = Path(path)
    if not p.is_file():
        raise LandfallError(f"{p}: the templates file does not exist")
    out: dict[str, list[Template]] = {}
    for line_no, obj in json_objects(p):
        for name in ("intent", "text"):
            if not isinstance(obj.get(name), str) or not obj[name].strip():
                raise DataError("must be a non-empty string", path=str(p), line=line_no,
                                field=name)
        if known_intents is not None and obj["intent"] not in known_intents:
            raise DataError(f"intent {obj['intent']!r} is not one the classifier knows",
                            path=str(p), line=line_no, field="intent")
        extra = set(obj) - {"intent", "text", "source", "centrality"}
        if extra:
            raise DataError(f"unknown field {sorted(extra)[0]!r}", path=str(p), line=line_no,
                            field=sorted(extra)[0])
        out.setdefault(obj["intent"], []).append(Template(
            obj["intent"], obj["text"], str(obj.get("source", "edited")),
            float(obj.get("centrality", 0.0))))
    return out
