"""Every article's list at once, in blocks of rows: the all-pairs search the batch job, Dask workers and
updates run, how it is planned (exact, or approximate past a size), and the recall of the approximation.

In exact mode a row's list here is the list :func:`recommender.lookups.related` gives for the same
article and options (an undated article's list ignores ``within_days``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._progress import ProgressCallback
from .errors import InvalidParameterError
from .lookups import both, choose_lists, filter_mask, pool_for, ranked, search_index, semantic_on, title_ids
from .neighbors import BLOCK_ROWS, Approx, Block, Plan, plan, search, search_blocks
from .ranking import RankingOptions
from .ruleindex import rule_index
from .state import FittedState

__all__ = ["all_related", "estimate_recall", "plan_lists"]


def plan_lists(state: FittedState, mode: str = "auto") -> Plan:
    """How :func:`all_related` would run on ``state``: ``mode`` "exact", "approx", or "auto" (exact up to a
    size), with its estimated cost in multiply-adds."""
    try:
        return plan(search_index(state), mode)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None


def all_related(
    state: FittedState,
    k: int,
    options: RankingOptions,
    *,
    approx: Approx | None = None,
    rows: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    block_rows: int = BLOCK_ROWS,
    threads: int = 1,
) -> Iterator[Block]:
    """The top-``k`` lists of every row (or of ``rows``, in that order), in blocks of ``block_rows``;
    ``progress(done, total)`` counts multiply-adds, estimated up front.

    The filters of ``options.only`` and the editors' rules apply: blocks everywhere, as the search's mask.
    Rows with rules of their own (pair and conditional blocks) are searched again, exactly, in groups that
    share a mask; a pinned row one by one, as a lookup computes it."""
    ids = title_ids(state) if options.dedup is not None else np.zeros(len(state), dtype=np.int64)
    index = search_index(state)
    rules = rule_index(state)
    only = filter_mask(state, options.only)
    special = set(rules.special_rows().tolist())
    blocks = search_blocks(
        index,
        pool_for(state, k, options),
        prior=options.prior(),
        approx=approx,
        rows=rows,
        block_rows=block_rows,
        threads=threads,
        progress=progress,
        mask=both(only, None if rules.blocked is None else ~rules.blocked),
    )
    order = np.arange(len(state)) if rows is None else np.asarray(rows, dtype=np.int64)
    for start, hits in blocks:
        at = order[start : start + hits.rows.shape[0]]
        indices, scores = choose_lists(state, _meaning(state, options, at), hits.rows, hits.scores, k, options, ids)
        if special:
            block = order[start : start + indices.shape[0]]
            _apply_own_rules(state, block, special, only, indices, scores, k, options, threads)
        yield Block(start, indices, scores)


def _meaning(state: FittedState, options: RankingOptions, rows: np.ndarray) -> np.ndarray | None:
    """The semantic vectors of the query ``rows`` (zeros: none), or ``None`` when meaning is off."""
    if not semantic_on(state, options) or state.vectors is None:
        return None
    present = np.asarray(state.vectors.present)[rows]
    return np.where(present[:, None], np.asarray(state.vectors.matrix[rows], dtype=np.float32), np.float32(0))


def _apply_own_rules(
    state: FittedState,
    block: np.ndarray,
    special: set[int],
    only: np.ndarray | None,
    indices: np.ndarray,
    scores: np.ndarray,
    k: int,
    options: RankingOptions,
    threads: int,
) -> None:
    """Recompute, in place, the lists of the ``block``'s rows that have rules of their own, under the
    filters' row mask ``only``."""
    index, rules = search_index(state), rule_index(state)
    ids = title_ids(state) if options.dedup is not None else np.zeros(len(state), dtype=np.int64)
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, row in enumerate(block.tolist()):
        if row not in special:
            continue
        if row in rules.pins:  # pins are placed with their own scores: as a lookup places them
            own = ranked(
                state, index.matrix[row], k, options, mask=only, skip=row, query_ts=float(state.timestamps[row])
            )
            indices[i], scores[i] = -1, 0
            indices[i, : len(own.rows)], scores[i, : len(own.rows)] = own.rows, own.scores
        else:
            groups.setdefault(rules.signature(row), []).append(i)
    for members in groups.values():
        rows = block[members]
        hits = search(
            index,
            index.matrix[rows],
            pool_for(state, k, options),
            exclude=rows,
            query_ts=np.asarray(state.timestamps)[rows],
            prior=options.prior(),
            mask=both(only, rules.allowed(int(rows[0]))),  # the same for every row of a group
            query_topics=None if index.topics is None else index.topics[rows],
            threads=threads,
        )
        indices[members], scores[members] = choose_lists(
            state, _meaning(state, options, rows), hits.rows, hits.scores, k, options, ids
        )


def estimate_recall(
    state: FittedState,
    k: int,
    options: RankingOptions,
    approx: Approx | None,
    *,
    sample: int = 200,
    seed: int = 0,
    threads: int = 1,
) -> float:
    """The share of exact top-``k`` lists that ``approx`` finds too, over ``sample`` random articles (1.0 in
    exact mode)."""
    if approx is None:
        return 1.0
    rows = np.sort(np.random.default_rng(seed).choice(len(state), size=min(sample, len(state)), replace=False))
    exact = np.vstack([b.indices for b in all_related(state, k, options, rows=rows, threads=threads)])
    found = np.vstack([b.indices for b in all_related(state, k, options, approx=approx, rows=rows, threads=threads)])
    shares = [
        len(set(e[e >= 0].tolist()) & set(a[a >= 0].tolist())) / max(1, int((e >= 0).sum()))
        for e, a in zip(exact, found, strict=True)
        if (e >= 0).any()
    ]
    return float(np.mean(shares)) if shares else 1.0
