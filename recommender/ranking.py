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
    apart = doc_ts[None, :] - query_ts[:, None]
    unknown = np.isnan(apart)
    weights = np.ones(apart.shape, dtype=np.float32)
    if use_prior:
        days = np.abs(np.where(unknown, 0.0, apart)) / _DAY
        weights = (1.0 / (1.0 + days / options.half_life_days)).astype(np.float32)  # type: ignore[operator]
    if not options.newer:
        weights[~unknown & (apart > 0)] = 0.0
    return weights


def title_key(title: str | None) -> str:
    """A title reduced to its words, to spot the same headline republished."""
    return " ".join(re.findall(r"\w+", (title or "").lower()))


def select(
    scores: np.ndarray,
    k: int,
    *,
    matrix: sp.csr_matrix,
    title_of: Callable[[int], str | None],
    options: RankingOptions,
) -> list[int]:
    """The rows of the final list from one query's ``scores`` (already weighted and masked), best first."""
    plain = options.dedup is None and options.diversity == 0.0 and options.min_score == 0.0
    if plain:
        return top_k_indices(scores, k).tolist()
    pool = top_k_indices(scores, 4 * k + 10)
    if pool.size == 0:
        return []
    rel = scores[pool].astype(np.float64)
    sims = (matrix[pool] @ matrix[pool].T).toarray()
    keys = [title_key(title_of(int(r))) for r in pool] if options.dedup is not None else []
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
    keep = [c for c in chosen if rel[c] >= options.min_score]
    if len(keep) < options.min_results:
        below = [c for c in chosen if rel[c] < options.min_score][: options.min_results - len(keep)]
        keep = [c for c in chosen if c in keep or c in below]
    return pool[keep].tolist()


def explain(
    query: sp.csr_matrix, row: sp.csr_matrix, term_of: Callable[[int], str | None], n: int = 5
) -> tuple[TermWeight, ...]:
    """The ``n`` shared terms contributing most to the cosine of two L2-normalised rows."""
    shared = query.multiply(row).tocoo()
    if shared.nnz == 0:
        return ()
    order = np.argsort(-shared.data, kind="stable")[:n]
    return tuple(TermWeight(term_of(int(shared.col[i])) or "", round(float(shared.data[i]), 6)) for i in order)
