"""What the training loop needs to run as one of N data-parallel processes.

The processes are started by torchrun, ``accelerate launch`` or ``landfall train --processes``
(``landfall.scale.launch``); accelerate's Accelerator reads their environment (RANK,
WORLD_SIZE, MASTER_ADDR...), joins the process group (gloo on CPU, NCCL on GPU) and wraps the
model in DistributedDataParallel. This module holds the few things accelerate does not do for
a loop that keeps its own sampler: cutting each global micro-batch into per-rank shards,
summing a float over the ranks, gathering a validation prediction sharded across the ranks,
and the ranks' RNG states for a checkpoint.

With one process every helper is the identity, so a single-process run computes exactly
what it computed before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def env_rank() -> int:
    """This process's global rank as the launcher set it (0 when not launched): usable
    before the process group exists (choosing who writes the run directory)."""
    return int(os.environ.get("RANK", "0"))


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return env_rank() == 0


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def of(cls, accelerator: Any) -> World:
        return cls(accelerator.process_index, accelerator.num_processes, accelerator.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: list[int]) -> list[int]:
        """This rank's contiguous share of a global micro-batch (sizes differ by at most 1;
        the batches are length-sorted, so neighbours have similar lengths)."""
        if self.size == 1:
            return idx
        return [int(i) for i in np.array_split(np.asarray(idx, dtype=np.int64),
                                               self.size)[self.rank]]

    def sum(self, value: float) -> float:
        """``value`` summed over the ranks (every rank gets the sum)."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (every rank gets the list)."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier()


def rng_state() -> dict[str, torch.Tensor]:
    """This process's generator states (CPU; the current CUDA device's when there is one)."""
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def sharded_predictor(predictor_cls: type, world: World) -> type:
    """A subclass of the inference Predictor whose ``predict_tokens`` scores this rank's
    share of the documents and gathers the others' (the validation evaluations): every rank
    gets the whole prediction, in document order, for 1/N of the compute."""
    if world.size == 1:
        return predictor_cls

    class Sharded(predictor_cls):
        def predict_tokens(self, docs, progress: bool = False):
            mine = list(range(world.rank, len(docs), world.size))
            part = super().predict_tokens([docs[i] for i in mine], progress) if mine else None
            parts = world.gather((mine, None if part is None else
                                  (part.probs, part.windows, part.logits)))
            k = len(self.labels)
            probs = np.zeros((len(docs), k), dtype=np.float64)
            logits = np.zeros((len(docs), k), dtype=np.float64)
            windows = np.zeros(len(docs), dtype=np.int64)
            for rows, arrays in parts:
                if arrays is not None:
                    probs[rows], windows[rows], logits[rows] = arrays
            return part.__class__(probs, windows, self.labels, logits) if part is not None \
                else _prediction(probs, windows, self.labels, logits)

    Sharded.__name__ = f"Sharded{predictor_cls.__name__}"
    return Sharded


def _prediction(probs, windows, labels, logits):
    from landfall.inference.predictor import Prediction

    return Prediction(probs, windows, labels, logits)
