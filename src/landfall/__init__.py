"""Landfall: take a pretrained transformer through its life cycle.

The public API is generated from the verbs table in ``landfall.api`` (``landfall.train``,
``landfall.generate``, ...); the CLI is generated from the same table.
"""

from __future__ import annotations

# the task plugins first: their folders register the config sections they own ([chat],
# [oos], ...), which the verbs table below lists in each command's --help
from landfall import tasks as _tasks

_tasks.task_names()

from landfall import api as _api  # noqa: E402

__version__ = "0.1.0"
__all__ = list(_api.__all__)


def __getattr__(name: str):
    if name in __all__:
        return getattr(_api, name)
    raise AttributeError(name)
