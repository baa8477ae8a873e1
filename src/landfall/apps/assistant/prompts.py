"""The grounded generator's prompt and answer format, shared by the build (its training data)
and the assistant (at answer time), so that the two never drift apart.

The prompt lists the retrieved passages, numbered, then the customer's message. The answer
starts with one line naming the passages used (``Sources: [1]`` or ``Sources: none``), then the
reply; the assistant strips that line and reports the passages it names. A prompt without
passages is the plain request: the same run then answers as "the generator alone".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

INSTRUCTION = ("Answer the customer from the help articles below. First name the articles you "
               "used, or say that none answers the question.")
SOURCES = re.compile(r"^\s*Sources:\s*((?:\[\d+\][\s,]*)+|none)\s*(?:\n|$)", re.IGNORECASE)


def cut_words(text: str, n: int) -> str:
    words = text.split(" ")
    return text if len(words) <= n else " ".join(words[:n]) + " ..."


def grounded_prompt(request: str, passages: Sequence[tuple[str, str]], passage_words: int,
                    history: Sequence[tuple[str, str]] = ()) -> str:
    """The user turn of the generator: passages (title, text), earlier turns, the message."""
    if not passages and not history:
        return request
    parts = []
    if passages:
        parts.append(INSTRUCTION)
        for i, (title, text) in enumerate(passages, 1):
            q = f"Q: {title}\n" if title else ""
            parts.append(f"[{i}] {q}A: {cut_words(text, passage_words)}")
    for user, assistant in history:
        parts.append(f"Earlier, customer: {user}\nEarlier, you: {cut_words(assistant, 40)}")
    parts.append(f"Customer: {request}")
    return "\n\n".join(parts)


def sources_line(used: Sequence[int]) -> str:
    return "Sources: " + (", ".join(f"[{i}]" for i in used) if used else "none")


def split_sources(answer: str) -> tuple[list[int] | None, str]:
    """(the 1-based passage numbers the answer names, or None when it names no line; the
    answer without that line)."""
    m = SOURCES.match(answer)
    if not m:
        return None, answer
    body = answer[m.end():].lstrip("\n")
    if m.group(1).lower() == "none":
        return [], body
    return [int(x) for x in re.findall(r"\[(\d+)\]", m.group(1))], body
