"""The parsers a world can be commanded through: a trained run, or a baseline by name."""

from __future__ import annotations

from pathlib import Path

BASELINES = ("rules", "smollm2-fewshot")


def load_system(name: str | Path, device: str = "cpu", min_confidence: float | None = None):
    """``rules`` (BabyAI's grammar), ``smollm2-fewshot`` (SmolLM2 prompted few-shot, then the
    rules), or a command_parser run directory (``min_confidence``: see
    ``command_parser.min_confidence``; the baselines ignore it)."""
    if str(name) == "rules":
        from landfall.baseline.babyai_rules import RuleParser

        return RuleParser()
    if str(name) == "smollm2-fewshot":
        from landfall.baseline.babyai_rules import FewShotParser

        return FewShotParser()
    from landfall.tasks.command_parser.model import load_parser

    return load_parser(name, device=device, min_confidence=min_confidence)
