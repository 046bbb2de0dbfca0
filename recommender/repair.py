"""Repairing stored lists: which lists a change of the model reaches, and their new contents.

Cosine and the time prior are symmetric, so an added article's own score row tells which lists it
enters: those whose last item it reaches. Those lists, the lists that held a dropped article, and the
changed articles' own lists are recomputed by the batch job's kernel, so repaired lists equal a full
precompute of the changed model. The :class:`~recommender.Updater` repairs a store per update; a
``precompute`` repairs the lists it computed with the updates that landed while it ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .blocks import all_related
from .folding import Delta, fold
from .lookups import search_index
from .modelfile import JournalEntry
from .neighbors import Block, lists_entered
from .ranking import RankingOptions
from .ruleindex import rule_index
from .rules import Rule, Rules
from .state import FittedState
from .store import SqliteStore, StoreMeta

__all__ = [
    "StoredLists",
    "all_lists",
    "catch_up",
    "changed_lists",
    "read_lists",
    "rules_changed_lists",
    "under_rules",
]


@dataclass
class StoredLists:
    """A store's lists as arrays over a model's rows (``-1`` pads)."""

    indices: np.ndarray  # (articles, k) int64
    scores: np.ndarray  # (articles, k) float32
    k: int
    options: RankingOptions

    @classmethod
    def collect(cls, blocks: Iterable[Block], n: int, k: int, options: RankingOptions) -> StoredLists:
        """The lists of ``n`` articles from the batch job's ``blocks`` (computed with ``options``)."""
        lists = cls(np.full((n, k), -1, dtype=np.int64), np.zeros((n, k), dtype=np.float32), k, options)
        for block in blocks:
            stop = block.start + block.indices.shape[0]
            lists.indices[block.start : stop], lists.scores[block.start : stop] = block.indices, block.scores
        return lists


def read_lists(store: SqliteStore, state: FittedState, meta: StoreMeta, options: RankingOptions) -> StoredLists | None:
    """The store's lists over ``state``'s rows; ``None`` when they do not fit its rows (the store is
    behind the model: rebuild it)."""
    k = meta.k
    rows = state.rows()
    n = len(state)
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    found = store.all_pairs()
    if found:
        article_ids, ranks, related_ids, values = zip(*found, strict=True)
        try:
            r = np.fromiter(map(rows.__getitem__, article_ids), dtype=np.int64, count=len(found))
            j = np.fromiter(map(rows.__getitem__, related_ids), dtype=np.int64, count=len(found))
        except KeyError:  # the store lists an article the model lacks
            return None
        c = np.asarray(ranks, dtype=np.int64) - 1
        if (c < 0).any() or (c >= k).any():  # ranks beyond its k
            return None
        indices[r, c] = j
        scores[r, c] = np.asarray(values, dtype=np.float32)
    return StoredLists(indices, scores, k, options)


def _thresholds(lists: StoredLists) -> np.ndarray:
    """Per list, the weighted score an article must reach to change it.

    A full list changes only if an article scores at least its last item: items are chosen greedily in
    score order, so one that comes after the k-th choice is never reached. A list with room left (too
    few candidates) can take any article; so can any list under diversity (MMR may pick a weaker one).
    """
    lengths = (lists.indices >= 0).sum(axis=1)
    last = lists.scores[np.arange(lengths.size), np.maximum(lengths - 1, 0)]
    threshold = np.where(lengths == lists.k, last, np.float32(0.0)).astype(np.float32)
    o = lists.options
    if o.min_score > 0:
        # Cut short by min_score, with min_results met: only an article scoring above the cut (or above a
        # filler below it) gets in.
        cut = (lengths < lists.k) & (lengths >= max(1, o.min_results))
        threshold = np.where(cut, np.minimum(np.float32(o.min_score), last), threshold)
    if o.diversity > 0:
        threshold[:] = 0
    return threshold


def changed_lists(
    old: FittedState, new: FittedState, delta: Delta, lists: StoredLists, threads: int
) -> tuple[np.ndarray, StoredLists]:
    """The rows of ``new`` whose lists must be recomputed, and the lists with those rows recomputed."""
    prior = lists.options.prior(newer=True)  # --no-newer only removes candidates: a superset
    threshold = _thresholds(lists)
    touched_old = np.zeros(len(old), dtype=bool)
    if delta.dropped.size:
        index = search_index(old)
        touched_old |= lists_entered(
            index, index.matrix[delta.dropped], old.timestamps[delta.dropped], threshold, prior, threads,
            None if old.topics is None else old.topics[delta.dropped],
        )  # fmt: skip
        touched_old |= np.isin(lists.indices, delta.dropped).any(axis=1)
    touched_old[delta.dropped] = False
    # A pinned list's last item may be a pin, above what an article must reach to enter it: recompute.
    pinned = np.array(sorted(rule_index(new).pins), dtype=np.int64)
    touched = [delta.new_of_old[touched_old], delta.new_rows, pinned]
    if delta.new_rows.size:
        kept = delta.new_of_old >= 0
        new_threshold = np.full(len(new), np.inf, dtype=np.float32)
        new_threshold[delta.new_of_old[kept]] = threshold[kept]
        index = search_index(new)
        entered = lists_entered(
            index, index.matrix[delta.new_rows], new.timestamps[delta.new_rows], new_threshold, prior, threads,
            None if new.topics is None else new.topics[delta.new_rows],
        )  # fmt: skip
        touched.append(np.flatnonzero(entered))
    rows = np.unique(np.concatenate(touched))

    kept_rows = np.flatnonzero(delta.new_of_old >= 0)
    indices = np.full((len(new), lists.k), -1, dtype=np.int64)
    scores = np.zeros((len(new), lists.k), dtype=np.float32)
    old_indices = lists.indices[kept_rows]
    indices[: kept_rows.size] = np.where(old_indices >= 0, delta.new_of_old[np.maximum(old_indices, 0)], -1)
    scores[: kept_rows.size] = lists.scores[kept_rows]
    for block in all_related(new, lists.k, lists.options, rows=rows, threads=threads):
        at = rows[block.start : block.start + block.indices.shape[0]]
        indices[at], scores[at] = block.indices, block.scores
    return rows, StoredLists(indices, scores, lists.k, lists.options)


def rules_changed_lists(
    before: FittedState, after: FittedState, lists: StoredLists, threads: int
) -> tuple[np.ndarray, StoredLists]:
    """The rows whose lists change when the rules go from ``before``'s to ``after``'s (the same articles),
    and the lists with those rows recomputed.

    Recomputed: the rows with rules of their own under either; the lists holding an article blocked
    everywhere now; and the lists an article blocked or unblocked everywhere could enter (a list with room,
    or under diversity, may change with its pool)."""
    old, new = rule_index(before), rule_index(after)
    n = len(after)
    rows = [old.special_rows(), new.special_rows()]
    was = np.zeros(n, dtype=bool) if old.blocked is None else old.blocked
    now = np.zeros(n, dtype=bool) if new.blocked is None else new.blocked
    newly = np.flatnonzero(now & ~was)
    if newly.size:
        rows.append(np.flatnonzero(np.isin(lists.indices, newly).any(axis=1)))
    freed = np.flatnonzero(was != now)
    if freed.size:
        index = search_index(after)
        entered = lists_entered(
            index, index.matrix[freed], after.timestamps[freed], _thresholds(lists), lists.options.prior(newer=True),
            threads, None if after.topics is None else after.topics[freed],
        )  # fmt: skip
        rows.append(np.flatnonzero(entered))
    changed = np.unique(np.concatenate(rows)).astype(np.int64)
    indices, scores = lists.indices.copy(), lists.scores.copy()
    for block in all_related(after, lists.k, lists.options, rows=changed, threads=threads):
        at = changed[block.start : block.start + block.indices.shape[0]]
        indices[at], scores[at] = block.indices, block.scores
    return changed, StoredLists(indices, scores, lists.k, lists.options)


def under_rules(state: FittedState, rules: Sequence[Rule]) -> FittedState:
    """``state`` applying exactly ``rules`` (those a store's lists were computed with: each in force,
    whether or not it has expired since)."""
    return state.with_rules(Rules(tuple(replace(r, until=None) for r in rules)))


def all_lists(state: FittedState, k: int, options: RankingOptions, threads: int) -> StoredLists:
    """Every list of ``state`` again (exact), as a store's own precompute computed them."""
    return StoredLists.collect(all_related(state, k, options, threads=threads), len(state), k, options)


def catch_up(
    state: FittedState, lists: StoredLists, entries: Sequence[JournalEntry], threads: int
) -> tuple[FittedState, StoredLists] | None:
    """``state`` and its ``lists`` with the journal's ``entries`` (the batches that followed ``state``,
    in order) folded in, each as the updater folded it; ``None`` if they do not follow on (a batch
    missing from the journal)."""
    for entry in entries:
        if entry.generation != state.updates.generation + 1:
            return None
        new, delta = fold(state, entry.articles, entry.removed)
        _, lists = changed_lists(state, new, delta, lists, threads)
        state = new
    return state, lists
