"""Scores of generated text against references: ROUGE (the rouge-score package), length
statistics, entity carry-over, per-category tables; embedding similarity from vectors that
the caller computes (any sentence encoder)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache

import numpy as np

from landfall.errors import LandfallError


@cache
def _scorer(types: tuple[str, ...]):
    """rouge-score's scorer (stemmed), built once per set of ROUGE types."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise LandfallError("evaluating generation needs rouge-score: "
                            "pip install 'landfall[generate]'") from None
    return rouge_scorer.RougeScorer(list(types), use_stemmer=True)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, list[float]]:
    """Per-example ROUGE-1/2/L F-measures (stemmed), as rouge-score computes them."""
    scorer = _scorer(("rouge1", "rouge2", "rougeL"))
    out: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    for p, r in zip(predictions, references, strict=True):
        s = scorer.score(r, p)
        for k in out:
            out[k].append(s[k].fmeasure)
    return out


def rougeL_matrix(texts: Sequence[str]) -> np.ndarray:
    """ROUGE-L F-measures of every text against every other, (n, n), tokenised and stemmed as
    ``rouge`` scores them. Written here because rouge-score computes one pair at a time in
    pure Python (a 130-response intent is 17 k pairs): the longest common subsequence of one
    text against all others runs as one numpy row recurrence, L[i, j] = max over k <= j of
    max(L[i-1, k], L[i-1, k-1] + [a_i == b_k]) (a running maximum)."""
    tok = _scorer(("rougeL",))._tokenizer
    vocab: dict[str, int] = {}
    seqs = [[vocab.setdefault(w, len(vocab)) for w in tok.tokenize(t)] for t in texts]
    n, width = len(seqs), max((len(s) for s in seqs), default=0)
    lens = np.array([len(s) for s in seqs])
    other = np.full((n, width), -1, dtype=np.int64)  # -1 pads: never equal to a token
    for i, s in enumerate(seqs):
        other[i, :len(s)] = s
    out = np.zeros((n, n))
    for i, a in enumerate(seqs):
        row = np.zeros((n, width + 1), dtype=np.int32)
        for token in a:
            diag = row[:, :-1] + (other == token)
            row[:, 1:] = np.maximum.accumulate(np.maximum(row[:, 1:], diag), axis=1)
        lcs = row[np.arange(n), lens].astype(float)
        p, r = lcs / max(len(a), 1), lcs / np.maximum(lens, 1)
        out[i] = np.where(lcs > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    words = np.array([len(t.split()) for t in texts], dtype=np.float64)
    if not len(words):
        return {"mean": 0.0, "median": 0.0, "p10": 0.0, "p90": 0.0, "empty": 0}
    return {"mean": float(words.mean()), "median": float(np.median(words)),
            "p10": float(np.percentile(words, 10)), "p90": float(np.percentile(words, 90)),
            "empty": int((words == 0).sum())}


def carries(response: str, entity: str | None) -> bool | None:
    """Does the response mention the entity of the request (case-insensitive)? None if the
    request tags none."""
    if not entity:
        return None
    return entity.strip().lower() in response.lower()


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0
                     ) -> dict[str, float]:
    """Mean of ``a - b`` over paired examples with a 95 % bootstrap interval: a difference
    whose interval holds 0 is inside the noise of this sample."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(d.mean()), "ci95_low": float(lo), "ci95_high": float(hi)}


def score_generations(predictions: Sequence[str], references: Sequence[str],
                      categories: Sequence[str | None], entities: Sequence[str | None],
                      similarity: Sequence[float] | None = None) -> dict:
    """Overall and per-category figures of one system's responses."""
    r = rouge(predictions, references)
    carried = [carries(p, e) for p, e in zip(predictions, entities, strict=True)]
    rows = {"rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"]}
    if similarity is not None:
        rows["similarity"] = list(map(float, similarity))

    def summary(idx: list[int]) -> dict:
        out = {k: float(np.mean([v[i] for i in idx])) for k, v in rows.items()}
        tagged = [carried[i] for i in idx if carried[i] is not None]
        out["entity_carried"] = float(np.mean(tagged)) if tagged else None
        out["entity_tagged"] = len(tagged)
        out["n"] = len(idx)
        return out

    everything = list(range(len(predictions)))
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(categories):
        by_cat[c or "-"].append(i)
    return {**summary(everything), "length_words": length_stats(predictions),
            "per_category": {c: summary(idx) for c, idx in sorted(by_cat.items())},
            "per_example": rows}
