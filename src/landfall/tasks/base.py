"""What a task plugin is: the contract between a task folder and the layers above it.

A task knows its model class, how its data is prepared, what is optimised (its objective),
how it is scored, and which verbs its runs support. The training loop, the loaders, the
service and the reports ask the task; they never branch on task names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from landfall.config import Config


class Objective(Protocol):
    """What the training loop optimises and how it scores (``training.loop.fit``)."""

    lengths: list[int]  # one per training item, for length-grouped batching

    def loss(self, model, idx: list[int], n: int, device, autocast) -> torch.Tensor:
        """Loss of the items ``idx``, summed over them and divided by ``n`` (the step's items)."""

    def evaluate(self) -> tuple[dict, float]:
        """(record for metrics.jsonl, score where higher is better)."""


@dataclass
class TrainContext:
    """What training hands a task when it builds the objective (injected from above, so that
    a task folder imports nothing above its own layer)."""

    device: torch.device
    bf16: bool = False
    # builds the inference head of a classifier (inference.predictor.Predictor) for the
    # validation evaluations; None for tasks that do not need one
    make_predictor: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class of a task plugin. Subclasses set the class attributes and override the
    methods; ``landfall.tasks.register`` makes one known by its ``name``."""

    name: str = ""
    summary: str = ""
    auto_class: str = "AutoModel"  # the transformers Auto class that loads the run's model/
    peft_task_type: str = "FEATURE_EXTRACTION"  # peft.TaskType for adapters
    # verbs a run of this task supports, beyond train: predict, evaluate, generate, embed,
    # gradients, serve, ensemble, compress, export-merged, export-onnx
    verbs: frozenset[str] = frozenset()
    # how training's last step evaluates the best model: "classify" (class probabilities),
    # "generate" (text), or "objective" (the objective's own evaluation)
    head: str = "objective"

    def validate(self, cfg: Config) -> None:
        """Refuse settings this task cannot honour (raise ConfigError)."""

    def load_tokenizer(self, cfg: Config):
        from transformers import AutoTokenizer

        from landfall.data.normalize import apply
        from landfall.hub import resolve_model

        return apply(AutoTokenizer.from_pretrained(resolve_model(cfg.model.name)),
                     cfg.data.normalize)

    def prepare(self, cfg: Config, tokenizer) -> Any:
        """Read, split and tokenise the run's data."""
        raise NotImplementedError

    def build_model(self, cfg: Config, data: Any, tokenizer) -> torch.nn.Module:
        raise NotImplementedError

    def objective(self, cfg: Config, data: Any, model, tokenizer, ctx: TrainContext) -> Objective:
        raise NotImplementedError

    def summarize(self, cfg: Config, data: Any, records: list[dict]) -> dict:
        """Task-specific figures for eval.json from the logged metrics (optional)."""
        return {}

    def write_report(self, run_dir, result: dict, plots: dict[str, str]):
        """Write ``report.md`` for a run whose final evaluation is the objective's own
        (``head = "objective"``); heads with an inference stage have their own writer in the
        task folder (``report.py``). Default: none."""
        return None

    def supports(self, verb: str) -> bool:
        return verb in self.verbs

    def require(self, verb: str, where: str) -> None:
        """Refuse a verb this task's runs do not support, with the reason."""
        from landfall.errors import LandfallError

        if verb not in self.verbs:
            offered = ", ".join(sorted(self.verbs)) or "none"
            raise LandfallError(f"{where}: `{verb}` is not supported by a {self.name} run "
                                f"(it supports: {offered})")
