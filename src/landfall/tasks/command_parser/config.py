"""The command parser's config sections: ``[command_parser]`` (what it learns from) and
``[shield]`` (what the embodied agent refuses; read by ``landfall embody``)."""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import help_field as _f
from landfall.config import register_section

DEFAULT_LEVELS = ("BabyAI-GoToLocal-v0,BabyAI-PickupLoc-v0,BabyAI-PutNextLocal-v0,"
                  "BabyAI-SynthLoc-v0,BabyAI-BossLevel-v0,BabyAI-BossLevelNoUnlock-v0,"
                  "BabyAI-GoTo-v0,BabyAI-Synth-v0")


@dataclass
class CommandParserConfig:
    levels: str = _f(DEFAULT_LEVELS, "Comma-separated BabyAI levels whose missions and trees "
                     "make the training data.")
    episodes: int = _f(2500, "Training episodes (one mission each), seeds seed..seed+N-1, "
                       "cycling through the levels.", ge=1)
    seed: int = _f(0, "First training seed (training seeds must stay below 1,000,000: those "
                   "are evaluation seeds).", ge=0)
    validation_episodes: int = _f(300, "Validation episodes, seeds 900,000 on.", ge=1)
    paraphrases: int = _f(2, "Paraphrased renderings of each training mission (templates + "
                          "WordNet synonyms), beside BabyAI's own wording.", ge=0)
    synthetic: int = _f(1, "Plans sampled from BabyAI's grammar over each training world's "
                        "objects (pronouns, repeated objects), paraphrased.", ge=0)
    rewrites: int = _f(0, "Training missions rewritten by SmolLM2-135M-Instruct in everyday "
                       "words (cached on disk; the first run generates them). A rewrite is "
                       "kept only when the lexicon tags it back to its mission's own tree.",
                       ge=0)
    rewrite_model: str = _f("smollm2", "The instruct LLM that writes the rewrites (a name, "
                            "a hub id or a local directory).")
    wordnet: bool = _f(True, "Add WordNet's colour synonyms to the paraphrase lexicon.")
    sensors: bool = _f(True, "Condition the parser on the sensor text (the 7x7 view and what "
                       "the agent carries) as a second segment.")
    min_confidence: float = _f(0.3, "Refuse a command when the tagger's probability for any "
                               "word's tag is below this (a parse it is not sure of is "
                               "refused, not executed; 0 = never). Read when the parser "
                               "loads. 0.3: the highest floor that keeps the preset's success "
                               "on bench/babyai/handwritten.jsonl (0.944, no wrong action; "
                               "0.5 refuses 7 more).", ge=0.0, le=1.0)
    heldout_pairs: str = _f("red ball,green key,blue box,purple door", "Colour x type pairs "
                            "kept out of training (the unseen-pairs split).")
    heldout_composition: bool = _f(True, "Keep 'A and B, then C and D' (a sequence of two "
                                   "conjunctions) out of training (the unseen-compositions "
                                   "split).")


@dataclass
class ShieldConfig:
    forbid: str = _f("", "Policy: ';'-separated rules the agent must never break, e.g. "
                     "'never pick up keys; never open red doors; avoid cell 3,4'. A rule names "
                     "an action (go to, pick up, open, put, touch = any) and a colour and/or "
                     "type, or a cell x,y the agent must not enter.")
    dry_run: bool = _f(True, "Before moving, execute the plan on a copy of the world and "
                       "refuse it if any step would break the policy (e.g. the planner moving "
                       "a forbidden key out of the way).")
    max_steps: int = _f(0, "Most actions one command may take (0 = the level's own limit).",
                        ge=0)


register_section("command_parser", CommandParserConfig, task="command_parser")
register_section("shield", ShieldConfig, task="command_parser")
