"""The retrieval head: hybrid search over a small document collection.

Dense: MiniLM sentence vectors (``inference.embed.Embedder``) in a FAISS inner-product index
(exact, ``IndexFlatIP``: a support knowledge base holds thousands of passages, where exact
search takes well under a millisecond; FAISS lets a user swap in an approximate index for
millions). Sparse: BM25 (``bm25s``). The two rankings are fused by reciprocal rank fusion
(Cormack et al., 2009), which needs no score calibration between the two; no library fuses
two rankers in a few lines, so it is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from landfall.errors import LandfallError

RRF_K = 60  # the constant of reciprocal rank fusion (the paper's default)


@dataclass
class Hit:
    index: int  # row in the collection
    score: float  # fused score (higher = better)
    dense: float  # cosine of the query and the document
    sparse: float  # BM25 score


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise LandfallError("retrieval needs faiss-cpu and bm25s: pip install "
                            "'landfall[assistant]'") from exc
    return faiss


def _bm25():
    try:
        import bm25s
    except ImportError as exc:
        raise LandfallError("retrieval needs faiss-cpu and bm25s: pip install "
                            "'landfall[assistant]'") from exc
    return bm25s


class HybridIndex:
    """Dense + BM25 search over ``texts`` whose unit vectors are ``vectors``."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, dense_weight: float = 1.0,
                 sparse_weight: float = 1.0) -> None:
        if len(texts) != len(vectors):
            raise LandfallError(f"retrieval: {len(texts)} texts but {len(vectors)} vectors")
        self.texts = list(texts)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.dense_weight, self.sparse_weight = dense_weight, sparse_weight
        self._dense = _faiss().IndexFlatIP(self.vectors.shape[1] if len(self.vectors) else 1)
        if len(self.vectors):
            self._dense.add(self.vectors)
        bm25s = _bm25()
        self._sparse = bm25s.BM25()
        self._tokenize = lambda xs: bm25s.tokenize(list(xs), stopwords="en", show_progress=False)
        if self.texts:
            self._sparse.index(self._tokenize(self.texts), show_progress=False)

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, query_vectors: np.ndarray, queries: Sequence[str], k: int,
               exclude: Sequence[set[int]] | None = None, depth: int = 50) -> list[list[Hit]]:
        """The ``k`` best documents per query (fused), skipping ``exclude[i]`` for query i."""
        n = len(self.texts)
        if n == 0:
            return [[] for _ in queries]
        depth = min(n, max(depth, k))
        q = np.ascontiguousarray(query_vectors, dtype=np.float32)
        dense_scores, dense_ids = self._dense.search(q, depth)
        sparse_ids, sparse_scores = self._sparse.retrieve(
            self._tokenize(queries), k=depth, show_progress=False, n_threads=1)
        out = []
        for i in range(len(queries)):
            skip = exclude[i] if exclude else set()
            fused: dict[int, float] = {}
            cos = {}
            for rank, (d, s) in enumerate(zip(dense_ids[i], dense_scores[i], strict=True)):
                if d >= 0 and int(d) not in skip:
                    fused[int(d)] = fused.get(int(d), 0.0) + self.dense_weight / (RRF_K + rank)
                    cos[int(d)] = float(s)
            bm = {}
            for rank, (d, s) in enumerate(zip(sparse_ids[i], sparse_scores[i], strict=True)):
                if int(d) not in skip and float(s) > 0:
                    fused[int(d)] = fused.get(int(d), 0.0) + self.sparse_weight / (RRF_K + rank)
                    bm[int(d)] = float(s)
            best = sorted(fused, key=lambda j: -fused[j])[:k]
            out.append([Hit(j, fused[j], cos.get(j, float(self.vectors[j] @ q[i])),
                            bm.get(j, 0.0)) for j in best])
        return out
