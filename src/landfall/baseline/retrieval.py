"""The honest baseline of a generation task: answer with the training response whose request is
nearest (TF-IDF cosine over word uni+bigrams) to the new request. No model, no generation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer


def nearest_responses(train_requests: Sequence[str], train_responses: Sequence[str],
                      requests: Sequence[str]) -> tuple[list[str], list[int]]:
    """(the retrieved response for each request, the index of the training row it came from)."""
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    train = vec.fit_transform(train_requests)
    sims = vec.transform(requests) @ train.T  # rows are L2-normalised: this is the cosine
    best = np.asarray(sims.argmax(axis=1)).ravel()
    return [train_responses[i] for i in best], best.tolist()
