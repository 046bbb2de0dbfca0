"""From similarity scores to the list a reader sees: time prior, no-newer, near-duplicates, diversity,
a score threshold, and the "why related" terms.

News about one event clusters in time, so a candidate's cosine is weighted by
``1 / (1 + days_apart / half_life_days)``: halved at ``half_life_days`` apart, never zero, so a
strongly related older story can still win.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .errors import InvalidParameterError
from .neighbors import top_k_indices

__all__ = ["RankingOptions", "TermWeight", "explain", "select", "time_weights", "title_key"]

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class TermWeight:
    """A term shared by query and result, and its contribution to their cosine."""

    term: str
    weight: float


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """How a list is chosen from the scores.

    half_life_days: time prior (``None``: off); days apart at which a candidate's score is halved.
    newer: allow articles published after the query article (``False``: stable archive lists).
    dedup: cosine at or above which two results are near-duplicates (same story republished): only
        the best is kept. Same-titled results count too. ``None``: off.
    diversity: maximal marginal relevance, 0 (pure relevance) to 1 (most diverse).
    min_score: drop results scoring below this (0 to 1) ...
    min_results: ... unless fewer than this many would remain: then the best ones fill up to it.
    """

    half_life_days: float | None = 3.0
    newer: bool = True
    dedup: float | None = 0.8
    diversity: float = 0.0
    min_score: float = 0.0
    min_results: int = 0

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise InvalidParameterError(f"half_life_days must be above 0 (or None for off), got {self.half_life_days}")
        if self.dedup is not None and not 0.0 < self.dedup <= 1.0:
            raise InvalidParameterError(f"dedup must be a cosine in (0, 1] (or None for off), got {self.dedup}")
        if not 0.0 <= self.diversity <= 1.0:
            raise InvalidParameterError(f"diversity must be between 0 and 1, got {self.diversity}")
        if not 0.0 <= self.min_score <= 1.0:
            raise InvalidParameterError(f"min_score must be between 0 and 1, got {self.min_score}")
        if isinstance(self.min_results, bool) or not isinstance(self.min_results, int) or self.min_results < 0:
            raise InvalidParameterError(f"min_results must be a whole number of 0 or more, got {self.min_results}")


def time_weights(query_ts: np.ndarray, doc_ts: np.ndarray, options: RankingOptions) -> np.ndarray | None:
    """Per-candidate weights (queries × documents) from publication times; ``None`` if nothing applies.

    Undated articles (NaN) are neither weighted nor filtered.
    """
    use_prior = options.half_life_days is not None
    if not use_prior and options.newer:
        return None
    # Days from the corpus's first date fit float32 to within seconds, at half the memory traffic; the
    # origin depends on the documents only, so a lookup and the batch job compute identical weights.
    origin = 0.0 if np.isnan(doc_ts).all() else float(np.nanmin(doc_ts))
    apart = ((doc_ts - origin) / _DAY).astype(np.float32)[None, :] - ((query_ts - origin) / _DAY).astype(np.float32)[
        :, None
    ]
    unknown = np.isnan(apart)
    if unknown.any():
        apart[unknown] = 0.0  # undated: neither weighted nor filtered
    if use_prior:
        weights = np.abs(apart)
        weights /= np.float32(options.half_life_days)
        weights += np.float32(1.0)
        np.reciprocal(weights, out=weights)
    else:
        weights = np.ones(apart.shape, dtype=np.float32)
    if not options.newer:
        # Exact seconds: a story one minute newer must not slip through a rounding.
        later = (doc_ts[None, :] - query_ts[:, None]) > 0  # NaN compares False: undated kept
        weights[later] = 0.0
    return weights


def title_key(title: str | None) -> str:
    """A title reduced to its words, to spot the same headline republished."""
    return " ".join(re.findall(r"\w+", (title or "").lower()))


def select(
    scores: np.ndarray,
    k: int,
    *,
    matrix: sp.csr_matrix,
    key_of: Callable[[int], str],
    options: RankingOptions,
) -> list[int]:
    """The rows of the final list from one query's ``scores`` (already weighted and masked), best first.

    ``key_of(row)`` gives a row's :func:`title_key`, for the same-title test of ``dedup``.
    """
    if options.dedup is None and options.diversity == 0.0 and options.min_score == 0.0:
        return top_k_indices(scores, k).tolist()
    if options.diversity > 0:
        return _select_from(top_k_indices(scores, 4 * k + 10), scores, k, matrix, key_of, options)
    # Greedy in score order is prefix-stable: a small pool gives the same list as a large one unless
    # duplicates use it up, and only then is the large pool needed (similarities cost per candidate).
    small = top_k_indices(scores, 4 * k + 10)
    chosen = _select_from(small[: k + 5], scores, k, matrix, key_of, options, keep_all=True)
    if len(chosen) < k and small.size > k + 5:
        chosen = _select_from(small, scores, k, matrix, key_of, options, keep_all=True)
    return _threshold(chosen, scores, options)


def _select_from(
    pool: np.ndarray,
    scores: np.ndarray,
    k: int,
    matrix: sp.csr_matrix,
    key_of: Callable[[int], str],
    options: RankingOptions,
    keep_all: bool = False,
) -> list[int]:
    if pool.size == 0:
        return []
    sims = _gram(matrix[pool])
    rel = scores[pool].astype(np.float64)
    keys = [key_of(int(r)) for r in pool] if options.dedup is not None else []
    chosen: list[int] = []
    alive = np.ones(pool.size, dtype=bool)
    while len(chosen) < k and alive.any():
        if options.diversity > 0 and chosen:
            penalty = sims[:, chosen].max(axis=1)
            value = (1 - options.diversity) * rel - options.diversity * penalty
        else:
            value = rel.copy()
        value[~alive] = -np.inf
        best = int(np.argmax(value))
        alive[best] = False
        if options.dedup is not None and chosen:
            if (sims[best, chosen] >= options.dedup).any() or keys[best] in {keys[c] for c in chosen}:
                continue
        chosen.append(best)
    picked = [int(pool[c]) for c in chosen]
    return picked if keep_all else _threshold(picked, scores, options)


def _gram(rows: sp.csr_matrix) -> np.ndarray:
    """Cosines among a few sparse rows, on their own columns only (a sparse transpose would cost
    the whole vocabulary's width per call)."""
    cols, local = np.unique(rows.indices, return_inverse=True)
    dense = np.zeros((rows.shape[0], cols.size), dtype=np.float32)
    dense[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), local] = rows.data
    return dense @ dense.T


def _threshold(chosen: list[int], scores: np.ndarray, options: RankingOptions) -> list[int]:
    """Drop results below ``min_score``, unless fewer than ``min_results`` would remain."""
    keep = [r for r in chosen if scores[r] >= options.min_score]
    if len(keep) < options.min_results:
        below = [r for r in chosen if scores[r] < options.min_score][: options.min_results - len(keep)]
        keep = [r for r in chosen if r in keep or r in below]
    return keep


def explain(
    query: sp.csr_matrix, row: sp.csr_matrix, term_of: Callable[[int], str | None], n: int = 5
) -> tuple[TermWeight, ...]:
    """The ``n`` shared terms contributing most to the cosine of two L2-normalised rows."""
    shared = query.multiply(row).tocoo()
    if shared.nnz == 0:
        return ()
    order = np.argsort(-shared.data, kind="stable")[:n]
    return tuple(TermWeight(term_of(int(shared.col[i])) or "", round(float(shared.data[i]), 6)) for i in order)
