"""Answer templates: vetted responses per intent, mined from the training responses and kept
in an editable file (``RUN/templates.jsonl``, one template a line) that a person reviews and
changes; the assistant reads it at load time, so an edit needs no rebuild.

Mining: for each intent, its most central responses, with their own request's entity value
replaced by its slot. Central by ROUGE-L (default): the responses sharing the most wording
with the intent's other responses, i.e. the answer a reader of any one of them expects; or
by embedding: those nearest the intent's mean MiniLM embedding (typical meaning). Both leave
out the outliers; on the Bitext split the ROUGE-L choice scores 3 ROUGE-L points higher
against held-out references (bench/README.md, "Assistant").
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
    centrality: float = 0.0  # mean ROUGE-L with the intent's other responses, or cosine
    # with their mean embedding (assistant.template_centrality)


MAX_GROUP = 300  # responses per intent compared by ROUGE-L (a seeded sample beyond that)


def centrality(texts: list[str], embedder, by: str = "rougeL") -> np.ndarray:
    """Each text's centrality in its group (higher = more typical)."""
    if by == "rougeL":
        from landfall.tasks.causal_lm.metrics import rougeL_matrix

        m = rougeL_matrix(texts)
        np.fill_diagonal(m, 0.0)
        return m.sum(1) / max(len(texts) - 1, 1)
    vectors = embedder.embed(texts)
    centre = vectors.mean(0)
    centre /= max(float(np.linalg.norm(centre)), 1e-9)
    return vectors @ centre


def agreement(texts: list[str]) -> tuple[int, float]:
    """(the most central of ``texts`` by ROUGE-L, its mean ROUGE-L with the others): retrieved
    answers that agree are answered with as written (route "knowledge")."""
    if len(texts) < 2:
        return 0, 0.0
    c = centrality(texts, None, "rougeL")
    i = int(np.argmax(c))
    return i, float(c[i])


def mine(rows, embedder, per_intent: int = 1, by: str = "rougeL",
         seed: int = 0) -> list[Template]:
    """The ``per_intent`` most central responses of each intent (``by``: rougeL or
    embedding)."""
    import random

    by_intent: dict[str, list] = {}
    for r in rows:
        by_intent.setdefault(r.intent, []).append(r)
    out = []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        if by == "rougeL" and len(group) > MAX_GROUP:
            rng = random.Random(seed)  # seeded sampling, not security  # nosec B311
            group = rng.sample(group, MAX_GROUP)
        sims = centrality([r.response for r in group], embedder, by)
        for j in np.argsort(-sims, kind="stable")[:per_intent]:
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
