"""Task plugins, registered by name.

Each task is one folder here with the same layout (``__init__`` declares the ``Task``;
``data``, ``model``, ``objective``, ``metrics`` hold its parts). The built-in folders are found
by scanning this package, so a new task is a new folder and touches nothing else; a task
defined elsewhere (a test, a user's package) calls ``register``.
"""

from __future__ import annotations

import importlib
import pkgutil

from landfall.errors import ConfigError
from landfall.tasks.base import Task, TrainContext

_TASKS: dict[str, Task] = {}
_scanned = False


def register(task: Task) -> Task:
    """Make ``task`` known by ``task.name`` (a later registration of the name replaces it)."""
    if not task.name:
        raise ValueError("a task needs a name")
    _TASKS[task.name] = task
    return task


def _scan() -> None:
    global _scanned
    if _scanned:
        return
    _scanned = True
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")  # registers itself


def task_names() -> list[str]:
    _scan()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The task registered as ``name``, or a ConfigError naming the known ones."""
    _scan()
    if name not in _TASKS:
        raise ConfigError(f"task.name: unknown task {name!r} (known: {', '.join(task_names())})")
    return _TASKS[name]


__all__ = ["Task", "TrainContext", "register", "get_task", "task_names"]
