"""Incremental updates: fold new, edited and removed articles into a fitted model and its store.

The vocabulary and IDF stay as fitted (a full ``train`` refits them). A model on disk is its fitted file
plus a small overlay beside it (``model.updates.joblib``: the rows added since the fit and the fitted
rows dropped), rewritten atomically per batch, so an update never rewrites the whole model.

A SQLite store is repaired in one transaction: the new articles' own lists, every list a new article now
enters, and every list that held a removed or edited article. Cosine and the time prior are symmetric,
so the new article's own score row tells which lists it enters: those whose last item it reaches. Those
lists are recomputed by the same kernel as the batch job, so the store equals a full precompute of the
updated model.

Crash safety: the overlay is written to a temporary file, the store's changes are made inside an open
transaction, the overlay is renamed into place, and only then is the transaction committed. A crash
before the rename leaves both as they were; the store records the model's update generation, and a
store found behind its model (a crash between rename and commit) is rebuilt by the next update.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import locked_directory
from .blocks import all_related
from .corpus import Article
from .errors import ModelError, StoreError
from .folding import Changes, Delta, fold
from .lookups import search_index, title_ids
from .model import Recommender, load_with_manifest
from .modelfile import PendingOverlay, manifest_path, overlay_path
from .neighbors import available_threads, lists_entered
from .ranking import RankingOptions
from .state import FittedState
from .store import SqliteStore, StoreMeta, format_for, is_busy, locked, row_lists

__all__ = ["REFIT_SHARE", "Changes", "Freshness", "UpdateResult", "Updater", "freshness", "overlay_path"]

REFIT_SHARE = 0.10  # articles changed since the fit, as a share of the fitted corpus, past which to refit


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """One update of a model (and its store): what changed, how many stored lists were rewritten."""

    changes: Changes
    articles: int  # in the model afterwards
    generation: int  # batches folded in since the fit
    lists_updated: int  # stored lists rewritten (0 without a store)
    store_rebuilt: bool  # the store was behind its model (an interrupted update) and was rebuilt whole
    seconds: float
    freshness: Freshness

    def to_dict(self) -> dict[str, Any]:
        """The update as ``recommender add --json`` prints it (and ``recommender serve`` returns it)."""
        return {
            "added": list(self.changes.added),
            "edited": list(self.changes.edited),
            "removed": list(self.changes.removed),
            "articles": self.articles,
            "generation": self.generation,
            "lists_updated": self.lists_updated,
            "store_rebuilt": self.store_rebuilt,
            "seconds": round(self.seconds, 3),
            "refit_suggested": self.freshness.refit_suggested,
        }


@dataclass(frozen=True, slots=True)
class Freshness:
    """How far a model has moved from its fit, and whether a refit (``recommender train``) is due."""

    fitted_articles: int
    added: int
    edited: int
    removed: int
    # Share of the added articles' term occurrences outside the fitted vocabulary: new names and topics
    # that count for nothing until a refit (about 0.17 for articles like the fitted ones, from pruning).
    unknown_terms: float

    @property
    def changed(self) -> int:
        return self.added + self.edited + self.removed

    @property
    def changed_share(self) -> float:
        return self.changed / max(1, self.fitted_articles)

    @property
    def refit_suggested(self) -> bool:
        return self.changed_share >= REFIT_SHARE

    def advice(self) -> str | None:
        """A sentence for the user when a refit is due, else ``None``."""
        if not self.refit_suggested:
            return None
        return (
            f"{self.changed:,} articles changed since the fit ({self.changed_share:.0%} of "
            f"{self.fitted_articles:,}): retrain (`recommender train`) to refresh the vocabulary and IDF"
        )


def freshness(model: Recommender) -> Freshness:
    """How many articles were added, edited and removed since ``model`` was fitted."""
    return state_freshness(model.fitted_state())


def state_freshness(state: FittedState) -> Freshness:
    """:func:`freshness` of a fitted state."""
    u = state.updates
    seen = u.terms_known + u.terms_unknown
    return Freshness(
        int(state.corpus["articles"]),
        u.added,
        u.edited,
        u.removed,
        u.terms_unknown / seen if seen else 0.0,
    )


# --- the store: which lists change ------------------------------------------------------------------


@dataclass
class _Lists:
    """A store's lists as arrays over the model's rows (``-1`` pads), read once per updater."""

    indices: np.ndarray  # (articles, k) int64
    scores: np.ndarray  # (articles, k) float32
    k: int
    options: RankingOptions


class _Behind(Exception):
    """The store does not match its model's current rows: rebuild it."""


def _read_lists(store: SqliteStore, state: FittedState, meta: StoreMeta, options: RankingOptions) -> _Lists:
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
        except KeyError as exc:
            raise _Behind(f"the store lists {exc.args[0]!r}, which the model lacks") from None
        c = np.asarray(ranks, dtype=np.int64) - 1
        if (c < 0).any() or (c >= k).any():
            raise _Behind("the store's ranks do not match its k")
        indices[r, c] = j
        scores[r, c] = np.asarray(values, dtype=np.float32)
    return _Lists(indices, scores, k, options)


def _thresholds(lists: _Lists) -> np.ndarray:
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


def _changed_lists(
    old: FittedState, new: FittedState, delta: Delta, lists: _Lists, threads: int
) -> tuple[np.ndarray, _Lists]:
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
    touched = [delta.new_of_old[touched_old], delta.new_rows]
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
    return rows, _Lists(indices, scores, lists.k, lists.options)


def _all_lists(state: FittedState, k: int, options: RankingOptions, threads: int) -> _Lists:
    """Every list of ``state`` again (exact), as a store's own precompute computed them."""
    lists = _Lists(
        np.full((len(state), k), -1, dtype=np.int64), np.zeros((len(state), k), dtype=np.float32), k, options
    )
    for block in all_related(state, k, options, threads=threads):
        stop = block.start + block.indices.shape[0]
        lists.indices[block.start : stop], lists.scores[block.start : stop] = block.indices, block.scores
    return lists


# --- the updater -----------------------------------------------------------------------------------


class Updater:
    """Keeps a saved model, and optionally its SQLite store, up to date as articles come and go.

    ``Updater("models/model.joblib", store="related.sqlite").add(articles)`` folds the articles into the
    model (vocabulary and IDF fixed; an id already in the model is an edit) and repairs the store's lists
    in place, in one transaction. Keep the updater open to make many updates cheaply: it holds the model
    and the store's lists in memory, and reloads them if another process updated them meanwhile.
    """

    def __init__(self, model: str | Path, store: str | Path | None = None) -> None:
        self.model_path = Path(model)
        self.store_path = None if store is None else Path(store)
        if self.store_path is not None:
            if format_for(self.store_path) != "sqlite":
                raise StoreError(
                    f"{self.store_path}: only a SQLite store can be updated in place; rerun "
                    f"`recommender precompute --out {self.store_path}` after updating the model, or use a .sqlite store"
                )
            if not self.store_path.is_file():
                raise StoreError(
                    f"no store at {self.store_path}: write one first with "
                    f"`recommender precompute --out {self.store_path}`"
                )
        self._signature: tuple[Any, ...] | None = None
        self._lists: _Lists | None = None
        self._lists_key: tuple[Any, ...] = ()
        with self._locked():
            self._sync()
            if self.store_path is not None:  # read now, so the first update costs what later ones do
                opened = SqliteStore.for_writing(self.store_path)
                try:
                    self._current_lists(opened, self._model.fitted_state(), opened.meta())
                except _Behind:
                    pass  # the first update rebuilds the store
                finally:
                    opened.close()
            self._warm()

    @property
    def model(self) -> Recommender:
        """The model as it is after the last update."""
        return self._model

    def add(self, articles: Iterable[Article]) -> UpdateResult:
        """Fold ``articles`` in: new ids are added, ids already in the model are edits."""
        return self._update(list(articles), [])

    def remove(self, ids: Iterable[str]) -> UpdateResult:
        """Take the articles with these ids out; :class:`UnknownArticleError` (nothing removed) if any is
        not in the model."""
        return self._update([], list(ids))

    # -- internals --

    def _threads(self) -> int:
        return available_threads(self._model.n_jobs)

    def _warm(self) -> None:
        """Build the model's lookup tables and load the compiled kernels now, so that the first update
        costs what later ones do (a second more, otherwise): fold an empty article in and one article out,
        find the lists that would change, and discard the results. Nothing is written."""
        state = self._model.fitted_state()
        state.vocabulary()
        title_ids(state)
        if len(state) < 2:
            return
        blank = Article(id="\x00warm-up", title="", body="")  # in the model, it would be a (discarded) edit
        for articles, remove in (([blank], []), ([], [str(state.articles.ids[0])])):
            new, delta = fold(state, articles, remove)
            if self._lists is not None:
                _changed_lists(state, new, delta, self._lists, self._threads())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One writer at a time per model folder: updaters, and a save's commit (see modelfile.save). A lock
        # on the manifest would move with it when a save replaces the file.
        if not manifest_path(self.model_path).is_file():
            raise ModelError(f"no model at {self.model_path}: train one first with `recommender train`")
        with locked_directory(self.model_path.parent):
            yield

    def _disk_signature(self) -> tuple[Any, ...]:
        def stamp(path: Path) -> tuple[int, int] | None:
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            return (st.st_ino, st.st_mtime_ns)

        return (stamp(manifest_path(self.model_path)), stamp(overlay_path(self.model_path)))

    def _sync(self) -> None:
        """(Re)load the model if the files changed since we last read or wrote them."""
        signature = self._disk_signature()
        if signature != self._signature:
            self._model = load_with_manifest(self.model_path)[0]
            self._lists = None
            self._signature = signature

    def _update(self, articles: list[Article], remove: list[str]) -> UpdateResult:
        started = time.perf_counter()
        with self._locked():
            self._sync()
            old = self._model.fitted_state()
            new, delta = fold(old, articles, remove)
            overlay = PendingOverlay(new, self.model_path)
            store: SqliteStore | None = None
            rebuilt = False
            changed = 0
            moved = False
            try:
                if self.store_path is not None:
                    store, rebuilt, changed = self._write_store(old, new, delta)
                overlay.commit()  # the model moves on; the store follows at COMMIT
                moved = True
                if store is not None:
                    store.commit()
            except BaseException as exc:
                if store is not None:
                    store.rollback()
                overlay.discard()
                self._lists = None
                if isinstance(exc, sqlite3.OperationalError) and self.store_path is not None:
                    raise StoreError(_store_failure(self.store_path, exc, moved)) from None
                raise
            finally:
                if store is not None:
                    store.close()
            self._model.state_ = new  # one reference: lookups on the model finish on the state they started with
            self._signature = self._disk_signature()
        return UpdateResult(
            delta.changes,
            len(new),
            new.updates.generation,
            changed,
            rebuilt,
            time.perf_counter() - started,
            state_freshness(new),
        )

    def _write_store(self, old: FittedState, new: FittedState, delta: Delta) -> tuple[SqliteStore, bool, int]:
        """Open a transaction on the store with ``new``'s lists in it (not committed yet)."""
        path = self.store_path
        if path is None:
            raise StoreError("this updater has no store to write")
        store = SqliteStore.for_writing(path)
        try:
            store.begin()
            meta = store.meta()
            if meta.model_created_at != str(old.fitted_at):
                raise StoreError(
                    f"{path} was written from another model (fitted {meta.model_created_at}, "
                    f"this one {old.fitted_at}): rerun `recommender precompute --out {path}`"
                )
            behind = meta.model_generation != old.updates.generation
            if not behind:
                try:
                    lists = self._current_lists(store, old, meta)
                except _Behind:
                    behind = True
            if behind:
                lists = _all_lists(new, meta.k, self._store_options(meta), self._threads())
                rows = np.arange(len(new))
                store.clear()
                store.insert_articles(new.articles)
            else:
                rows, lists = _changed_lists(old, new, delta, lists, self._threads())
                store.delete_articles(old.articles.ids[int(r)] for r in delta.dropped)
                store.delete_lists(new.articles.ids[int(r)] for r in rows)
                store.insert_articles(new.articles, delta.new_rows)
            store.insert_lists(new.articles.ids, row_lists(rows.tolist(), lists.indices[rows], lists.scores[rows]))
            store.record_update(
                len(new), new.updates.generation, datetime.now(timezone.utc).isoformat(timespec="seconds")
            )
        except BaseException:
            store.rollback()
            store.close()
            raise
        self._lists = lists
        self._lists_key = replace(meta, model_generation=new.updates.generation).lists_key()
        return store, behind, int(rows.size)

    def _store_options(self, meta: StoreMeta) -> RankingOptions:
        """The ranking options the store was precomputed with, on the model's prior and dedup."""
        return meta.options(self._model.ranking_options())

    def _current_lists(self, store: SqliteStore, state: FittedState, meta: StoreMeta) -> _Lists:
        """The store's lists, read unless those in memory are still the store's (same job, same update)."""
        key = meta.lists_key()
        if self._lists is None or key != self._lists_key:
            self._lists = None
            self._lists = _read_lists(store, state, meta, self._store_options(meta))
            self._lists_key = key
        return self._lists


def _store_failure(store: Path, exc: sqlite3.OperationalError, model_moved: bool) -> str:
    """The message for a store update that SQLite refused (locked for too long, disk full, ...)."""
    problem = locked(store) if is_busy(exc) else f"cannot write {store}: {exc}"
    if model_moved:  # the overlay was renamed into place before the COMMIT failed
        return f"{problem}: the model was updated but not its store; the next add or remove rebuilds the store"
    return f"{problem}: nothing was changed; try again"
