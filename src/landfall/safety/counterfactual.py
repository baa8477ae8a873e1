"""Counterfactual fairness of a classifier: swap identity terms in evaluation texts and measure
how often, and how far, the prediction moves.

For each group (gender words and first names, race/ethnicity, religion, nationality, age,
disability; ``wordlists``) every text that contains one of its terms yields variants with the
term replaced by terms of other subgroups (all gendered words swapped at once for gender). A
fair model gives a variant the prediction of its original: the figures are the flip rate (the
top class changes) and the mean |delta p| of the original's top class, per group, with the
worst pairs for the report (and for the attributions of the explain check).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from landfall.safety.wordlists import Group, identity_groups


@dataclass
class Variant:
    text: int  # index of the original text
    group: str
    term: str
    substitute: str
    new_text: str


def _pattern(terms: Sequence[str], ignore_case: bool) -> re.Pattern:
    alts = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![\w'-])({alts})(?![\w-])", re.IGNORECASE if ignore_case else 0)


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class Swapper:
    """Finds a group's terms in texts and writes the counterfactual variants."""

    def __init__(self, group: Group, per_text: int, rng: random.Random) -> None:
        self.group, self.per_text, self.rng = group, per_text, rng
        terms = list(group.subgroup)
        # lower-case terms match in any case; capitalised ones (Black, Catholic, Emily) only
        # as written, so that "a black and white film" is not read as race
        self.loose = _pattern([t for t in terms if t == t.lower()], True) if any(
            t == t.lower() for t in terms) else None
        self.strict = _pattern([t for t in terms if t != t.lower()], False) if any(
            t != t.lower() for t in terms) else None

    def _found(self, text: str) -> list[re.Match]:
        out = []
        for pat in (self.loose, self.strict):
            if pat is not None:
                out.extend(pat.finditer(text))
        return sorted(out, key=lambda m: m.start())

    def _canonical(self, term: str) -> str:
        return term if term in self.group.subgroup else term.lower()

    def variants(self, i: int, text: str) -> list[Variant]:
        found = self._found(text)
        if not found:
            return []
        if self.group.pairs is not None:  # gender: every gendered word swapped at once
            def swap(m: re.Match) -> str:
                return _match_case(self.group.pairs[m.group(1).lower()], m.group(1))
            new = self.loose.sub(swap, text)
            first = found[0].group(1)
            return [Variant(i, self.group.name, first, self.group.pairs[first.lower()], new)]
        term = self._canonical(self.rng.choice(found).group(1))
        options = self.group.substitutes(term)
        picks = self.rng.sample(options, min(self.per_text, len(options)))
        pat = _pattern([term], term == term.lower())
        # a lower-case term takes the case it was written in; a proper one (Catholic) is
        # replaced by its substitute as that is spelled (agnostic, not Agnostic)
        def fill(m: re.Match, s: str) -> str:
            return _match_case(s, m.group(1)) if term == term.lower() else s
        return [Variant(i, self.group.name, term, s, pat.sub(lambda m, s=s: fill(m, s), text))
                for s in picks]


def snippet(text: str, word: str, width: int = 70) -> str:
    """The part of ``text`` around the first ``word``."""
    at = text.lower().find(word.lower())
    if at < 0 or len(text) <= 2 * width:
        return text[: 2 * width]
    start = max(0, at - width)
    return ("…" if start else "") + text[start: at + len(word) + width] + "…"


def counterfactual(texts: Sequence[str], score: Callable[[list[str]], np.ndarray],
                   labels: Sequence[str], *, per_text: int = 3, seed: int = 0,
                   groups: Sequence[str] | None = None, worst: int = 5) -> dict:
    """Per group: texts with a term, variants, flip rate, mean |delta p|, the worst pairs.
    ``score`` maps texts to class probabilities (n, k)."""
    rng = random.Random(seed)  # seeded, not security  # nosec B311
    all_groups = identity_groups()
    variants: list[Variant] = []
    for name in groups or list(all_groups):
        swapper = Swapper(all_groups[name], per_text, rng)
        for i, t in enumerate(texts):
            variants.extend(swapper.variants(i, t))
    used = sorted({v.text for v in variants})
    base = dict(zip(used, score([texts[i] for i in used]), strict=True)) if used else {}
    probs = score([v.new_text for v in variants]) if variants else np.zeros((0, len(labels)))
    out: dict[str, dict] = {}
    for name in groups or list(all_groups):
        rows = [(v, p) for v, p in zip(variants, probs, strict=True) if v.group == name]
        if not rows:
            out[name] = {"texts": 0, "variants": 0, "flip_rate": None, "mean_delta": None,
                         "worst": []}
            continue
        deltas, flips, pairs = [], [], []
        for v, p in rows:
            b = base[v.text]
            c = int(b.argmax())
            d = float(abs(p[c] - b[c]))
            deltas.append(d)
            flips.append(int(p.argmax()) != c)
            pairs.append({"delta": d, "term": v.term, "substitute": v.substitute,
                          "from": labels[c], "to": labels[int(p.argmax())],
                          "p_before": float(b[c]), "p_after": float(p[c]),
                          "text": snippet(texts[v.text], v.term),
                          "new_text": snippet(v.new_text, v.substitute),
                          "full_text": texts[v.text], "full_new_text": v.new_text})
        pairs.sort(key=lambda r: -r["delta"])
        out[name] = {"texts": len({v.text for v, _ in rows}), "variants": len(rows),
                     "flip_rate": float(np.mean(flips)), "mean_delta": float(np.mean(deltas)),
                     "worst": pairs[:worst]}
    return out
