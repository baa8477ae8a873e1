"""Command parser: free-form commands (plus sensor text) -> BabyAI instruction trees.

Sequence labelling on a pretrained encoder: every word gets a tag (its role in BabyAI's
grammar and its canonical value), and a deterministic decoder (``lexicon.decode``) builds the
tree. Training data comes from BabyAI's own environments (missions and their trees, free
and unlimited) plus paraphrases; ``landfall embody`` puts the trained parser in a body.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from landfall.config import Config
from landfall.errors import ConfigError
from landfall.tasks import register
from landfall.tasks.base import Task, TrainContext
from landfall.tasks.command_parser import config as _config  # noqa: F401  (registers sections)

VALIDATION_SEED = 900_000


@dataclass
class ParserData:
    train: list[Any]
    validation: list[Any]
    counts: dict = field(default_factory=dict)


def levels_of(text: str) -> list[str]:
    levels = [x.strip() for x in text.split(",") if x.strip()]
    if not levels:
        raise ConfigError("command_parser.levels: no level given")
    return levels


class CommandParserTask(Task):
    name = "command_parser"
    summary = "free-form commands -> BabyAI instruction trees (tagging + structure decoding)"
    auto_class = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    verbs = frozenset({"embody run", "embody eval", "embody interactive"})
    head = "objective"

    def validate(self, cfg: Config) -> None:
        from landfall.tasks.command_parser.data import EVAL_SEED

        c = cfg.command_parser
        if c.seed + c.episodes > VALIDATION_SEED:
            raise ConfigError(f"command_parser.seed + episodes = {c.seed + c.episodes}: "
                              f"training seeds must stay below {VALIDATION_SEED} (validation "
                              f"from {VALIDATION_SEED}, evaluation from {EVAL_SEED})")
        if VALIDATION_SEED + c.validation_episodes > EVAL_SEED:
            raise ConfigError("command_parser.validation_episodes: too many (they would reach "
                              f"the evaluation seeds at {EVAL_SEED})")
        levels_of(c.levels)

    def prepare(self, cfg: Config, tokenizer):
        from landfall.tasks.command_parser.data import generate, parse_pairs

        c = cfg.command_parser
        levels = levels_of(c.levels)
        pairs = parse_pairs(c.heldout_pairs)
        rng = random.Random(cfg.train.seed)  # seeded sampling, not security  # nosec B311
        train = generate(levels, range(c.seed, c.seed + c.episodes), rng=rng,
                         paraphrases=c.paraphrases, synthetic=c.synthetic, wordnet=c.wordnet,
                         sensors=c.sensors, exclude_pairs=pairs,
                         exclude_composition=c.heldout_composition)
        val_rng = random.Random(cfg.train.seed + 1)  # seeded sampling, not security  # nosec B311
        val = generate(levels, range(VALIDATION_SEED, VALIDATION_SEED + c.validation_episodes),
                       rng=val_rng, paraphrases=1, synthetic=0,
                       wordnet=c.wordnet, sensors=c.sensors, exclude_pairs=pairs,
                       exclude_composition=c.heldout_composition)
        if not train:
            raise ConfigError("command_parser: no training examples (all held out?)")
        counts: dict[str, Any] = {}
        if c.rewrites:
            from landfall.tasks.command_parser.rewrites import add_rewrites

            extra, counts["rewrites"] = add_rewrites(train, c.rewrites, seed=cfg.train.seed,
                                                     model=c.rewrite_model, wordnet=c.wordnet)
            train += extra
        styles: dict[str, int] = {}
        for e in train:
            styles[e.style] = styles.get(e.style, 0) + 1
        counts.update(train=len(train), validation=len(val), train_styles=styles,
                      levels=levels)
        return ParserData(train, val, counts)

    def build_model(self, cfg: Config, data, tokenizer):
        from landfall.tasks.command_parser.model import load_tagger

        return load_tagger(cfg)

    def objective(self, cfg: Config, data, model, tokenizer, ctx: TrainContext):
        from landfall.tasks.command_parser.objective import Tagging, encode_examples

        c = cfg.command_parser
        n = cfg.data.max_length
        return Tagging(encode_examples(tokenizer, data.train, n, c.sensors),
                       encode_examples(tokenizer, data.validation, n, c.sensors),
                       data.validation, model, tokenizer.pad_token_id or 0,
                       cfg.train.eval_batch_size)

    def summarize(self, cfg: Config, data, records: list[dict]) -> dict:
        evals = [r for r in records if "eval_exact_match" in r]
        best = max(evals, key=lambda r: r["eval_exact_match"]) if evals else {}
        return {"validation": {k[5:]: v for k, v in best.items() if k.startswith("eval_")}
                | {"step": best.get("step")},
                "data": data.counts}

    def write_report(self, run_dir, result: dict, plots: dict[str, str]):
        from landfall import runs

        v = result.get("validation", {})
        lines = ["# Command parser (BabyAI)", "",
                 f"- validation exact match: {v.get('exact_match', float('nan')):.4f}",
                 f"- validation tag accuracy: {v.get('tag_accuracy', float('nan')):.4f}",
                 f"- training examples: {result.get('data', {}).get('train')}", ""]
        lines += [f"![{k}]({p})" for k, p in plots.items()]
        runs.write_text(run_dir / "report.md", "\n".join(lines) + "\n")


TASK = register(CommandParserTask())
