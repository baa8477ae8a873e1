"""Where the chunks of a streamed output file are computed.

``predict`` and ``generate`` cut their input into chunks (the unit of progress and resume),
hand each chunk to a *chunk worker* (a class built once, called once per chunk, returning the
chunk's JSONL rows) and write the rows in input order. An *engine* decides where the workers
live: ``local`` builds one in this process; ``landfall.scale.ray_batch`` builds a pool of Ray
actors, one worker each. Everything else (reading, checks, fingerprints, resume, writing) is
the same code whatever the engine, so the output file is too.

An engine is ``engine(worker_cls, kwargs, chunks) -> iterator of results``, results in the
order of ``chunks``; ``worker_cls(**kwargs)(**chunk)`` computes one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

Engine = Callable[[type, dict, Iterable[dict]], Iterator[Any]]


def local(worker_cls: type, kwargs: dict, chunks: Iterable[dict]) -> Iterator[Any]:
    worker = worker_cls(**kwargs)
    for chunk in chunks:
        yield worker(**chunk)
