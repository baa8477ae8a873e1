"""Progress bars (tqdm), quiet when not attached to a terminal unless asked."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress_bar(total: int | None = None, desc: str = "", disable: bool = False, **kw) -> tqdm:
    """A tqdm bar; LANDFALL_PROGRESS=0 silences every bar, =1 forces them on."""
    env = os.environ.get("LANDFALL_PROGRESS")
    if env is not None:
        disable = env == "0"
    elif not sys.stderr.isatty():
        kw.setdefault("mininterval", 10.0)  # logs: a line every 10 s, not a flood
    return tqdm(total=total, desc=desc, disable=disable, dynamic_ncols=True, **kw)


def log(message: str) -> None:
    """A status line on stderr that does not break an open progress bar."""
    tqdm.write(message, file=sys.stderr)
