"""The parser's model: a pretrained encoder with a token-classification head over the tags
(``lexicon.TAGS``), and the loaded parser that turns a command (and sensor text) into a plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from landfall.config import Config
from landfall.hub import resolve_model
from landfall.tasks.command_parser.grammar import Plan
from landfall.tasks.command_parser.lexicon import TAGS, decode, words_of
from landfall.tasks.common import dropout_overrides


def load_tagger(cfg: Config):
    from transformers import AutoConfig, AutoModelForTokenClassification

    path = resolve_model(cfg.model.name)
    base = AutoConfig.from_pretrained(path)
    return AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)),
        label2id={t: i for i, t in enumerate(TAGS)}, **dropout_overrides(base, cfg))


def encode(tokenizer, words: list[str], sensors: str, max_length: int) -> tuple[list[int],
                                                                             list[int], int]:
    """(input ids, token type ids, first-token index of each command word; -1 where the
    word was cut). The command is never truncated before the sensor text."""
    second = sensors.split() if sensors else None
    enc = tokenizer(words, second, is_split_into_words=True, truncation="only_second"
                    if second else True, max_length=max_length)
    first = [-1] * len(words)
    seq = enc.sequence_ids()
    for pos, w in enumerate(enc.word_ids()):
        if w is not None and seq[pos] == 0 and first[w] < 0:
            first[w] = pos
    types = enc.get("token_type_ids") or [0] * len(enc["input_ids"])
    return enc["input_ids"], types, first


def collate_ids(rows: list[tuple[list[int], list[int]]], pad_id: int, labels=None):
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long) if labels else None
    for i, (a, t) in enumerate(rows):
        ids[i, :len(a)] = torch.tensor(a)
        types[i, :len(t)] = torch.tensor(t)
        mask[i, :len(a)] = 1
        if labels:
            lab[i, :len(labels[i])] = torch.tensor(labels[i])
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return batch, lab


@dataclass
class ParseResult:
    plan: Plan | None
    words: list[str]
    tags: list[str]
    error: str = ""
    confidence: float | None = None  # the tagger's least sure word (its tag's probability)


class CommandParser:
    """A trained parser: ``parse(command, sensors)`` -> ParseResult (plan, or why none)."""

    name = "tagger"

    def __init__(self, model, tokenizer, *, sensors: bool, max_length: int, device="cpu",
                 min_confidence: float = 0.0):
        self.model = model.eval().to(device)
        self.min_confidence = min_confidence
        self.tokenizer = tokenizer
        self.sensors = sensors
        self.max_length = max_length
        self.device = device

    @torch.no_grad()
    def tag_batch(self, word_lists: list[list[str]], sensors: list[str]) -> list[list[str]]:
        return [t for t, _ in self.tag_batch_scored(word_lists, sensors)]

    @torch.no_grad()
    def tag_batch_scored(self, word_lists: list[list[str]], sensors: list[str]
                         ) -> list[tuple[list[str], list[float]]]:
        """Each command's tags and each tag's probability (1.0 for a word cut off)."""
        encs = [encode(self.tokenizer, w or ["."], s if self.sensors else "", self.max_length)
                for w, s in zip(word_lists, sensors, strict=True)]
        batch, _ = collate_ids([(e[0], e[1]) for e in encs], self.tokenizer.pad_token_id or 0)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        prob, pred = self.model(**batch).logits.float().softmax(-1).max(-1)
        prob, pred = prob.cpu(), pred.cpu()
        return [([TAGS[pred[i, p]] if p >= 0 else "O" for p in e[2]],
                 [float(prob[i, p]) if p >= 0 else 1.0 for p in e[2]])
                for i, e in enumerate(encs)]

    def parse_batch(self, commands: list[str], sensors: list[str] | None = None,
                    batch_size: int = 64) -> list[ParseResult]:
        sensors = sensors or [""] * len(commands)
        out = []
        for start in range(0, len(commands), batch_size):
            words = [words_of(c) for c in commands[start:start + batch_size]]
            scored = self.tag_batch_scored(words, sensors[start:start + batch_size])
            out += [to_result(w, t, p, min_confidence=self.min_confidence)
                    for w, (t, p) in zip(words, scored, strict=True)]
        return out

    def parse(self, command: str, sensors: str = "") -> ParseResult:
        return self.parse_batch([command], [sensors])[0]


def to_result(words: list[str], tags: list[str], confidences: list[float] | None = None, *,
              min_confidence: float = 0.0) -> ParseResult:
    """The plan the tags spell, or why none: a tag sequence that makes no tree, or (given
    the tagger's probabilities) a word whose tag the tagger is less sure of than
    ``min_confidence``: a parse it is not sure of is refused, never executed."""
    from landfall.tasks.command_parser.lexicon import ParseError

    least = min(confidences) if confidences else None
    if confidences and least < min_confidence:
        k = confidences.index(least)
        return ParseResult(None, words, tags, f"not sure of the command: '{words[k]}' read as "
                           f"{tags[k]} with probability {least:.2f} (below "
                           f"command_parser.min_confidence = {min_confidence:g})", least)
    try:
        return ParseResult(decode(words, tags), words, tags, confidence=least)
    except ParseError as e:
        return ParseResult(None, words, tags, str(e), least)


def load_parser(run_dir: str | Path, device: str = "cpu",
                min_confidence: float | None = None) -> CommandParser:
    """The parser of a command_parser run directory (``min_confidence``: the run's
    ``command_parser.min_confidence`` unless given)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from landfall.config import build_config, load_file
    from landfall.errors import LandfallError

    run_dir = Path(run_dir)
    conf = run_dir / "landfall.toml"
    if not conf.exists():
        raise LandfallError(f"{run_dir}: not a run directory (no landfall.toml)")
    cfg = build_config(load_file(conf), source=str(conf))
    if cfg.task.name != "command_parser":
        raise LandfallError(f"{conf}: task.name is {cfg.task.name!r}, not command_parser")
    model_path = run_dir / "model"
    if not (model_path / "config.json").exists():
        raise LandfallError(f"{run_dir}: no model/ inside (has training finished?)")
    model = AutoModelForTokenClassification.from_pretrained(model_path)
    tok = AutoTokenizer.from_pretrained(model_path)
    return CommandParser(model, tok, sensors=cfg.command_parser.sensors,
                         max_length=cfg.data.max_length, device=device,
                         min_confidence=cfg.command_parser.min_confidence
                         if min_confidence is None else min_confidence)
