"""Training-data augmentation: EDA (Wei & Zou 2019) with WordNet synonyms.

EDA's four operations — synonym replacement, random insertion, random swap, random
deletion — are a few lines each and no maintained library implements them, so they live here.
Synonyms come from WordNet 3.0 read by nltk: Debian's ``wordnet-base`` package puts the
database in /usr/share/wordnet (``apt-get install wordnet-base``; or set LANDFALL_WORDNET to
any WordNet 3.0 ``dict`` folder). Augmentation is applied to the training split only, after
the validation split is carved, so augmented text never reaches validation or test.
Each example's augmentations depend only on (seed, example index): runs repeat exactly.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import warnings
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from landfall.data.readers import Example
from landfall.errors import LandfallError

# WordNet 3.0's lexicographer files; Debian's wordnet-base omits this small index file,
# which nltk's reader requires.
LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact
noun.attribute noun.body noun.cognition noun.communication noun.event noun.feeling noun.food
noun.group noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant
noun.possession noun.process noun.quantity noun.relation noun.shape noun.state noun.substance
noun.time verb.body verb.change verb.cognition verb.communication verb.competition
verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception
verb.possession verb.social verb.stative verb.weather adj.ppl""".split()
_POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

STOPWORDS = frozenset("""a an the and or but if while of at by for with about against between
into through during before after above below to from up down in out on off over under again
further then once here there when where why how all any both each few more most other some
such no nor not only own same so than too very can will just don should now i me my myself we
our ours you your yours he him his she her hers it its they them their what which who whom
this that these those am is are was were be been being have has had having do does did doing
would could br""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def _wordnet_dir() -> Path:
    """A folder nltk can read: the system WordNet files plus the lexnames index."""
    from landfall.hub import cache_dir

    src = Path(os.environ.get("LANDFALL_WORDNET", "/usr/share/wordnet"))
    if not (src / "data.noun").exists():
        raise LandfallError(
            f"{src}: no WordNet 3.0 database; apt-get install wordnet-base "
            "(or set LANDFALL_WORDNET to a WordNet dict folder)"
        )
    if (src / "lexnames").exists():
        return src
    shim = cache_dir() / "wordnet"
    if not (shim / "lexnames").exists():  # copies, not links: nltk refuses paths outside
        from landfall.runs import save_dir

        def write(tmp: Path) -> None:
            for f in src.iterdir():
                if f.is_file():
                    shutil.copyfile(f, tmp / f.name)
            lex = "".join(f"{i:02d}\t{n}\t{_POS[n.split('.')[0]]}\n"
                          for i, n in enumerate(LEXNAMES))
            (tmp / "lexnames").write_text(lex)

        save_dir(shim, write)
    return shim


@lru_cache(maxsize=1)
def _wordnet():
    try:
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        raise LandfallError("augmentation needs nltk: pip install 'landfall[augment]'") from None
    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            # nltk maps a custom database onto its downloadable "wordnet" corpus, which is
            # not installed (and is this very WordNet 3.0): nothing to map
            return None

    folder = _wordnet_dir()
    if str(folder) not in nltk.data.path:
        nltk.data.path.append(str(folder))  # nltk only opens folders on its data path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return Reader(str(folder), None)


@lru_cache(maxsize=50_000)
def synonyms(word: str) -> tuple[str, ...]:
    """WordNet synonyms of ``word`` (lower case, single words only), itself excluded."""
    found = {
        lemma.name().lower()
        for syn in _wordnet().synsets(word)
        for lemma in syn.lemmas()
        if "_" not in lemma.name()
    }
    found.discard(word)
    return tuple(sorted(found))


def _candidates(words: list[str]) -> list[int]:
    return [i for i, w in enumerate(words) if _WORD.fullmatch(w) and w.lower() not in STOPWORDS]


def synonym_replacement(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    idx = _candidates(out)
    rng.shuffle(idx)
    done = 0
    for i in idx:
        syn = synonyms(out[i].lower())
        if syn:
            out[i] = rng.choice(syn)
            done += 1
        if done >= n:
            break
    return out


def random_insertion(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    idx = _candidates(out)
    for _ in range(n):
        for _try in range(10):
            if not idx:
                return out
            syn = synonyms(out[rng.choice(idx)].lower())
            if syn:
                out.insert(rng.randrange(len(out) + 1), rng.choice(syn))
                break
    return out


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    out = list(words)
    for _ in range(n if len(out) > 1 else 0):
        i, j = rng.randrange(len(out)), rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    kept = [w for w in words if rng.random() > p]
    return kept or [rng.choice(words)]


OPS = ("sr", "ri", "rs", "rd")


def eda(text: str, rng: random.Random, alpha: float = 0.1) -> str:
    """One augmented version of ``text``: one EDA operation chosen at random, changing about
    ``alpha`` of the words."""
    words = text.split()
    if not words:
        return text
    n = max(1, round(alpha * len(words)))
    op = rng.choice(OPS)
    if op == "sr":
        out = synonym_replacement(words, n, rng)
    elif op == "ri":
        out = random_insertion(words, n, rng)
    elif op == "rs":
        out = random_swap(words, n, rng)
    else:
        out = random_deletion(words, alpha, rng)
    return " ".join(out)


def augment_examples(
    examples: list[Example], *, per_example: int, alpha: float, seed: int
) -> list[Example]:
    """The originals followed by ``per_example`` EDA versions of each (same label)."""
    extra = []
    for i, ex in enumerate(examples):
        rng = random.Random(f"{seed}:{i}")  # seeded augmentation, not security  # nosec B311
        for _ in range(per_example):
            extra.append(replace(ex, text=eda(ex.text, rng, alpha)))
    return list(examples) + extra
