"""Conversations: a bounded, expiring store of the last turns of each conversation id.

At most ``max_conversations`` are held (the least recently used is dropped first) and one
idle for ``ttl_s`` expires; a message naming an expired or unknown id starts a new
conversation, and the reply says so. ``collections.OrderedDict`` is the LRU; no library adds
much over it for one process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class Turn:
    user: str
    assistant: str
    route: str


@dataclass
class Conversation:
    id: str
    turns: list[Turn] = field(default_factory=list)
    failures: int = 0  # consecutive answers that did not help (don't know, refusal)
    seen: float = field(default_factory=time.monotonic)


class Conversations:
    def __init__(self, max_conversations: int, ttl_s: float, keep_turns: int) -> None:
        self.max, self.ttl, self.keep = max_conversations, ttl_s, keep_turns
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()
        self.expired = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, cid: str | None) -> tuple[Conversation, str | None]:
        """(the conversation, a note when the id was unknown or expired and a new one began)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if cid and cid in self._items:
                conv = self._items.pop(cid)
                conv.seen = now
                self._items[cid] = conv
                return conv, None
            note = None
            if cid:
                note = (f"conversation {cid!r} is unknown or expired; this is a new "
                        "conversation")
                self.expired += 1
            conv = Conversation(uuid.uuid4().hex[:16])
            self._items[conv.id] = conv
            while len(self._items) > self.max:
                self._items.popitem(last=False)
            return conv, note

    def add(self, conv: Conversation, turn: Turn, failed: bool) -> None:
        with self._lock:
            conv.turns = (conv.turns + [turn])[-max(self.keep, 1):]
            conv.failures = conv.failures + 1 if failed else 0
            conv.seen = time.monotonic()

    def _expire(self, now: float) -> None:
        while self._items:
            cid, conv = next(iter(self._items.items()))
            if now - conv.seen <= self.ttl:
                break
            del self._items[cid]
