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
    """The instruction tree that a tag sequence spells (ParseError if none). The tags of
    sequencing words are first checked against their wording (``read_connectors``)."""
    tags = read_connectors(words, read_idioms(words, tags))
    items = [(w, t, i) for i, (w, t) in enumerate(zip(words, tags, strict=True))
             if t != "O"]  # (word, tag, position in the command)
    if not items:
        raise ParseError("no action or object words in the command")
    state = {"verb": None, "obj": None, "words": words}
    return _seq(items, state)


# Four idioms of the hand-written sets that the tagger read wrongly with confidence, each a wrong
# action executed; a closed class, so written here (like the sequencing words below):
# - "right" before a word of nearness is an intensifier ("put it right beside the key"), not
#   the agent's right (read as a place, it picks another object); "on your right" keeps it;
# - "go get / go fetch / go grab X" asks for X itself: a pick-up, not a go-to;
# - "get yourself (next) to X" is a go-to, not a pick-up;
# - "let go (of it)" is the drop that a put already ends with, not a go-to.
NEARNESS = {"beside", "by", "next", "against", "up", "near", "alongside", "close", "in"}


def read_idioms(words: list[str], tags: list[str]) -> list[str]:
    tags = list(tags)
    for i, w in enumerate(words[:-1]):
        nxt = words[i + 1]
        if w == "right" and nxt in NEARNESS and (i == 0 or words[i - 1] not in (
                "your", "the", "to", "my")):
            tags[i] = "O"
        elif w == "go" and nxt in ("get", "fetch", "grab"):
            tags[i], tags[i + 1] = "O", "V-pickup"
        elif w == "get" and nxt == "yourself":
            tags[i] = "V-goto"
        elif w == "let" and nxt == "go":
            end = i + 2 + (words[i + 2:i + 4] == ["of", "it"]) * 2
            tags[i:end] = ["O"] * (end - i)
    return tags


# --- sequencing words -------------------------------------------------------------------------
# Written by hand, not learned: which way a sequencing word points depends on the words around
# it ("after you open the door" puts the opening first, "after that" the clause before it),
# and the tagger learned these from a few templates. A wrong direction executes the command
# in reverse, silently; the people's phrases for it are a small closed class, read here
# exactly. Words outside it keep the tagger's tags.
FORWARD = {"then", "afterwards", "afterward", "later", "subsequently"}  # A <w> B: A first
# ("next" too, when it is not "next to")
CONDITION = {"after", "once", "when", "whenever"}  # B <w> you A / <w> you A, B: A first
ANAPHORS = {"that", "this", "which", "done", "finished", "complete", "completed", "it",
            "over", "ready"}  # "after that", "when you're done": the clause before is first
FIRST_MARKERS = {"anything", "everything", "else"}  # "before anything else": a "first"
# never an action in BabyAI, though a tagger may read one ("when you're done" as "go to"):
# inside a connector's clause they are the clause, so the order cannot turn round
STATES = {"done", "finished", "complete", "completed", "ready"}
_CONTENT = ("V-", "D-", "C-", "T-", "L-")


def _is_content(tag: str) -> bool:
    return tag[:2] in _CONTENT or tag == "NEXT"


def read_connectors(words: list[str], tags: list[str]) -> list[str]:
    """``tags`` with the sequencing words' tags set from their wording: "then" joins A then
    B; "after/once/when/as soon as you A" makes A the condition (first), infix or at the
    start; "after that", "once that's done", "when you're done" mean "then"; "before you B"
    puts B second and "before that" first; "but first A" puts A first; "and" beside one of
    them is filler. Commas after a sentence-initial condition separate it from the rest."""
    tags = list(tags)
    n = len(words)
    i = 0
    while i < n:
        w = words[i]
        if w == "but" and i + 1 < n and words[i + 1] in FORWARD | CONDITION | {
                "first", "before", "as", "only"}:
            tags[i] = "O"  # "but first", "but before that": the next word says it
            i += 1
            continue
        if w == "and":
            nxt = next((x for x in words[i + 1:i + 3] if x not in ("only", ",")), "")
            if nxt in FORWARD | CONDITION | {"before", "as"} or nxt == "first":
                tags[i] = "O"
            elif not _is_content(tags[i]):
                tags[i] = "J-and"
            i += 1
            continue
        if w == "next" and words[i + 1:i + 2] != ["to"] and tags[i] != "NEXT" or (
                w == "next" and i + 1 < n and words[i + 1] == ","):
            w = "then"  # "A. Next, B" (not "next to")
        if w in FORWARD:
            tags[i] = "J-before" if any(_is_content(t) for t in tags[:i]) else "O"
            i += 1
            continue
        if w == "first":
            before = any(_is_content(t) for t in tags[:i])
            after = any(_is_content(t) for t in tags[i + 1:])
            but = i > 0 and words[i - 1] == "but"
            tags[i] = "J-after" if (before and after and but) else "O"
            i += 1
            continue
        soon = w == "as" and words[i + 1:i + 3] == ["soon", "as"]
        if not (soon or w in CONDITION or w == "before"):
            i += 1
            continue
        start = i + (3 if soon else 1)
        j = start  # the connector's own clause: to a comma or an action/object word
        while j < n and words[j] != "," and (not _is_content(tags[j]) or words[j] in STATES):
            j += 1
        clause = words[start:j]
        for k in range(i + 1, j):
            tags[k] = "O"
        initial = not any(_is_content(t) for t in tags[:i])
        if not any(_is_content(t) for t in tags[j:]):
            tags[i] = "O"  # nothing follows: "... when you can", "... once"
        elif w == "before" and any(x in FIRST_MARKERS for x in clause):
            tags[i] = "O"  # "before anything else": A comes first, as written
        elif any(x in ANAPHORS for x in clause) and not (j < n and tags[j] == "IT"):
            # "after that, B" / "before that, B": points back at the clause before
            tags[i] = "O" if initial else ("J-after" if w == "before" else "J-before")
        else:
            kind = "before" if w == "before" else "after"
            tags[i] = f"J-pre-{kind}" if initial else f"J-{kind}"
            if initial and "SEP" not in tags[j:]:  # the tagger's separator, else the
                comma = next((k for k in range(j, n) if words[k] == ","), None)  # next comma
                if comma is not None:
                    tags[comma] = "SEP"
        i = j
    # a comma is a separator only after a sentence-initial condition
    pre = any(t.startswith("J-pre") for t in tags)
    return [("O" if (t == "SEP" and not pre) else t) for t in tags]


def _seq(items, state) -> Plan:
    # "after you B, A": a connector with nothing before it opens a condition clause
    if items and items[0][1] in ("J-pre-before", "J-pre-after", "J-before", "J-after"):
        kind = "before" if items[0][1] in ("J-pre-before", "J-before") else "after"
        rest = items[1:]
        sep = next((i for i, (_, t, *_) in enumerate(rest) if t == "SEP"), None)
        if sep is None:
            raise ParseError(f"'{items[0][0]} ...' needs a second clause after a comma")
        first = _and(rest[:sep], state)  # written first, the condition
        main = _seq(rest[sep + 1:], state)
        return Seq(kind, main, first)
    infix = [i for i, (_, t, *_) in enumerate(items) if t in ("J-before", "J-after")]
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


CARRY_WORDS = {"put", "place", "move", "bring", "carry", "take", "drop", "set", "leave",
               "haul", "drag", "push", "get", "fetch", "moved", "placed", "left", "dropped"}
TOWARD_WORDS = {"to", "over", "toward", "towards", "at", "by", "beside", "near", "alongside"}


def _groups(items) -> list[list[tuple]]:
    """The object descriptions of a clause: runs of determiner/colour/type/place words (a
    determiner or type after a type starts another; a colour after a type too, unless no
    type follows it: "the ball that is red"); "it" is one on its own."""
    groups: list[list] = []
    cur: list = []
    for k, it in enumerate(items):
        head = it[1].split("-")[0]
        if it[1] == "IT":
            if cur:
                groups.append(cur)
            groups.append([it])
            cur = []
            continue
        if head not in ("D", "C", "T", "L"):
            continue
        has_type = any(t[0] == "T" for _, t, _p in cur)
        type_follows = any(x[1][0] == "T" for x in items[k + 1:])
        if cur and has_type and (head in ("D", "T") or (head == "C" and type_follows)):
            groups.append(cur)
            cur = []
        cur.append(it)
    if cur:
        groups.append(cur)
    return groups


def _action(items, state) -> Act:
    verbs = [(i, t[2:]) for i, (_, t, *_) in enumerate(items) if t.startswith("V-")]
    if len({v for _, v in verbs}) > 1:
        # "go get the ball", "go and grab": the go-to leads into the other action
        if verbs[0][1] == "goto" and verbs[1][0] == verbs[0][0] + 1:
            items = items[:verbs[0][0]] + items[verbs[0][0] + 1:]
            verbs = [(i - 1, v) for i, v in verbs[1:]]
        if len({v for _, v in verbs}) > 1:
            said = " ".join(items[i][0] for i, _ in verbs)
            raise ParseError(f"two actions ({said}) with nothing saying how they go together")
    verb = verbs[0][1] if verbs else state["verb"]
    verb_word = items[verbs[0][0]][0] if verbs else ""
    nxt = next((i for i, (_, t, *_) in enumerate(items) if t == "NEXT"), None)
    groups = _groups(items)
    if verb != "putnext" and (verb_word in CARRY_WORDS or not verbs):
        # where an object should end up, in other words: "bring X over to Y", "X should end
        # up beside Y", "move X so it sits by Y"
        if nxt is not None and _groups(items[:nxt]) and _groups(items[nxt + 1:]):
            verb = "putnext"
        elif len(groups) == 2 and verbs and _toward(items, groups, state["words"]):
            verb = "putnext"
            first_end = items.index(groups[0][-1])
            nxt = first_end + 1
            items = items[:nxt] + [("to", "NEXT", -1)] + items[nxt:]
    if verb is None:
        words = " ".join(w for w, *_ in items)
        raise ParseError(f"no action (go to, pick up, open, put next to) in '{words}'")
    state["verb"] = verb
    if verb == "putnext":
        nxt = next((i for i, (_, t, *_) in enumerate(items) if t == "NEXT"), None)
        if nxt is None:
            raise ParseError("'put' needs a second object: put X next to Y")
        left = [it for it in items[:nxt] if not (it[1] == "IT" and _groups(
            [x for x in items[:nxt] if x[1] != "IT"]))]  # "move X so it sits by Y"
        move = _obj(left, state, "the object to move")
        fixed = _obj(items[nxt + 1:], state, "the object to put it next to")
        state["obj"] = move
        return Act(verb, move, fixed)
    if len(groups) > 1:
        said = " / ".join(" ".join(w for w, *_ in g) for g in groups)
        raise ParseError(f"one action with two objects ({said}): which one?"
                         + (" (BabyAI cannot name an object by what it is next to)"
                            if nxt is not None else ""))
    obj = _obj(items, state, "the object")
    state["obj"] = obj
    return Act(verb, obj)


def _toward(items, groups, words) -> bool:
    """Whether a word such as "to" / "over" / "beside" sits between the two objects."""
    a, b = groups[0][-1], groups[1][0]
    return any(w in TOWARD_WORDS for w in words[a[2] + 1:b[2]])


def _obj(items, state, what: str) -> Obj:
    tags = [t for _, t, _p in items]
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
