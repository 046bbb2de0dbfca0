"""From candidates to the list a reader sees: the ranking options, near-duplicates, diversity, a score
threshold, and the "why related" terms.

The time prior the options set is applied inside the search kernel (:mod:`recommender.neighbors`): news
about one event clusters in time, so a candidate's cosine is weighted by
``1 - time_weight + time_weight / (1 + days_apart / half_life_days)``. With the default small weight, time
orders stories of similar relatedness but cannot lift an unrelated story of the same day over a related
older one (graded judgments: docs/quality.md); ``time_weight=1`` is the full hyperbolic decay, for sites
that want recency first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from .errors import InvalidParameterError
from .neighbors import TimePrior, _dot_with_row

__all__ = [
    "MIN_RESULTS",
    "MIN_SCORE",
    "RankingOptions",
    "TermWeight",
    "choose",
    "choose_rows",
    "explain",
    "pool_size",
    "title_key",
]


# The default floor under a list, chosen on the graded judgments (docs/quality.md): results scoring below
# 0.05 were all judged unrelated, so the box shows fewer rather than filling up with noise.
MIN_SCORE = 0.05
MIN_RESULTS = 0


@dataclass(frozen=True, slots=True)
class TermWeight:
    """A term shared by query and result, and its contribution to their cosine."""

    term: str
    weight: float


@dataclass(frozen=True, slots=True)
class RankingOptions:
    """How a list is chosen from the scores.

    half_life_days: time prior (``None``: off): the scale in days of its decay.
    time_weight: the share of a candidate's score that decays with time (0 to 1; 1: halved at
        ``half_life_days`` apart). See :class:`~recommender.neighbors.TimePrior`.
    newer: allow articles published after the query article (``False``: stable archive lists).
    within_days: only articles published within this many days of the query article (``None``: any).
    dedup: cosine at or above which two results are near-duplicates (same story republished): only
        the best is kept. Same-titled results count too. ``None``: off.
    diversity: maximal marginal relevance, 0 (pure relevance) to 1 (most diverse).
    min_score: drop results scoring below this (0 to 1) ...
    min_results: ... unless fewer than this many would remain: then the best ones fill up to it.
    """

    half_life_days: float | None = 7.0
    time_weight: float = 0.2
    newer: bool = True
    within_days: float | None = None
    dedup: float | None = 0.8
    diversity: float = 0.0
    min_score: float = MIN_SCORE
    min_results: int = MIN_RESULTS

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise InvalidParameterError(f"half_life_days must be above 0 (or None for off), got {self.half_life_days}")
        if self.within_days is not None and not 0.0 <= self.within_days < 1e6:  # NaN fails too
            raise InvalidParameterError(f"within_days must be 0 or more days, got {self.within_days}")
        if not 0.0 < self.time_weight <= 1.0:
            raise InvalidParameterError(f"time_weight must be in (0, 1], got {self.time_weight}")
        if self.dedup is not None and not 0.0 < self.dedup <= 1.0:
            raise InvalidParameterError(f"dedup must be a cosine in (0, 1] (or None for off), got {self.dedup}")
        if not 0.0 <= self.diversity <= 1.0:
            raise InvalidParameterError(f"diversity must be between 0 and 1, got {self.diversity}")
        if not 0.0 <= self.min_score <= 1.0:
            raise InvalidParameterError(f"min_score must be between 0 and 1, got {self.min_score}")
        if isinstance(self.min_results, bool) or not isinstance(self.min_results, int) or self.min_results < 0:
            raise InvalidParameterError(f"min_results must be a whole number of 0 or more, got {self.min_results}")

    def prior(self, *, newer: bool | None = None) -> TimePrior:
        """The time prior and filters for the search kernel (``newer`` overrides this list's own)."""
        return TimePrior(
            self.half_life_days, self.time_weight, self.newer if newer is None else newer, self.within_days
        )


def title_key(title: str | None) -> str:
    """A title reduced to its words, to spot the same headline republished."""
    return " ".join(re.findall(r"\w+", (title or "").lower()))


def pool_size(k: int, options: RankingOptions) -> int:
    """Candidates to gather per query so the list survives near-duplicates and diversity."""
    return k if options.dedup is None and options.diversity == 0.0 else 4 * k + 10


def choose(
    rows: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    matrix: sp.csr_matrix,
    title_ids: np.ndarray,
    options: RankingOptions,
) -> list[int]:
    """The final list from a query's candidates (``rows`` best first by ``scores``; ``-1`` pads).

    Greedy in score order, skipping near-duplicates of what is already chosen (same ``title_ids``
    entry, or cosine at or above ``dedup``); with ``diversity`` the next pick maximises marginal
    relevance instead. Then the ``min_score`` / ``min_results`` rule.
    """
    if not matrix.has_sorted_indices:  # rows are compared by merging their columns
        matrix = matrix.sorted_indices()
    valid = (rows >= 0) & (scores > 0)
    rows = np.ascontiguousarray(rows[valid], dtype=np.int64)
    picked = rows[: int(k)]
    if options.dedup is not None or options.diversity > 0:
        picked = rows[
            _greedy(
                rows,
                np.ascontiguousarray(scores[valid], dtype=np.float64),
                int(k),
                np.asarray(matrix.indptr),
                np.asarray(matrix.indices),
                np.asarray(matrix.data),
                np.asarray(title_ids),
                -1.0 if options.dedup is None else float(options.dedup),
                float(options.diversity),
            )
        ]
    chosen = picked.tolist()
    if options.min_score > 0 or options.min_results > 0:
        by_row = dict(zip(rows.tolist(), scores[valid].tolist(), strict=True))
        chosen = _threshold(chosen, by_row, options)
    return chosen


def choose_rows(
    rows: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    matrix: sp.csr_matrix,
    title_ids: np.ndarray,
    options: RankingOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`choose` for many queries at once: ``(indices, scores)``, each ``(queries, k)``, ``-1`` / 0 padded."""
    n = rows.shape[0]
    indices = np.full((n, k), -1, dtype=np.int64)
    out = np.zeros((n, k), dtype=np.float32)
    if options.min_score > 0 or options.min_results > 0:
        for r in range(n):
            chosen = choose(rows[r], scores[r], k, matrix=matrix, title_ids=title_ids, options=options)
            indices[r, : len(chosen)] = chosen
            out[r, : len(chosen)] = [scores[r][rows[r] == c][0] for c in chosen]
    elif options.dedup is None and options.diversity == 0:
        keep = (rows[:, :k] >= 0) & (scores[:, :k] > 0)
        indices[:, : rows[:, :k].shape[1]] = np.where(keep, rows[:, :k], -1)
        out[:, : rows[:, :k].shape[1]] = np.where(keep, scores[:, :k], 0)
    else:
        if not matrix.has_sorted_indices:
            matrix = matrix.sorted_indices()
        dedup = -1.0 if options.dedup is None else float(options.dedup)
        _greedy_rows(
            rows,
            scores,
            k,
            matrix.indptr,
            matrix.indices,
            matrix.data,
            title_ids,
            dedup,
            options.diversity,
            indices,
            out,
        )
    return indices, np.minimum(out, np.float32(1.0))


@numba.njit(nogil=True, cache=True)
def _greedy_rows(rows, scores, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity, out_rows, out_scores):
    for r in range(rows.shape[0]):
        n_valid = 0
        while n_valid < rows.shape[1] and rows[r, n_valid] >= 0 and scores[r, n_valid] > 0:
            n_valid += 1
        cand = rows[r, :n_valid].copy()
        rel = scores[r, :n_valid].astype(np.float64)
        picked = _greedy(cand, rel, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity)
        for j in range(picked.shape[0]):
            out_rows[r, j] = cand[picked[j]]
            out_scores[r, j] = scores[r, picked[j]]


@numba.njit(nogil=True, cache=True)
def _greedy(rows, rel, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity):
    """Positions in ``rows`` of the chosen candidates, in the order chosen."""
    n = rows.shape[0]
    chosen = np.empty(min(k, n), np.int64)
    n_chosen = 0
    alive = np.ones(n, np.bool_)
    penalty = np.zeros(n, np.float64)  # highest cosine to anything chosen so far (MMR)
    while n_chosen < k:
        best = -1
        best_value = -np.inf
        for i in range(n):
            if not alive[i]:
                continue
            value = rel[i]
            if diversity > 0 and n_chosen > 0:
                value = (1 - diversity) * rel[i] - diversity * penalty[i]
            if value > best_value:
                best = i
                best_value = value
        if best < 0:
            break
        alive[best] = False
        b = rows[best]
        b_idx = x_indices[x_indptr[b] : x_indptr[b + 1]]
        b_val = x_data[x_indptr[b] : x_indptr[b + 1]]
        if dedup > 0:
            duplicate = False
            for j in range(n_chosen):
                c = rows[chosen[j]]
                if title_ids[c] == title_ids[b]:
                    duplicate = True
                    break
                sim = _dot_with_row(b_idx, b_val, x_indptr, x_indices, x_data, c)
                if sim >= dedup:
                    duplicate = True
                    break
            if duplicate:
                continue
        chosen[n_chosen] = best
        n_chosen += 1
        if diversity > 0:
            for i in range(n):
                if alive[i]:
                    sim = _dot_with_row(b_idx, b_val, x_indptr, x_indices, x_data, rows[i])
                    if sim > penalty[i]:
                        penalty[i] = sim
    return chosen[:n_chosen]


def _threshold(chosen: list[int], scores: dict[int, float], options: RankingOptions) -> list[int]:
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
