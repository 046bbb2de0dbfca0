"""Top-k kernels over L2-normalised sparse rows: one query, blocked all-pairs, and approximate.

One compiled kernel does the work for every lookup and for the batch job: it walks the query's terms'
posting lists in the term-major matrix (so its cost follows document frequencies, never the corpus
size), accumulates cosines in a dense scratch row, weights them by the time prior, and keeps the best
``pool`` in a heap. The N×N product, dense or sparse, is never formed.

Approximate mode, for corpora where exact all-pairs gets slow (:func:`plan` chooses), reads the posting
lists of the few common terms that carry most of the cost only for documents published near the query
(a time window is a slice of rows once the corpus is in time order), reads rarer terms in full, then
re-scores the best candidates exactly on all their terms.

The kernel releases the GIL: the batch job runs it on one thread per core over slices of rows, and
lookups from many threads run side by side.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from . import _neighbors_kernels as kernels
from ._progress import ProgressCallback
from ._sparse import row_ranges

__all__ = [
    "BLOCK_ROWS",
    "EXACT_LIMIT",
    "Approx",
    "Block",
    "Hits",
    "Index",
    "Plan",
    "TimePrior",
    "all_pairs_top_k",
    "available_threads",
    "cost_per_row",
    "lists_entered",
    "pair_scores",
    "plan",
    "query_scores",
    "search",
    "search_blocks",
    "top_k_indices",
]

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Block:
    """Top-k neighbours of rows ``start .. start + len(indices)``; ``-1`` pads rows with fewer than k."""

    start: int
    indices: np.ndarray  # (rows, k) int64
    scores: np.ndarray  # (rows, k) float32


@dataclass(frozen=True, slots=True)
class Hits:
    """Per query row, the best ``pool`` candidates: rows (``-1`` pads), weighted scores and raw cosines."""

    rows: np.ndarray  # (queries, pool) int64
    scores: np.ndarray  # (queries, pool) float32, time-weighted
    similarities: np.ndarray  # (queries, pool) float32, cosine


def _readonly(a: np.ndarray, dtype: type) -> np.ndarray:
    # One array type per argument (read-only, C-contiguous) means one compiled signature, whether the
    # arrays come from a fit or from a memory-mapped file.
    view: np.ndarray = np.ascontiguousarray(np.asarray(a), dtype=dtype).view()
    view.flags.writeable = False
    return view


def _csr_parts(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        _readonly(matrix.indptr, np.int64),
        _readonly(matrix.indices, np.int32),
        _readonly(matrix.data, np.float32),
    )


@dataclass(frozen=True)
class TimePrior:
    """How publication times weigh and filter candidates.

    half_life_days: the decay's scale in days (``None``: off).
    weight: the share of a candidate's score that decays with time: its cosine is multiplied by
        ``1 - weight + weight / (1 + days_apart / half_life_days)``. 1 is the full hyperbolic decay (half
        the score at ``half_life_days``); a small weight lets time order stories of similar relatedness
        without lifting an unrelated story of the same day over a related older one.
    newer: allow candidates published after the query.
    within_days: only candidates published within this many days of the query (``None``: any); an undated
        query has no window, an undated candidate is outside every window.
    """

    half_life_days: float | None = None
    weight: float = 1.0
    newer: bool = True
    within_days: float | None = None

    @property
    def within_seconds(self) -> float:
        return -1.0 if self.within_days is None else self.within_days * _DAY  # -1: no window

    @property
    def active(self) -> bool:
        return self.half_life_days is not None or not self.newer or self.within_days is not None


@dataclass(frozen=True)
class Approx:
    """Approximate mode: terms in more than ``prune_df`` documents count only for documents published within
    ``window_days`` of the query (news about one event clusters in time) while candidates are gathered; the
    best ``rescore`` candidates are then scored exactly. Without time order, pruned terms are skipped."""

    prune_df: int
    rescore: int = 100
    window_days: float = 10.0

    def window_share(self, index: Index) -> float:
        """The expected share of a pruned term's documents inside a query's window."""
        dated = np.asarray(index.timestamps)[~np.isnan(index.timestamps)]
        if self.window_days <= 0 or dated.size == 0:
            return 0.0
        span = float(dated.max() - dated.min()) / _DAY
        return min(1.0, 2 * self.window_days / max(span, 1e-9)) * dated.size / index.n_docs


@dataclass(frozen=True)
class Plan:
    """How an all-pairs job runs: ``mode`` "exact" or "approx", and its estimated cost in multiply-adds."""

    mode: str
    approx: Approx | None
    multiply_adds: int
    exact_multiply_adds: int


# Rows per block of the all-pairs search: big enough to amortise a block, small enough to bound its memory.
BLOCK_ROWS = 4096
EXACT_LIMIT = 40_000_000_000  # multiply-adds: about a minute on two cores; beyond, approximate


def plan(
    index: Index, mode: str = "auto", *, budget_share: float = 0.03, rescore: int = 50, window_days: float = 10.0
) -> Plan:
    """Choose exact or approximate all-pairs for ``index`` (``mode`` "auto", "exact" or "approx").

    Approximate mode prunes the most common terms until the rest cost ``budget_share`` of the exact
    multiply-adds; those terms still count inside each query's ``window_days`` time window. The share is 3%
    since the time prior turned gentle (older stories keep most of their score): at 1% the forced mode's
    recall on the bundled corpus was 0.95, at 3% it is 0.96 for 2% more work (docs/quality.md).
    """
    if mode not in ("auto", "exact", "approx"):
        raise ValueError(f"mode must be auto, exact or approx, got {mode!r}")
    exact_cost = int(cost_per_row(index).sum())
    if mode == "exact" or (mode == "auto" and exact_cost <= EXACT_LIMIT):
        return Plan("exact", None, exact_cost, exact_cost)
    values, counts = np.unique(index.df, return_counts=True)
    kept = np.cumsum(counts * values.astype(np.float64) ** 2)  # cost of the terms up to each df
    within = values[kept <= budget_share * exact_cost]
    cap = int(within[-1]) if within.size else 1
    approx = Approx(cap, rescore, window_days)
    return Plan("approx", approx, int(cost_per_row(index, approx).sum()), exact_cost)


def time_origin(timestamps: np.ndarray) -> float:
    """The time the prior's day numbers count from: the first publication date (0 if none is dated)."""
    return 0.0 if np.isnan(timestamps).all() else float(np.nanmin(timestamps))


class Index:
    """The arrays the kernel reads: documents by row, the same by term, and publication times."""

    def __init__(
        self,
        matrix: sp.csr_matrix,
        index_t: sp.csr_matrix,
        timestamps: np.ndarray | None = None,
        origin: float | None = None,
        topics: np.ndarray | None = None,
    ) -> None:
        if not matrix.has_sorted_indices:  # rows are merged by column when re-scored or compared
            matrix = matrix.sorted_indices()
        # Each document's unit vector in a topic space (the topic gate), or None: no gate.
        self.topics = None if topics is None else _readonly(np.atleast_2d(topics), np.float32)
        self.matrix = matrix
        self.n_docs = matrix.shape[0]
        self.n_terms = matrix.shape[1]
        self.rows = _csr_parts(matrix)
        self.terms = _csr_parts(index_t)
        ts = np.full(self.n_docs, np.nan) if timestamps is None else np.asarray(timestamps, dtype=np.float64)
        self.timestamps = _readonly(ts, np.float64)
        # Days from the corpus's first date fit float32 to within seconds; the origin depends on the
        # documents only, so a lookup and the batch job compute identical weights. A model passes the
        # origin of its fit, so articles added later do not move it (nor the weights of stored lists).
        if origin is None:
            origin = time_origin(ts)
        self.origin = origin
        self.days = _readonly(((ts - self.origin) / _DAY).astype(np.float32), np.float32)
        self.df = np.diff(np.asarray(index_t.indptr)).astype(np.int64)
        # Dated rows first, in publication order: a time window is then a slice of rows.
        dated = ts[: int((~np.isnan(ts)).sum())]
        self.time_sorted = bool(np.isnan(ts[dated.size :]).all() and (dated[1:] >= dated[:-1]).all())
        self.n_dated = dated.size
        self._time_ordered: tuple[Index, np.ndarray] | None = None

    def windows(self, query_ts: np.ndarray, days: float) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the rows ``lo..hi`` published within ``days`` of it (all rows for an undated
        query); empty windows when the corpus is not in time order or ``days`` is 0."""
        n = query_ts.shape[0]
        if days <= 0 or not self.time_sorted:
            return _readonly(np.zeros(n), np.int64), _readonly(np.zeros(n), np.int64)
        dated = self.timestamps[: self.n_dated]
        lo = np.searchsorted(dated, query_ts - days * _DAY, side="left")
        hi = np.searchsorted(dated, query_ts + days * _DAY, side="right")
        undated = np.isnan(query_ts)
        lo[undated], hi[undated] = 0, self.n_docs
        return _readonly(lo, np.int64), _readonly(hi, np.int64)

    def in_time_order(self) -> tuple[Index, np.ndarray | None]:
        """This index with its documents renumbered by publication time (undated last), and ``order``
        mapping the new numbers to the old; ``(self, None)`` if already so. Costs a copy of the matrices."""
        if self.time_sorted:
            return self, None
        if self._time_ordered is None:  # kept: the recall estimate and the job itself both need it
            order = np.argsort(self.timestamps, kind="stable")  # NaN sorts last
            matrix = self.matrix[order]
            topics = None if self.topics is None else self.topics[order]
            ordered = Index(matrix, matrix.T.tocsr(), np.asarray(self.timestamps)[order], self.origin, topics)
            self._time_ordered = (ordered, order)
        return self._time_ordered

    def gate(self, query_topics: np.ndarray | None, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's topic arrays: the queries' and the documents' (documents empty: no gate)."""
        if self.topics is None:
            return _NO_QUERY_TOPICS, _NO_TOPICS
        if query_topics is None or np.shape(query_topics) != (n_queries, self.topics.shape[1]):
            dims = self.topics.shape[1]
            raise ValueError(f"the index gates by topic: give {n_queries} query topic vectors of {dims}")
        return _readonly(query_topics, np.float32), self.topics

    def query_days(self, query_ts: np.ndarray) -> np.ndarray:
        return _readonly(((np.asarray(query_ts, dtype=np.float64) - self.origin) / _DAY).astype(np.float32), np.float32)


# --- Python entry points ---------------------------------------------------------------------------

_NO_MASK = _readonly(np.zeros(0, dtype=np.bool_), np.bool_)
# No gate: documents' topics with no rows; the queries' a dummy row the kernel passes along but never reads.
_NO_TOPICS = _readonly(np.zeros((0, 1), dtype=np.float32), np.float32)
_NO_QUERY_TOPICS = _readonly(np.zeros((1, 1), dtype=np.float32), np.float32)


def search(
    index: Index,
    queries: sp.csr_matrix,
    pool: int,
    *,
    exclude: np.ndarray | None = None,
    query_ts: np.ndarray | None = None,
    prior: TimePrior = TimePrior(),
    mask: np.ndarray | None = None,
    approx: Approx | None = None,
    query_topics: np.ndarray | None = None,
    threads: int = 1,
) -> Hits:
    """The best ``pool`` candidates of every query row, one thread per slice of rows.

    ``exclude[i]`` is a row query ``i`` must never return (its own), or ``-1``. ``query_ts`` are the
    queries' publication times (NaN: undated). ``approx`` gives approximate mode (see the module). An index
    with topics gates every score by topic agreement: ``query_topics`` are then the queries' unit vectors
    in its topic space (one row per query).
    """
    nq = queries.shape[0]
    if queries.shape[1] != index.n_terms:
        raise ValueError(f"queries have {queries.shape[1]} terms, the index {index.n_terms}")
    rows = np.empty((nq, pool), dtype=np.int64)
    scores = np.empty((nq, pool), dtype=np.float32)
    sims = np.empty((nq, pool), dtype=np.float32)
    q = _csr_parts(queries)
    q_self = _readonly(np.full(nq, -1) if exclude is None else exclude, np.int64)
    q_ts = _readonly(np.full(nq, np.nan) if query_ts is None else query_ts, np.float64)
    q_days = index.query_days(q_ts)
    m = _NO_MASK if mask is None else _readonly(mask, np.bool_)
    half_life = float(prior.half_life_days) if prior.half_life_days is not None else 0.0
    prune_df = approx.prune_df if approx is not None else 0
    rescore = max(approx.rescore if approx is not None else 0, pool)
    w_lo, w_hi = index.windows(q_ts, approx.window_days if approx is not None else 0.0)
    q_topics, d_topics = index.gate(query_topics, nq)

    def run(lo: int, hi: int, d_lo: int = 0, d_hi: int = index.n_docs, out: Hits | None = None) -> None:
        out = out or Hits(rows, scores, sims)
        acc, touched = _scratch(index.n_docs)
        try:
            kernels.search(
                *q, q_self, q_ts, q_days, *index.terms, *index.rows, index.timestamps, index.days,
                half_life, prior.weight, prior.newer, prior.within_seconds, q_topics, d_topics, m, prune_df,
                rescore, w_lo, w_hi, d_lo, d_hi, lo, hi,
                out.rows, out.scores, out.similarities, acc, touched,
            )  # fmt: skip
        except BaseException:
            _SCRATCH.arrays = None  # may not be all zeros any more
            raise

    if nq == 1 and threads > 1 and int(index.df[q[1]].sum()) >= _SPLIT_WORK:
        # One large lookup: each thread takes a share of the documents, then the best of all are kept. The
        # calling thread takes the first share itself: one hand-over less, and it starts at once.
        bounds = np.linspace(0, index.n_docs, threads + 1).astype(np.int64)
        parts = [Hits(np.empty_like(rows), np.empty_like(scores), np.empty_like(sims)) for _ in range(threads)]
        others = _lookup_pool(threads - 1).map(
            lambda i: run(0, 1, int(bounds[i]), int(bounds[i + 1]), parts[i]), range(1, threads)
        )
        run(0, 1, int(bounds[0]), int(bounds[1]), parts[0])
        list(others)
        return _best_of(parts, pool)
    threads = max(1, min(threads, nq))
    if threads == 1:
        run(0, nq)
    else:
        # Small slices balance uneven rows; the kernel holds no GIL, so threads run in parallel.
        step = max(1, min(256, -(-nq // (threads * 4))))
        with ThreadPoolExecutor(threads) as workers:
            list(workers.map(lambda lo: run(lo, min(nq, lo + step)), range(0, nq, step)))
    return Hits(rows, scores, sims)


_SCRATCH = threading.local()


def _scratch(n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's accumulator (zeros; the kernel leaves it so) and list of rows touched, kept from one
    call to the next: at 100k documents they are 800 kB that each lookup would otherwise allocate and zero."""
    arrays: tuple[np.ndarray, np.ndarray] | None = getattr(_SCRATCH, "arrays", None)
    if arrays is None or arrays[0].shape[0] != n_docs:
        arrays = _SCRATCH.arrays = (np.zeros(n_docs, np.float32), np.empty(n_docs + 1, np.int32))
    return arrays


# A lookup is shared between threads only from this many postings read (some 4 ms on one thread). Sharing
# costs about 0.5 ms of CPU time (a binary search per term, a second scan, hand-over, merging): at 100k
# articles (0.6M postings a lookup) its p50 was no better on this shared 2-core machine, and worse when
# the cores were busy.
_SPLIT_WORK = 2_000_000
_LOOKUP_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _lookup_pool(threads: int) -> ThreadPoolExecutor:
    # Kept for the process's life: starting threads per lookup would cost more than the split saves. Keyed
    # by process too: a worker forked from a process that had a pool (gunicorn --preload) has none of its
    # threads, and must not wait on them.
    key = (os.getpid(), threads)
    pool = _LOOKUP_POOLS.get(key)
    if pool is None:
        pool = _LOOKUP_POOLS.setdefault(key, ThreadPoolExecutor(threads, thread_name_prefix="recommender"))
    return pool


def _best_of(parts: list[Hits], pool: int) -> Hits:
    """The best ``pool`` of several single-query candidate lists (higher score first, then lower row)."""
    rows = np.concatenate([p.rows[0] for p in parts])
    scores = np.concatenate([p.scores[0] for p in parts])
    sims = np.concatenate([p.similarities[0] for p in parts])
    valid = rows >= 0
    order = np.lexsort((rows, -scores))
    order = order[valid[order]][:pool]
    out = Hits(np.full((1, pool), -1, np.int64), np.zeros((1, pool), np.float32), np.zeros((1, pool), np.float32))
    out.rows[0, : order.size], out.scores[0, : order.size], out.similarities[0, : order.size] = (
        rows[order], scores[order], sims[order]
    )  # fmt: skip
    return out


def lists_entered(
    index: Index,
    queries: sp.csr_matrix,
    query_ts: np.ndarray,
    threshold: np.ndarray,
    prior: TimePrior = TimePrior(),
    threads: int = 1,
    query_topics: np.ndarray | None = None,
) -> np.ndarray:
    """Which documents' lists any of ``queries`` could enter: those it scores at least ``threshold[d]``
    against (the score of the last item on ``d``'s list; 0 for a list with room left). Cosine, the time
    prior and the topic gate are symmetric, so the query's own score row answers for every list at once.
    ``query_topics`` as in :func:`search`."""
    half_life = float(prior.half_life_days) if prior.half_life_days is not None else 0.0
    q_days = index.query_days(query_ts)
    q_topics, d_topics = index.gate(query_topics, queries.shape[0])
    limit = _readonly(threshold, np.float32)
    bounds = np.linspace(0, queries.shape[0], max(1, min(threads, queries.shape[0])) + 1).astype(np.int64)
    outs = [np.zeros(index.n_docs, dtype=np.bool_) for _ in bounds[1:]]

    def run(i: int) -> None:
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        kernels.enters(
            *_csr_parts(queries[lo:hi]), q_days[lo:hi], *index.terms, index.days, half_life, prior.weight,
            q_topics[lo:hi] if d_topics.shape[0] else q_topics, d_topics, limit, outs[i],
        )  # fmt: skip

    if len(outs) == 1:
        run(0)
    else:  # the kernel holds no GIL: one slice of queries per thread
        with ThreadPoolExecutor(len(outs)) as workers:
            list(workers.map(run, range(len(outs))))
    return np.logical_or.reduce(outs) if outs else np.zeros(index.n_docs, dtype=np.bool_)


def available_threads(n_jobs: int = -1) -> int:
    """Threads for ``n_jobs`` (``-1``: every core this process may use)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if n_jobs < 1 else min(n_jobs, cores)


def cost_per_row(index: Index, approx: Approx | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """Multiply-adds each row (or each of ``rows``) costs as a query: the sum of its terms' document
    frequencies (in approximate mode, a pruned term's share of its documents inside the time window)."""
    indptr, indices, _ = index.rows
    term_cost = index.df.astype(np.float32)
    if approx is not None:
        common = term_cost > approx.prune_df
        term_cost[common] *= approx.window_share(index)
    if rows is not None:  # a few rows (an incremental update): gather only theirs
        offsets, where = row_ranges(indptr, rows)
        sums = np.concatenate([[0.0], np.cumsum(term_cost[indices[where]], dtype=np.float64)])
        per_row = sums[offsets[1:]] - sums[offsets[:-1]]
    else:
        per_row = np.zeros(index.n_docs, dtype=np.float64)
        step = 65536  # rows at a time: no array the size of the whole matrix
        for lo in range(0, index.n_docs, step):
            hi = min(index.n_docs, lo + step)
            costs = term_cost[indices[indptr[lo] : indptr[hi]]]
            sums = np.concatenate([[0.0], np.cumsum(costs, dtype=np.float64)])
            per_row[lo:hi] = sums[indptr[lo + 1 : hi + 1] - indptr[lo]] - sums[indptr[lo:hi] - indptr[lo]]
    if approx is not None:
        per_row += approx.rescore * 2 * indices.size / max(1, index.n_docs)  # merges of re-scoring
    return per_row.astype(np.int64)


def search_blocks(
    index: Index,
    pool: int,
    *,
    prior: TimePrior = TimePrior(),
    approx: Approx | None = None,
    rows: np.ndarray | None = None,
    block_rows: int = BLOCK_ROWS,
    threads: int = 1,
    progress: ProgressCallback | None = None,
    mask: np.ndarray | None = None,
) -> Iterator[tuple[int, Hits]]:
    """Every row of the index (or those in ``rows``) as a query against all the others, in blocks, in order;
    each block comes with its position in that order. ``mask``: the only rows any list may hold.

    In approximate mode the candidates come from a copy of the index in time order (unless it is so
    already); results are mapped back to this index's rows. ``progress(done, total)`` counts
    multiply-adds, estimated up front from document frequencies.
    """
    queries = np.arange(index.n_docs) if rows is None else np.asarray(rows, dtype=np.int64)
    # Only for progress: a Dask block (a slice of rows, no progress) must not pay for it.
    cost = (
        np.cumsum(cost_per_row(index, approx, None if rows is None else queries))
        if progress is not None
        else np.zeros(0)
    )
    total = int(cost[-1]) if cost.size else 0
    target, order = index.in_time_order() if approx is not None else (index, None)
    rank = np.arange(index.n_docs) if order is None else np.argsort(order)
    if mask is not None and order is not None:
        mask = np.asarray(mask)[order]
    with threadpool_limits(limits=1):  # our threads fill the cores: no BLAS threads on top
        for start in range(0, queries.size, max(1, block_rows)):
            stop = min(queries.size, start + max(1, block_rows))
            own = rank[queries[start:stop]]
            hits = search(
                target,
                target.matrix[own],
                pool,
                exclude=own,
                query_ts=np.asarray(target.timestamps)[own],
                prior=prior,
                approx=approx,
                query_topics=None if target.topics is None else target.topics[own],
                mask=mask,
                threads=threads,
            )
            if order is not None:
                hits = Hits(
                    np.where(hits.rows >= 0, order[np.maximum(hits.rows, 0)], -1), hits.scores, hits.similarities
                )
            yield start, hits
            if progress is not None:
                progress(int(cost[stop - 1]), total)


def pair_scores(
    index: Index,
    query: sp.csr_matrix,
    rows: np.ndarray,
    query_ts: float,
    prior: TimePrior = TimePrior(),
    query_topics: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The weighted scores and cosines of one query row against ``rows`` (pinned articles, which the
    search did not rank), with the kernel's time prior and topic gate."""
    rows = np.asarray(rows, dtype=np.int64)
    sims = np.asarray((index.matrix[rows] @ query.T).toarray(), dtype=np.float32).ravel()
    scores = sims.copy()
    if prior.half_life_days is not None:
        apart = np.abs(np.asarray(index.days)[rows] - index.query_days(np.array([query_ts]))[0])
        weight = np.float32(prior.weight)
        factor = (np.float32(1.0) - weight) + weight / (np.float32(1.0) + apart / np.float32(prior.half_life_days))
        scores *= np.where(np.isnan(factor), np.float32(1.0), factor).astype(np.float32)
    if index.topics is not None and query_topics is not None:
        agreement = np.asarray(index.topics)[rows] @ np.asarray(query_topics, dtype=np.float32).ravel()
        scores *= np.maximum(agreement, np.float32(0.0)).astype(np.float32)
    return scores, sims


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest positive scores, best first (ties: lower index first)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size > k:
        # partition is O(n); keep every score tied with the k-th, so the sort below can prefer lower indices.
        values = scores[positive]
        kth = np.partition(values, values.size - k)[values.size - k]
        positive = positive[values >= kth]
    order = np.lexsort((positive, -scores[positive]))
    return positive[order][:k]


def query_scores(query: sp.csr_matrix, index_t: sp.csr_matrix) -> np.ndarray:
    """Cosine scores of one query row against every document, through the term-major matrix."""
    return np.asarray((query @ index_t).toarray(), dtype=np.float32).ravel()


def all_pairs_top_k(
    matrix: sp.csr_matrix,
    index_t: sp.csr_matrix,
    k: int,
    *,
    block_rows: int = BLOCK_ROWS,
    threads: int = 1,
    progress: ProgressCallback | None = None,
) -> Iterator[Block]:
    """Every row's top-``k`` other rows by plain cosine (never itself), block by block, in row order.

    ``matrix`` holds the query rows; ``index_t`` the documents, term-major (row ``i`` of both is the
    same article).
    """
    index = Index(index_t.T.tocsr(), index_t)
    queries = sp.csr_matrix(matrix, dtype=np.float32)
    total = queries.shape[0]
    with threadpool_limits(limits=1):
        for start in range(0, total, max(1, block_rows)):
            stop = min(total, start + max(1, block_rows))
            hits = search(index, queries[start:stop], k, exclude=np.arange(start, stop), threads=threads)
            yield Block(start, hits.rows, np.minimum(hits.scores, np.float32(1.0)))
            if progress is not None:
                progress(stop, total)
