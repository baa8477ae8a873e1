"""What a service does with a request's text besides answering it: screen it with a guard
(a harmful-content classifier run; refuse or flag) and log it, PII redacted if asked.

The guard, the redactor and the audit's summary are handed in by the caller (``landfall.api``
builds them from ``landfall.safety``), so the service needs only their shape:
``guard.check(texts)`` returns verdicts with ``harmful``, ``score``, ``label`` and
``to_json()``; ``redactor(texts)`` returns the texts with their PII replaced by its type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from landfall.config import ServeConfig
from landfall.errors import LandfallError
from landfall.runs import append_jsonl
from landfall.serving.http import Refused


class Screen:
    def __init__(self, cfg: ServeConfig, guard: Any = None,
                 redactor: Callable[[list[str]], list[str]] | None = None,
                 audit: dict | None = None) -> None:
        # a setting without its object would silently serve unguarded (or log raw PII)
        if cfg.guard and guard is None:
            raise LandfallError(f"serve.guard={cfg.guard!r} but no guard was built: serve "
                                "with landfall.serve / landfall.api.serve_safety")
        if cfg.redact_pii and cfg.log_requests and redactor is None:
            raise LandfallError("serve.redact_pii is on but no redactor was built: serve "
                                "with landfall.serve / landfall.api.serve_safety")
        if cfg.require_audit and audit is None:
            raise LandfallError(f"serve.require_audit={cfg.require_audit!r} but the audit was "
                                "not checked: serve with landfall.serve / "
                                "landfall.api.serve_safety")
        self.cfg, self.guard, self.redactor, self.audit = cfg, guard, redactor, audit
        self.refuse = cfg.guard_action == "refuse"

    def info(self) -> dict:
        """What /v1/model adds: the audit that cleared the run (its waivers included) and
        the guard's harmful classes."""
        out: dict = {"audit": self.audit}
        if self.guard is not None:
            out["guard"] = {"harmful_classes": list(getattr(self.guard, "labels", [])),
                            "threshold": self.cfg.guard_threshold,
                            "action": self.cfg.guard_action}
        return out

    @property
    def active(self) -> bool:
        return self.guard is not None

    def check(self, texts: Sequence[str], what: str = "texts") -> list[dict] | None:
        """The guard's verdicts (None without a guard); a Refused when refusing is the action
        and a text is harmful. Runs the guard model: call it from a worker thread."""
        if self.guard is None:
            return None
        verdicts = self.guard.check(list(texts))
        for i, v in enumerate(verdicts):
            if v.harmful and self.refuse:
                where = what if len(texts) == 1 and what != "texts" else f"{what}[{i}]"
                raise Refused(422, f"{where}: refused by the guard ({v.label}, harmful "
                              f"score {v.score:.2f} >= {self.cfg.guard_threshold})",
                              "guard_refused")
        return [v.to_json() for v in verdicts]

    def log(self, path: str, texts: Sequence[str], answer: Any) -> None:
        """Append the request to ``serve.log_requests`` (JSONL), PII redacted when
        ``serve.redact_pii`` is on. Call it from a worker thread."""
        if not self.cfg.log_requests:
            return
        shown = list(texts)
        if self.redactor is not None:
            shown = self.redactor(shown)
        append_jsonl(self.cfg.log_requests, {"time": time.time(), "path": path,
                                             "texts": shown, "answer": answer})
