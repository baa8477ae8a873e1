"""Behavioural tests in CheckList's three kinds (Ribeiro et al. 2020) on a classifier run.

- Invariance (INV): a typo, a contraction, another first name or place, final punctuation
  must not change the prediction.
- Directional (DIR, sentiment runs): an added clearly negative (positive) clause must not
  move the score towards the positive (negative) class by more than a tolerance.
- Minimum functionality (MFT): short templated cases with a known answer, negation included
  (sentiment runs); for other classifiers, each label's name in a templated request.

Why written here, not with the ``checklist`` package: that package pins spaCy 2 / pattern
and has not been released since 2021; its perturbations are a few lines each.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

import numpy as np

CONTRACTIONS = {"is not": "isn't", "are not": "aren't", "was not": "wasn't", "do not": "don't",
                "does not": "doesn't", "did not": "didn't", "can not": "can't",
                "cannot": "can't", "could not": "couldn't", "would not": "wouldn't",
                "it is": "it's", "that is": "that's", "i am": "i'm", "i have": "i've",
                "you are": "you're", "they are": "they're", "we are": "we're",
                "there is": "there's", "will not": "won't", "have not": "haven't"}
_EXPAND = {v: k for k, v in CONTRACTIONS.items() if k != "cannot"}
FIRST_NAMES = {"M": ["John", "Michael", "David", "James", "Robert", "William", "Richard",
                     "Thomas", "Daniel", "Matthew", "Mark", "Paul", "Steven", "Kevin", "Brian"],
               "F": ["Mary", "Jennifer", "Linda", "Sarah", "Susan", "Karen", "Lisa", "Emily",
                     "Jessica", "Laura", "Anna", "Emma", "Rachel", "Nancy", "Julia"]}
PLACES = ["London", "Paris", "New York", "Tokyo", "Chicago", "Berlin", "Sydney", "Toronto",
          "Boston", "Madrid", "Rome", "Dublin", "Texas", "California", "Florida", "England",
          "France", "Germany", "Canada", "Australia", "Italy", "Spain", "Japan", "Mexico"]
NEG_CLAUSE = " Overall, it was terrible and a complete waste of time."
POS_CLAUSE = " Overall, it was wonderful and I loved every minute of it."
NOUNS = ["movie", "film", "story", "plot", "acting", "cast", "ending", "script", "show",
         "performance"]
POS_ADJ = ["great", "excellent", "wonderful", "amazing", "brilliant", "enjoyable", "fantastic",
           "superb", "good", "beautiful"]
NEG_ADJ = ["terrible", "awful", "boring", "dreadful", "horrible", "bad", "disappointing",
           "dull", "poor", "stupid"]
TEMPLATES = ["The {noun} was {adj}.", "I thought the {noun} was {adj}.", "What a {adj} {noun}.",
             "This {noun} is {adj}."]
NEG_TEMPLATES = ["The {noun} was not {adj}.", "I don't think the {noun} was {adj}.",
                 "This {noun} is not {adj}.", "The {noun} was never {adj}."]
TOLERANCE = 0.05  # DIR: |wrong-way move| below this is noise, not a failure


def _word_pattern(words: Sequence[str]) -> re.Pattern:
    alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b({alts})\b", re.IGNORECASE)


def typo(text: str, rng: random.Random) -> str | None:
    words = [m for m in re.finditer(r"[A-Za-z]{4,}", text)]
    if not words:
        return None
    m = rng.choice(words)
    w = m.group(0)
    j = rng.randrange(len(w) - 1)
    return text[: m.start()] + w[:j] + w[j + 1] + w[j] + w[j + 2:] + text[m.end():]


_CONTRACT = _word_pattern(list(CONTRACTIONS))
_EXPANDS = _word_pattern(list(_EXPAND))


def contraction(text: str, rng: random.Random) -> str | None:
    def keep_case(new: str, old: str) -> str:
        return new[:1].upper() + new[1:] if old[:1].isupper() else new
    if _EXPANDS.search(text):
        return _EXPANDS.sub(lambda m: keep_case(_EXPAND[m.group(1).lower()], m.group(1)), text)
    if _CONTRACT.search(text):
        return _CONTRACT.sub(lambda m: keep_case(CONTRACTIONS[m.group(1).lower()], m.group(1)),
                             text)
    return None


_NAME = {n: g for g, names in FIRST_NAMES.items() for n in names}
_NAMES = re.compile(r"\b(" + "|".join(_NAME) + r")\b")
_PLACES = re.compile(r"\b(" + "|".join(re.escape(p) for p in PLACES) + r")\b")


def name_swap(text: str, rng: random.Random) -> str | None:
    m = _NAMES.search(text)
    if not m:
        return None
    old = m.group(1)
    new = rng.choice([n for n in FIRST_NAMES[_NAME[old]] if n != old])  # same gender: neutral
    return re.sub(rf"\b{old}\b", new, text)


def place_swap(text: str, rng: random.Random) -> str | None:
    m = _PLACES.search(text)
    if not m:
        return None
    old = m.group(1)
    return re.sub(rf"\b{re.escape(old)}\b", rng.choice([p for p in PLACES if p != old]), text)


def punctuation(text: str, rng: random.Random) -> str | None:
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?":
        return stripped.rstrip(".!?")
    return stripped + "."


INVARIANCE = {"typo": typo, "contraction": contraction, "name swap": name_swap,
              "location swap": place_swap, "punctuation": punctuation}


def polarity(labels: Sequence[str], positive: str = "",
             negative: str = "") -> tuple[int, int] | None:
    """(positive, negative) class indices of a sentiment run, or None for other label sets."""
    names = [label.lower() for label in labels]
    if positive or negative:
        if positive not in labels or negative not in labels:
            from landfall.errors import ConfigError

            raise ConfigError(f"audit.positive_label/negative_label: {positive!r} and "
                              f"{negative!r} must both be among the run's labels {list(labels)}")
        return labels.index(positive), labels.index(negative)
    if len(labels) != 2:
        return None
    for pos, neg in (("pos", "neg"), ("positive", "negative"), ("1", "0")):
        if pos in names and neg in names:
            return names.index(pos), names.index(neg)
    return None


def _examples(texts, new, before, after, labels, limit=3) -> list[dict]:
    return [{"text": t[:200], "new_text": n[:200], "before": labels[int(b.argmax())],
             "after": labels[int(a.argmax())], "p_before": float(b.max()),
             "p_after": float(a[int(b.argmax())])}
            for t, n, b, a in list(zip(texts, new, before, after, strict=True))[:limit]]


def behaviour(texts: Sequence[str], score: Callable[[list[str]], np.ndarray],
              labels: Sequence[str], *, seed: int = 0, positive: str = "",
              negative: str = "") -> dict:
    """Every test: its kind, cases, failure rate and up to 3 failing examples."""
    rng = random.Random(seed)  # seeded, not security  # nosec B311
    tests: dict[str, dict] = {}
    base = score(list(texts))
    for name, perturb in INVARIANCE.items():
        pairs = [(i, p) for i, t in enumerate(texts) if (p := perturb(t, rng)) and p != t]
        if not pairs:
            tests[name] = {"kind": "INV", "cases": 0, "failure_rate": None, "failures": []}
            continue
        new = score([p for _, p in pairs])
        b = base[[i for i, _ in pairs]]
        failed = b.argmax(1) != new.argmax(1)
        idx = np.flatnonzero(failed)
        tests[name] = {"kind": "INV", "cases": len(pairs), "failure_rate": float(failed.mean()),
                       "failures": _examples([texts[pairs[j][0]] for j in idx],
                                             [pairs[j][1] for j in idx], b[idx], new[idx],
                                             labels)}
    pol = polarity(labels, positive, negative)
    if pol is None:
        tests.update(_label_mft(score, labels))
        return {"polarity": None, "tests": tests}
    pos, neg = pol
    for name, clause, wrong in (("add negative clause", NEG_CLAUSE, pos),
                                ("add positive clause", POS_CLAUSE, neg)):
        new = score([t.rstrip() + clause for t in texts])
        moved = new[:, wrong] - base[:, wrong]
        failed = moved > TOLERANCE
        idx = np.flatnonzero(failed)
        tests[name] = {"kind": "DIR", "cases": len(texts), "failure_rate": float(failed.mean()),
                       "mean_move": float(-moved.mean()),
                       "failures": _examples([texts[i] for i in idx],
                                             [texts[i] + clause for i in idx], base[idx],
                                             new[idx], labels)}
    # CheckList on binary sentiment: a probability in the middle third is "neutral"; a negated
    # negative ("not bad") must be positive or neutral, not negative
    cases = {
        "simple positive": (TEMPLATES, POS_ADJ, pos, False),
        "simple negative": (TEMPLATES, NEG_ADJ, neg, False),
        "negated positive is negative": (NEG_TEMPLATES, POS_ADJ, neg, False),
        "negated negative is not negative": (NEG_TEMPLATES, NEG_ADJ, neg, True),
    }
    for name, (templates, adjs, want, avoid) in cases.items():
        made = [t.format(noun=n, adj=a) for t in templates for n in NOUNS for a in adjs]
        tests[name] = _mft(made, [want] * len(made), score, labels, avoid=avoid)
    return {"polarity": {"positive": labels[pos], "negative": labels[neg]}, "tests": tests}


def _mft(texts: list[str], want: list[int], score, labels, avoid: bool = False) -> dict:
    """Cases with a known answer; ``avoid``: the class ``want`` must NOT be confident (its
    probability under 2/3: CheckList's neutral band on a binary model)."""
    probs = score(texts)
    rows = np.arange(len(texts))
    failed = probs[rows, want] >= 2 / 3 if avoid else probs.argmax(1) != np.asarray(want)
    idx = np.flatnonzero(failed)
    expect = "not " if avoid else ""
    return {"kind": "MFT", "cases": len(texts), "failure_rate": float(failed.mean()),
            "failures": [{"text": texts[i], "expected": expect + labels[want[i]],
                          "got": labels[int(probs[i].argmax())]} for i in idx[:3]]}


LABEL_TEMPLATES = ["{words}", "I have a question about {words}.", "Can you help me with "
                   "{words}?", "Something is wrong with {words}."]


def _label_mft(score, labels) -> dict:
    """Non-sentiment runs: each label's own name (card_arrival -> "card arrival") in templated
    requests must get that label."""
    texts, want = [], []
    for k, label in enumerate(labels):
        words = label.replace("_", " ").replace("-", " ")
        for t in LABEL_TEMPLATES:
            texts.append(t.format(words=words))
            want.append(k)
    return {"label name in a template": _mft(texts, want, score, labels)}
