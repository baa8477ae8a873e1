"""The honest classic baseline: NB-weighted logistic regression over word uni+bigrams.

Binary tasks (k == 2) use "NB-SVM" / NB-LR (Wang & Manning, 2012): sublinear TF-IDF
features of word uni- and bigrams are scaled by the naive-Bayes log-count ratio
``r = log((p / |p|_1) / (q / |q|_1))`` (``p``, ``q``: smoothed feature sums of the positive
and negative class) and fed to an L2 logistic regression. Multi-class tasks (k > 2) use
plain TF-IDF + multinomial logistic regression: one-vs-rest NB ratios would need k separate
models for little gain on short intent queries.

Measured on IMDb (``/work/shared/data/imdb/train.jsonl.gz``, seeded stratified 10 % validation
split, ``train_test_split(stratify=y, random_state=0)``, 22,500 train / 2,500 validation):
accuracy 92.92 %, macro-F1 0.929, ECE 0.032, train 29 s (vectorise ~19 s + liblinear ~10 s) on
2 shared CPU cores, with the defaults ``C=30`` and NB smoothing ``alpha=0.25`` (chosen once on
this split and re-checked on a ``random_state=1`` split: 92.3 %; ``alpha=1`` loses ~0.6-0.8
points because TF-IDF feature sums are small). Measured by ``run_baseline`` on that split::

    rows = [json.loads(s) for s in gzip.open("train.jsonl.gz", "rt")]
    texts, y = [r["text"] for r in rows], [int(r["label"] == "pos") for r in rows]
    tx, vx, ty, vy = train_test_split(texts, y, test_size=0.1, stratify=y, random_state=0)
    run_baseline(tx, ty, vx, vy, ["neg", "pos"])

On BANKING77 (10 % split, same seed) the multi-class path reaches ~87.5 % in ~11-16 s.
Everything is deterministic: no sampling, and liblinear/lbfgs are seeded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer, strip_accents_unicode
from sklearn.linear_model import LogisticRegression

from landfall.tasks.classification.metrics import compute_metrics

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# Words of letters/digits with inner apostrophes kept ("don't", "it's"); single letters count.
TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"  # a tokeniser regex, not a password  # nosec B105


def preprocess(text: str) -> str:
    """Strip HTML line breaks, accents and case (a custom preprocessor replaces sklearn's)."""
    return strip_accents_unicode(_BR.sub(" ", text).lower())


class Baseline:
    """NB-LR (binary) or TF-IDF + LR (multi-class) over word uni+bigrams."""

    name = "nbsvm-uni+bigram"

    def __init__(self, C: float = 30.0, alpha: float = 0.25, seed: int = 0) -> None:
        self.C = C
        self.alpha = alpha
        self.seed = seed
        self.n_classes = 0
        self.vectorizer: TfidfVectorizer | None = None
        self.ratio: np.ndarray | None = None
        self.model: LogisticRegression | None = None

    def _features(self, texts: Sequence[str], fit: bool = False) -> sp.csr_matrix:
        """TF-IDF features, scaled by the NB log-count ratio for binary tasks."""
        if fit:
            self.vectorizer = TfidfVectorizer(
                preprocessor=preprocess,
                token_pattern=TOKEN_PATTERN,
                ngram_range=(1, 2),
                min_df=2,
                max_df=0.9,
                sublinear_tf=True,
                dtype=np.float32,
            )
            x = self.vectorizer.fit_transform(texts)
        else:
            if self.vectorizer is None:
                raise RuntimeError("Baseline.fit must be called before predict_proba")
            x = self.vectorizer.transform(texts)
        if self.ratio is not None:
            x = x.multiply(self.ratio).tocsr()
        return x

    def _nb_ratio(self, x: sp.csr_matrix, y: np.ndarray) -> np.ndarray:
        """Smoothed naive-Bayes log-count ratio of class 1 over class 0 per feature."""
        p = self.alpha + np.asarray(x[y == 1].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(x[y == 0].sum(axis=0)).ravel()
        return np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)

    def fit(self, texts: Sequence[str], y: Sequence[int], n_classes: int) -> Baseline:
        """Fit the vectoriser, the NB ratios (binary only) and the logistic regression."""
        labels = np.asarray(y, dtype=np.int64)
        if len(texts) != labels.shape[0]:
            raise ValueError(f"{len(texts)} texts but {labels.shape[0]} labels")
        self.n_classes = n_classes
        self.ratio = None
        x = self._features(texts, fit=True)
        if n_classes == 2:
            self.ratio = self._nb_ratio(x, labels)
            x = x.multiply(self.ratio).tocsr()
        solver = "liblinear" if n_classes == 2 else "lbfgs"
        self.model = LogisticRegression(
            C=self.C, max_iter=1000, solver=solver, random_state=self.seed
        )
        self.model.fit(x, labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (n, n_classes); classes unseen in training get 0."""
        if self.model is None:
            raise RuntimeError("Baseline.fit must be called before predict_proba")
        part = self.model.predict_proba(self._features(texts))
        probs = np.zeros((part.shape[0], self.n_classes), dtype=np.float64)
        probs[:, self.model.classes_] = part
        return probs


def run_baseline(
    train_texts: Sequence[str],
    train_y: Sequence[int],
    val_texts: Sequence[str],
    val_y: Sequence[int],
    labels: list[str],
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the baseline on train, score it on validation: ``{name, train_seconds, metrics}``."""
    baseline = Baseline(seed=seed)
    start = time.perf_counter()
    baseline.fit(train_texts, train_y, n_classes=len(labels))
    train_seconds = time.perf_counter() - start
    probs = baseline.predict_proba(val_texts)
    return {
        "name": baseline.name,
        "train_seconds": round(train_seconds, 2),
        "metrics": compute_metrics(val_y, probs, labels),
    }
