"""Word-level tags of the command parser, and the structure decoder (tags → plan).

The parser labels every word of a command with one tag: the role it plays in BabyAI's
grammar and its canonical value (``V-pickup`` for "grab", ``C-red`` for "crimson", ``NEXT``
for "beside", ``O`` for filler). ``decode`` turns the tag sequence into an instruction tree
deterministically, so every tree it returns is well-formed by construction. The rule
baseline (``landfall.baseline.babyai_rules``) tags with BabyAI's own 31-word lexicon and
shares this decoder.
"""

from __future__ import annotations

import re

from landfall.errors import LandfallError
from landfall.tasks.command_parser.grammar import COLORS, LOCS, TYPES, Act, Obj, Plan, Seq

TAGS = (
    ["O", "V-goto", "V-pickup", "V-open", "V-putnext", "D-the", "D-a"]
    + [f"C-{c}" for c in COLORS]
    + [f"T-{t}" for t in TYPES] + ["T-object"]
    + [f"L-{loc}" for loc in LOCS]
    + ["NEXT", "J-and", "J-before", "J-after", "J-pre-before", "J-pre-after", "SEP", "IT"]
)
TAG_ID = {t: i for i, t in enumerate(TAGS)}

_WORD = re.compile(r"[a-z0-9]+|[,;:]")


class ParseError(LandfallError):
    """A command whose tags do not make an instruction tree (why is in the message)."""


def words_of(text: str) -> list[str]:
    """Lower-cased words of a command; commas (and ; :) are kept as "," (they can separate
    clauses), other punctuation is dropped."""
    return ["," if w in ",;:" else w for w in _WORD.findall(text.lower())]


def decode(words: list[str], tags: list[str]) -> Plan:
    """The instruction tree that a tag sequence spells (ParseError if none)."""
    items = [(w, t) for w, t in zip(words, tags, strict=True) if t != "O"]
    if not items:
        raise ParseError("no action or object words in the command")
    state = {"verb": None, "obj": None}
    return _seq(items, state)


def _seq(items, state) -> Plan:
    # "after you B, A": a connector with nothing before it opens a condition clause
    if items and items[0][1] in ("J-pre-before", "J-pre-after", "J-before", "J-after"):
        kind = "before" if items[0][1] in ("J-pre-before", "J-before") else "after"
        rest = items[1:]
        sep = next((i for i, (_, t) in enumerate(rest) if t == "SEP"), None)
        if sep is None:
            raise ParseError(f"'{items[0][0]} ...' needs a second clause after a comma")
        first = _and(rest[:sep], state)  # written first, the condition
        main = _seq(rest[sep + 1:], state)
        return Seq(kind, main, first)
    infix = [i for i, (_, t) in enumerate(items) if t in ("J-before", "J-after")]
    items = [it for it in items if it[1] != "SEP"] if not infix else items
    if not infix:
        return _and(items, state)
    p = infix[-1]
    kind = "before" if items[p][1] == "J-before" else "after"
    left = [it for it in items[:p] if it[1] != "SEP"]
    right = [it for it in items[p + 1:] if it[1] != "SEP"]
    if not left or not right:
        raise ParseError(f"'{items[p][0]}' joins two actions, but one side is empty")
    a = _seq(left, state)
    return Seq(kind, a, _and(right, state))


def _and(items, state) -> Plan:
    parts, cur = [], []
    for it in items:
        if it[1] == "J-and":
            if cur:
                parts.append(cur)
            cur = []
        elif it[1] != "SEP":
            cur.append(it)
    if cur:
        parts.append(cur)
    if not parts:
        raise ParseError("an empty clause")
    acts = [_action(p, state) for p in parts]
    plan = acts[-1]
    for act in reversed(acts[:-1]):
        plan = Seq("and", act, plan)
    return plan


def _action(items, state) -> Act:
    verbs = [t[2:] for _, t in items if t.startswith("V-")]
    verb = verbs[0] if verbs else state["verb"]
    if verb is None:
        words = " ".join(w for w, _ in items)
        raise ParseError(f"no action (go to, pick up, open, put next to) in '{words}'")
    state["verb"] = verb
    if verb == "putnext":
        nxt = next((i for i, (_, t) in enumerate(items) if t == "NEXT"), None)
        if nxt is None:
            raise ParseError("'put' needs a second object: put X next to Y")
        move = _obj(items[:nxt], state, "the object to move")
        fixed = _obj(items[nxt + 1:], state, "the object to put it next to")
        state["obj"] = move
        return Act(verb, move, fixed)
    obj = _obj(items, state, "the object")
    state["obj"] = obj
    return Act(verb, obj)


def _obj(items, state, what: str) -> Obj:
    tags = [t for _, t in items]
    if "IT" in tags and not any(t[:2] in ("C-", "T-") for t in tags):
        if state["obj"] is None:
            raise ParseError(f"'it' has nothing to refer to ({what})")
        return state["obj"]
    first = {}
    for t in tags:
        head, _, val = t.partition("-")
        if head in ("D", "C", "T", "L"):
            first.setdefault(head, val)
    if not ({"C", "T", "L"} & set(first)):
        raise ParseError(f"which object? no colour, type or place names {what}")
    typ = first.get("T")
    return Obj(None if typ in (None, "object") else typ, first.get("C"), first.get("L"),
               first.get("D", "a"))
