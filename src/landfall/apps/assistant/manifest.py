"""The assistant's run directory and its manifest.

Layout::

    RUN/
      manifest.json      task "assistant", members (name -> run directory), thresholds (and
                         the rows they were chosen on), the entity gazetteer, counts
      landfall.toml      the resolved assistant config
      templates.jsonl    the answer templates: review and edit them
      profile.toml       the business profile (a copy of assistant.profile)
      knowledge/         documents.jsonl + vectors.safetensors
      members/<name>/    member runs the build trained (ordinary Landfall runs)
      data/              the build's splits: train, tune, validation (JSONL)
      eval/              `landfall assistant eval` output
      transcripts/       redacted conversation transcripts written by the service
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landfall import runs
from landfall.config import Config, build_config, load_file
from landfall.errors import LandfallError

TASK = "assistant"
MEMBER_TASKS = {"classifier": "classification", "generator": "causal_lm",
                "guard": "classification"}


def is_assistant(run_dir: str | Path) -> bool:
    return runs.read_manifest(run_dir).get("task") == TASK


@dataclass
class Manifest:
    run_dir: Path
    members: dict[str, str]
    thresholds: dict[str, Any]
    entities: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, run_dir: str | Path) -> Manifest:
        run_dir = Path(run_dir)
        data = runs.read_manifest(run_dir)
        if data.get("task") != TASK:
            raise LandfallError(f"{run_dir}: not an assistant run (no manifest.json with task "
                                f"\"assistant\"; build one with `landfall assistant build`)")
        rest = {k: v for k, v in data.items()
                if k not in ("task", "members", "thresholds", "entities")}
        return cls(run_dir, data["members"], data["thresholds"], data.get("entities", {}), rest)

    def write(self) -> Path:
        return runs.write_json(self.run_dir / runs.MANIFEST, {
            "task": TASK, "members": self.members, "thresholds": self.thresholds,
            "entities": self.entities, **self.extra})

    def member_path(self, name: str) -> Path:
        if not self.members.get(name):
            raise LandfallError(f"{self.run_dir}: the assistant has no {name} member")
        p = Path(self.members[name])
        return p if p.is_absolute() else self.run_dir / p

    def config(self) -> Config:
        path = self.run_dir / runs.CONFIG
        return build_config(load_file(path), source=str(path))

    def generator_settings(self):
        from landfall.inference.loading import run_config

        return run_config(self.member_path("generator")).generate


def check_member(path: str | Path, name: str) -> Path:
    """A member run directory of the right task, or a clear refusal."""
    from landfall.inference.loading import run_config

    p = Path(path)
    if not (p / runs.CONFIG).is_file():
        raise LandfallError(f"members.{name}: {p} is not a Landfall run (no {runs.CONFIG})")
    task = run_config(p).task.name
    if task != MEMBER_TASKS[name]:
        raise LandfallError(f"members.{name}: {p} is a {task} run; the {name} must be a "
                            f"{MEMBER_TASKS[name]} run")
    return p
