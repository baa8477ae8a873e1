"""``landfall predict/generate --engine ray [--address ADDR]``: the chunks of the output file
scored by a pool of Ray actors, each holding the run's own chunk worker (one model each).

This is an engine in the sense of ``inference.chunks``: ``predict_file`` and
``generate_file`` still read the input, check it, fingerprint it, resume after the last
complete row and write the file; Ray Data only carries the chunks to an actor pool
(``map_batches`` with a callable class on an ``ActorPoolStrategy`` of ``actors``) and
brings the rows back in input order (``preserve_order``), streaming, so that a killed
driver leaves a partial file that the next call resumes exactly as the single-process one
does. The chunks are the
single-process ones, so every row is computed from the same batch and the output file is
byte-identical.

Ray starts locally (``num_cpus`` = actors x threads) when no address is given; with
``--address`` (``auto`` or ``ray://HOST:10001``) the cluster's workers must have Landfall
installed and see the run directory and the input (a shared path).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from landfall.errors import LandfallError


def _require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise LandfallError('--engine ray needs Ray: pip install "landfall[ray]" '
                            '(ray[data,serve])') from None
    return ray


def connect(address: str | None, num_cpus: int) -> None:
    """Join the cluster at ``address``, or start a local one with ``num_cpus`` CPUs."""
    ray = _require_ray()
    if ray.is_initialized():
        return
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "configure_logging": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=num_cpus, **kw)


class _Actor:
    """One chunk worker per actor, its torch thread count set; chunks travel as JSON text
    (plain strings in Ray Data's Arrow blocks)."""

    def __init__(self, worker_cls: type, kwargs: dict, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.worker = worker_cls(**kwargs)

    def __call__(self, batch: dict) -> dict:
        out = [json.dumps(self.worker(**json.loads(c))) for c in batch["chunk"]]
        return {"i": batch["i"], "out": out}


def ray_engine(*, address: str | None = None, actors: int = 2, threads: int = 1):
    """An engine (``inference.chunks``) that maps the chunks over ``actors`` Ray actors of
    ``threads`` CPUs each."""
    if actors < 1 or threads < 1:
        raise LandfallError(f"--actors {actors} --threads {threads}: give 1 or more")

    def run(worker_cls: type, kwargs: dict, chunks: Iterable[dict]) -> Iterator[Any]:
        connect(address, actors * threads)
        import ray

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per execution
        items = [{"i": i, "chunk": json.dumps(c)} for i, c in enumerate(chunks)]
        if not items:
            return
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(_Actor, fn_constructor_args=(worker_cls, kwargs, threads),
                            batch_size=1, num_cpus=threads,
                            compute=ray.data.ActorPoolStrategy(size=actors))
        for expected, row in enumerate(ds.iter_rows()):
            if row["i"] != expected:  # preserve_order is what makes the file right
                raise LandfallError(f"Ray returned chunk {row['i']} where {expected} was due")
            out = json.loads(row["out"])
            yield tuple(out) if isinstance(out, list) else out

    return run
