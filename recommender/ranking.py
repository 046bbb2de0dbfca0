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
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._selection_kernels import greedy, greedy_rows
from .errors import InvalidParameterError
from .neighbors import TimePrior
from .options import MAX_DAYS, MIN_RESULTS, MIN_SCORE, NO_FILTERS, Filters, check_days, check_list_options

__all__ = [
    "MAX_DAYS",
    "MAX_K",
    "MIN_RESULTS",
    "MIN_SCORE",
    "RankingOptions",
    "Related",
    "TermWeight",
    "check_days",
    "check_k",
    "choose",
    "choose_rows",
    "explain",
    "pool_size",
    "title_key",
]


# The longest list one can ask for: a box shows about ten, and an editor's view of the neighbourhood a few
# hundred; a list's cost grows with k, so a mistyped k cannot run for minutes or exhaust memory.
MAX_K = 1000


def check_k(k: object) -> int:
    """``k`` as an int, or :class:`InvalidParameterError` unless it is a whole number from 1 to :data:`MAX_K`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise InvalidParameterError(f"k must be a whole number from 1 to {MAX_K:,}, got {k!r}")
    return int(k)


@dataclass(frozen=True, slots=True)
class TermWeight:
    """A term shared by query and result, and its contribution to their cosine."""

    term: str
    weight: float


@dataclass(frozen=True, slots=True)
class Related:
    """One related article.

    ``score`` (0 to 1) ranks the list: the cosine ``similarity`` to the query, weighted by the topic gate
    and the time prior when they are on, and by the meaning gate when both articles have semantic vectors
    (``semantic``: their cosine; ``None``: not used for this result, see :mod:`recommender.blend`). ``why``
    holds the shared terms behind the similarity, and ``rule`` the editor's rule that placed it (a pin), with
    ``explain``.
    """

    id: str
    title: str
    url: str | None
    published: str | None
    section: str | None
    score: float
    similarity: float | None = None
    why: tuple[TermWeight, ...] = ()
    rule: str | None = None
    semantic: float | None = None
    image: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.semantic is None:
            del data["semantic"]
        if self.image is None:
            del data["image"]
        if not self.why:
            del data["why"]
        if self.rule is None:
            del data["rule"]
        return data


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
    semantic: gate scores by the articles' semantic vectors where the state has them (:mod:`recommender.blend`).
    only: which articles a list may hold (:class:`~recommender.options.Filters`; its default: any).
    """

    half_life_days: float | None = 7.0
    time_weight: float = 0.2
    newer: bool = True
    within_days: float | None = None
    dedup: float | None = 0.8
    diversity: float = 0.0
    min_score: float = MIN_SCORE
    min_results: int = MIN_RESULTS
    semantic: bool = True
    only: Filters = NO_FILTERS

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise InvalidParameterError(f"half_life_days must be above 0 (or None for off), got {self.half_life_days}")
        if self.within_days is not None:
            check_days(self.within_days)
        if not 0.0 < self.time_weight <= 1.0:
            raise InvalidParameterError(f"time_weight must be in (0, 1], got {self.time_weight}")
        if self.dedup is not None and not 0.0 < self.dedup <= 1.0:
            raise InvalidParameterError(f"dedup must be a cosine in (0, 1] (or None for off), got {self.dedup}")
        check_list_options(self.diversity, self.min_score, self.min_results)

    def prior(self, *, newer: bool | None = None) -> TimePrior:
        """The time prior and filters for the search kernel (``newer`` overrides this list's own)."""
        return TimePrior(
            self.half_life_days, self.time_weight, self.newer if newer is None else newer, self.within_days
        )


_WORKSPACE = threading.local()


def term_slots(n_terms: int) -> np.ndarray:
    """This thread's zeroed workspace of one int32 per term, for the selection kernels (which leave it
    zeroed): allocated once per thread and vocabulary size, as a lookup is too short to pay for zeroing it."""
    slots: np.ndarray | None = getattr(_WORKSPACE, "slots", None)
    if slots is None or slots.shape[0] != n_terms:
        slots = _WORKSPACE.slots = np.zeros(n_terms, np.int32)
    return slots


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
            greedy(
                rows,
                np.ascontiguousarray(scores[valid], dtype=np.float64),
                int(k),
                np.asarray(matrix.indptr),
                np.asarray(matrix.indices),
                np.asarray(matrix.data),
                np.asarray(title_ids),
                -1.0 if options.dedup is None else float(options.dedup),
                float(options.diversity),
                term_slots(matrix.shape[1]),
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
            score_of = dict(zip(rows[r].tolist(), scores[r].tolist(), strict=True))
            indices[r, : len(chosen)] = chosen
            out[r, : len(chosen)] = [score_of[c] for c in chosen]
    elif options.dedup is None and options.diversity == 0:
        keep = (rows[:, :k] >= 0) & (scores[:, :k] > 0)
        indices[:, : rows[:, :k].shape[1]] = np.where(keep, rows[:, :k], -1)
        out[:, : rows[:, :k].shape[1]] = np.where(keep, scores[:, :k], 0)
    else:
        if not matrix.has_sorted_indices:
            matrix = matrix.sorted_indices()
        dedup = -1.0 if options.dedup is None else float(options.dedup)
        greedy_rows(
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
            term_slots(matrix.shape[1]),
        )
    return indices, np.minimum(out, np.float32(1.0))


def _threshold(chosen: list[int], scores: dict[int, float], options: RankingOptions) -> list[int]:
    """Drop results below ``min_score``, unless fewer than ``min_results`` would remain."""
    keep = [r for r in chosen if scores[r] >= options.min_score]
    if len(keep) < options.min_results:
        below = set([r for r in chosen if scores[r] < options.min_score][: options.min_results - len(keep)])
        kept = set(keep)
        keep = [r for r in chosen if r in kept or r in below]
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
