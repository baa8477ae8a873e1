"""Keep library chatter (load reports, shard-writing bars) out of the user's terminal."""

from __future__ import annotations

import os


def quiet_transformers() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
