"""SmolLM2 rewrites of BabyAI's missions, as training data for the command parser.

SmolLM2-135M-Instruct rewrites a training mission the way a person might say it (through
``landfall.data.paraphrase.Paraphraser``: batched, seeded, cached on disk). A rewrite has no
word tags, and a 135 M model often changes what a command means ("the red ball" becomes "the
ball"), so each rewrite is tagged back from a lexicon (BabyAI's words, the paraphrase
templates' words, WordNet's colours) and kept only if its tags decode to the mission's own
tree. What is kept is SmolLM2's wording with a tree that is right by construction; a rewrite
in words that no lexicon of ours knows is dropped (the counts say how many).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

from landfall.tasks.command_parser.data import (
    AFTER_PHRASES,
    AND_PHRASES,
    BEFORE_PHRASES,
    DETS,
    LOC_PHRASES,
    PICKUP_SPLIT,
    PRE_AFTER,
    PRE_BEFORE,
    PRONOUNS,
    PUT_PHRASES,
    TYPE_WORDS,
    VERB_PHRASES,
    Example,
    Renderer,
)
from landfall.tasks.command_parser.lexicon import ParseError, decode, words_of

# a 135 M model needs the task shown, not told: a one-message prompt got 0 of 48 usable
# rewrites (chatter, copies); this few-shot chat 8 of 32 (most others changed the meaning)
SYSTEM = ("You rewrite robot commands in casual everyday English, with other verbs. Keep every "
          "colour and object. Answer with the rewritten command only.")
EXAMPLES = [
    ("pick up the blue ball", "could you grab the blue ball for me"),
    ("go to a red door, then put the green key next to the grey box",
     "head over to a red door, and after that place the green key beside the grey box"),
    ("open the yellow door after you go to the purple key",
     "walk to the purple key first, then open the yellow door"),
    ("go to the box on your left", "please walk over to the box to your left"),
]
MAX_COMBINATIONS = 2048  # readings of the ambiguous words tried per rewrite


def _candidates(render: Renderer) -> dict[str, list[str]]:
    """word -> the tags it can carry, from the templates' tables (first reading first)."""
    out: dict[str, list[str]] = {}

    def add(word: str, tag: str) -> None:
        tags = out.setdefault(word, [])
        if tag not in tags:
            tags.append(tag)

    def starred(template: str, tag: str) -> None:
        for w in template.split():
            if w.startswith("*"):
                pieces = words_of(w[1:])
                if pieces and pieces[0] not in ("to", "up"):  # "go to": "to" is filler
                    add(pieces[0], tag)

    for verb, phrases in VERB_PHRASES.items():
        for p in phrases:
            starred(p, f"V-{verb}")
    for p in PICKUP_SPLIT:
        starred(p.split("{o}")[0], "V-pickup")
    for p in PUT_PHRASES:
        head, rest = p.split("{a}")
        starred(head, "V-putnext")
        starred(rest.split("{b}")[0], "NEXT")
    for det, phrases in DETS.items():
        for p in phrases:
            starred(p, f"D-{det}")
    for typ, words in TYPE_WORDS.items():
        for w in words:
            add(w, f"T-{typ or 'object'}")
    for colour, words in render.colors.items():
        for w in words:
            add(w, f"C-{colour}")
    for loc, phrases in LOC_PHRASES.items():
        for p in phrases:
            starred(p, f"L-{loc}")
    for table, tag in ((AND_PHRASES, "J-and"), (BEFORE_PHRASES, "J-before"),
                       (AFTER_PHRASES, "J-after"), (PRE_AFTER, "J-pre-after"),
                       (PRE_BEFORE, "J-pre-before")):
        for p in table:
            starred(p, tag)
    for p in PRONOUNS:
        add(words_of(p)[0], "IT")
    for w in ("that", "this", "one", "first", "back", ","):
        add(w, "O")  # filler as often as not ("the one that is behind you")
    for w, tags in out.items():  # "by" in "stand by", "and then", "when you can"
        if any(t == "NEXT" or t.startswith("J-") for t in tags):
            add(w, "O")
    add(",", "SEP")
    return out


class LexiconTagger:
    """Tags a command from the lexicon: every reading of its ambiguous words is tried; of those
    whose tree equals ``plan``, the one with the fewest non-filler tags wins ("go over to":
    "over" is filler, not "next to"). None: no reading gives that tree."""

    def __init__(self, wordnet: bool = True):
        # the Renderer's rng is unused here: only its colour table (with WordNet's) is read
        self.table = _candidates(Renderer(random.Random(0), wordnet=wordnet))  # nosec B311

    def tag(self, words: list[str], plan) -> list[str] | None:
        options = [self.table.get(w, ["O"]) for w in words]
        n = 1
        for o in options:
            n *= len(o)
        if n > MAX_COMBINATIONS:
            return None
        want, best = plan.key(), None
        for tags in itertools.product(*options):
            marked = sum(t != "O" for t in tags)
            if best is not None and marked >= best[0]:
                continue
            try:
                if decode(words, list(tags)).key() == want:
                    best = (marked, list(tags))
            except ParseError:
                continue
        return best[1] if best else None


def add_rewrites(examples: list[Example], n: int, *, seed: int, model: str = "smollm2",
                 wordnet: bool = True) -> tuple[list[Example], dict]:
    """SmolLM2 rewrites of up to ``n`` of the missions in ``examples`` (BabyAI-worded ones),
    each kept when the lexicon tags it back to its mission's tree. Returns the kept examples
    (style ``smollm2``) and counts."""
    from landfall.data.paraphrase import Paraphraser

    missions = [e for e in examples if e.style == "babyai"]
    rng = random.Random(seed)  # seeded sampling, not security  # nosec B311
    chosen = rng.sample(missions, min(n, len(missions)))
    para = Paraphraser(model, seed=seed, temperature=0.7, prompt="{text}", system=SYSTEM,
                       examples=EXAMPLES, batch_size=16)
    outs = para.paraphrase([" ".join(e.words) for e in chosen], 1)
    tagger = LexiconTagger(wordnet=wordnet)
    kept, empty, untagged = [], 0, 0
    for ex, (text,) in zip(chosen, outs, strict=True):
        words = words_of(text)
        if not words or words == ex.words:  # nothing, or BabyAI's own words again
            empty += 1
            continue
        tags = tagger.tag(words, ex.plan)
        if tags is None:
            untagged += 1
            continue
        kept.append(replace(ex, words=words, tags=tags, style="smollm2"))
    counts = {"asked": len(chosen), "kept": len(kept), "unusable": empty,
              "other_tree_or_unknown_words": untagged, "generated_now": para.generated}
    return kept, counts
