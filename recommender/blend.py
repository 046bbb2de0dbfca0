"""Meaning in the score: each candidate's words score, gated by the semantic cosine of the two articles.

The words (TF-IDF, time prior, topic gate) find a query's candidates (its search pool: at least
:data:`DEPTH`); the score floor cuts on their words scores, and the encoder's vectors then weigh each by
:func:`gate`: ``score · clip((cosine − GATE_FROM) / GATE_SPAN, 0, 1)``. A pair
whose meaning is far apart loses its score however many words it shares, and a pair close in meaning keeps
it. The form, its two constants and the depth were chosen by nested cross-validation by query on the graded
judgments (docs/quality.md, "Meaning beside the words"). The gate is a function of the pair alone (it
never raises a score), so a stored list changes only when an article's words score reaches its last item,
as without vectors: the store's repair stays exact.

A candidate without a vector (not encoded yet) takes the average gate of the query's candidates that have
one; a query without a vector keeps the words' scores (see :func:`recommender.lookups.ranked`).
"""

from __future__ import annotations

import numpy as np

from . import _blend_kernels as kernels
from .state import SemanticVectors

__all__ = ["DEPTH", "GATE_FROM", "GATE_SPAN", "cosines", "gate", "gate_pools"]

GATE_FROM = 0.70  # multilingual-e5's cosines of unrelated news sit around 0.75: below 0.70, no score
GATE_SPAN = 0.30  # ... rising to the whole words score at a cosine of 1
DEPTH = 20  # at least this many of a query's best words candidates are gated (its whole search pool)


def gate(cos: np.ndarray) -> np.ndarray:
    """The share of a words score a pair keeps at semantic cosine ``cos`` (NaN stays NaN)."""
    return np.clip((np.asarray(cos, dtype=np.float32) - np.float32(GATE_FROM)) / np.float32(GATE_SPAN), 0.0, 1.0)


def cosines(vectors: SemanticVectors, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The cosine of each query vector (``(q, dim)``) with the vectors of its candidate ``rows`` (``(q, n)``,
    ``-1`` pads): ``(q, n)`` float32, NaN where a candidate has no vector or pads. (A few pairs, as pinned
    articles are: the lists' candidates go through :func:`gate_pools`.)"""
    rows = np.asarray(rows, dtype=np.int64)
    safe = np.maximum(rows, 0)
    found = np.asarray(vectors.matrix[safe.ravel()], dtype=np.float32).reshape(*rows.shape, -1)
    cos = np.einsum("qnd,qd->qn", found, np.asarray(queries, dtype=np.float32))
    has = (rows >= 0) & np.asarray(vectors.present)[safe]
    return np.where(has, cos, np.float32(np.nan)).astype(np.float32)


# Every float16 bit pattern's float32 value: the compiled kernel reads float16 vectors through it (numba has
# no float16), exactly as numpy converts them.
_HALF = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def gate_pools(
    vectors: SemanticVectors,
    queries: np.ndarray,
    rows: np.ndarray,
    scores: np.ndarray,
    min_score: float,
    min_results: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query's search pool (``rows`` best first by words ``scores``, ``(q, pool)``, ``-1`` pads) under the
    score floor (on the words scores: ``min_score``, filled up to ``min_results`` with the best below it),
    gated by meaning and re-ranked: ``(rows, scores, cosines)``, each ``(q, pool)``, best first, ``-1`` / 0 /
    NaN padded. ``queries``: the queries' vectors ``(q, dim)``; a query of zeros keeps the words' order."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out_rows = np.full(rows.shape, -1, dtype=np.int64)
    out_scores = np.zeros(rows.shape, dtype=np.float32)
    out_cos = np.full(rows.shape, np.nan, dtype=np.float32)
    kernels.gate_pools(
        rows,
        np.ascontiguousarray(scores, dtype=np.float32),
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(vectors.matrix).view(np.uint16),
        np.asarray(vectors.present, dtype=np.bool_),
        _HALF,
        float(min_score),
        int(min_results),
        np.float32(GATE_FROM),
        np.float32(GATE_SPAN),
        out_rows,
        out_scores,
        out_cos,
    )
    return out_rows, out_scores, out_cos
