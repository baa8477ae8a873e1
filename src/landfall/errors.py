"""User-facing errors.

Every problem a user can fix (bad data, bad config, a missing file) is raised as a
``LandfallError``; the CLI prints its message and exits with status 2 instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class LandfallError(Exception):
    """An error the user can fix; its message says what and where."""


class ConfigError(LandfallError):
    """A bad configuration file or override."""


class DataError(LandfallError):
    """Bad input data. The message names the file, the line (1-based) and the field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = self.path or "<data>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")
