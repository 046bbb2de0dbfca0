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

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import numba
import numpy as np
import scipy.sparse as sp

from ._atomic import fsync_file, locked_directory, temporary_beside
from .corpus import Article
from .errors import InvalidParameterError, ModelError, StoreError, UnknownArticleError
from .features import project_topics, weigh
from .model import Recommender, StringColumn, csr_from_state, csr_state, manifest_path, timestamp_of
from .neighbors import available_threads, lists_entered, row_ranges
from .ranking import RankingOptions
from .store import connect_for_writing, format_for, insert_articles, insert_related, is_busy, locked, row_lists

__all__ = ["REFIT_SHARE", "Changes", "Freshness", "UpdateResult", "Updater", "freshness", "overlay_path"]

OVERLAY_FORMAT = 1
REFIT_SHARE = 0.10  # articles changed since the fit, as a share of the fitted corpus, past which to refit
_ROW_FIELDS = ("ids", "titles", "urls", "published", "sections")


@dataclass(frozen=True, slots=True)
class Changes:
    """What one batch did to a model: ids added (new), edited (given again) and removed."""

    added: tuple[str, ...] = ()
    edited: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


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
    u = model.updates_
    seen = u["terms_known"] + u["terms_unknown"]
    return Freshness(
        int(model.corpus_["articles"]),
        u["added"],
        u["edited"],
        u["removed"],
        u["terms_unknown"] / seen if seen else 0.0,
    )


def overlay_path(model_path: str | Path) -> Path:
    """Where the updates of a model file live: ``model.joblib`` → ``model.updates.joblib``."""
    return Path(model_path).with_suffix(".updates.joblib")


# --- the model: fold articles in, assemble rows ---------------------------------------------------


@dataclass(frozen=True)
class _Delta:
    changes: Changes
    dropped: np.ndarray  # rows of the old model dropped (removed, or edited and appended again)
    new_of_old: np.ndarray  # old row -> new row, -1 when dropped
    new_rows: np.ndarray  # rows of the new model holding the added and edited articles


def fold(model: Recommender, articles: Iterable[Article], remove: Iterable[str]) -> tuple[Recommender, _Delta]:
    """A new model: ``model`` without the ``remove`` ids, with ``articles`` added (an existing id is an edit:
    its old row goes, the new one is appended). ``model`` itself is left as it was."""
    model._check_fitted()
    docs = list(articles)
    gone = [i.strip() if isinstance(i, str) else i for i in remove]  # as ids are read from a corpus
    twice = sorted(i for i, n in Counter(gone).items() if n > 1)
    if twice:
        raise InvalidParameterError(f"article id {twice[0]!r} is given twice to remove: give each id once")
    if not docs and not gone:
        raise InvalidParameterError("nothing to update: give articles to add or ids to remove")
    rows = model._rows()
    ids = [a.id for a in docs]
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InvalidParameterError(f"article id {i!r} appears twice in one update: give each article once")
        seen.add(i)
    both = seen.intersection(gone)
    if both:
        raise InvalidParameterError(f"article id {sorted(both)[0]!r} is both added and removed in one update")
    unknown = [i for i in gone if i not in rows]
    if unknown:
        listed = ", ".join(repr(i) for i in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise UnknownArticleError(unknown[0], f"cannot remove {listed}: not in the model (nothing was removed)")
    edited = [i for i in ids if i in rows]
    dropped = np.array(sorted(rows[i] for i in (*gone, *edited)), dtype=np.int64)
    kept = _others(len(model), dropped)

    # Analysed here, one by one: worker processes would cost seconds to start, more than a batch takes.
    parts = [model._term_counts(a.title, a.body) for a in docs]
    indptr = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(cols) for cols, _, _ in parts], out=indptr[1:])
    raw = sp.csr_matrix(
        (
            np.concatenate([tf for _, tf, _ in parts]) if parts else np.zeros(0, np.float32),
            np.concatenate([cols for cols, _, _ in parts]).astype(np.int32) if parts else np.zeros(0, np.int32),
            indptr,
        ),
        shape=(len(docs), model.idf_.shape[0]),
    )
    added = weigh(raw, model.idf_, sublinear_tf=model.sublinear_tf)
    known, unknown_terms = int(raw.data.sum()), sum(unknown for _, _, unknown in parts)
    columns: dict[str, list[str | None]] = {
        "ids": [a.id for a in docs],
        "titles": [a.title for a in docs],
        "urls": [a.url for a in docs],
        "published": [a.published for a in docs],
        "sections": [a.section for a in docs],
    }
    timestamps = np.array([timestamp_of(a.published) for a in docs], dtype=np.float64)
    new = _assemble(
        model,
        kept if dropped.size else None,
        added,
        {name: StringColumn.from_values(values) for name, values in columns.items()},
        timestamps,
    )
    u = dict(model.updates_)
    u["generation"] += 1
    u["added"] += len(docs) - len(edited)
    u["edited"] += len(edited)
    u["removed"] += len(gone)
    u["terms_known"] += known
    u["terms_unknown"] += unknown_terms
    new.updates_ = u
    new._carry_lookups(model, kept if dropped.size else None, ids, columns["titles"])
    changes = Changes(tuple(i for i in ids if i not in rows), tuple(edited), tuple(gone))
    new_rows = np.arange(kept.size, kept.size + len(docs), dtype=np.int64)
    return new, _Delta(changes, dropped, _renumbering(len(model), kept), new_rows)


def _others(n: int, rows: np.ndarray) -> np.ndarray:
    """The rows ``0..n`` not in ``rows``, in order (a mask: ``np.setdiff1d`` sorts, 40 ms at 100k rows)."""
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(rows, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def _renumbering(n: int, kept: np.ndarray | None) -> np.ndarray:
    """Each of ``n`` rows' number once only ``kept`` remain (all when ``None``), ``-1`` for the others."""
    if kept is None:
        return np.arange(n, dtype=np.int64)
    new_of_old = np.full(n, -1, dtype=np.int64)
    new_of_old[kept] = np.arange(kept.size)
    return new_of_old


def _assemble(
    model: Recommender,
    kept: np.ndarray | None,
    added: sp.csr_matrix,
    columns: dict[str, Any],
    timestamps: np.ndarray,
) -> Recommender:
    """``model``'s rows ``kept`` (all when ``None``) followed by the ``added`` rows and their fields."""
    new = model._copy()
    n_kept = len(model) if kept is None else kept.size
    new.matrix_ = _stack_rows(model.matrix_, kept, added)
    new.index_t_ = _merge_postings(model.index_t_, _renumbering(len(model), kept), added, n_kept)
    for name in _ROW_FIELDS:
        column = getattr(model, f"{name}_")
        setattr(new, f"{name}_", (column if kept is None else column.take(kept)).extend(columns[name]))
    own = model.timestamps_ if kept is None else model.timestamps_[kept]
    new.timestamps_ = np.concatenate([np.asarray(own, dtype=np.float64), timestamps])
    if model.topics_ is not None and model.topic_terms_ is not None:  # the topic space stays as fitted, like idf
        topics = model.topics_ if kept is None else model.topics_[kept]
        new.topics_ = np.concatenate([np.asarray(topics), project_topics(added, model.topic_terms_)])
    base = model.base_rows_ if kept is None else model.base_rows_[kept]
    new.base_rows_ = np.concatenate([np.asarray(base, dtype=np.int64), np.full(added.shape[0], -1, dtype=np.int64)])
    return new


def _stack_rows(matrix: sp.csr_matrix, kept: np.ndarray | None, added: sp.csr_matrix) -> sp.csr_matrix:
    indptr = np.asarray(matrix.indptr, dtype=np.int64)
    indices, data = np.asarray(matrix.indices), np.asarray(matrix.data)
    if kept is not None:
        indptr, where = row_ranges(indptr, kept)
        indices, data = indices[where], data[where]
    out = sp.csr_matrix(matrix.shape, dtype=np.float32)
    out.indptr = _compact(np.concatenate([indptr, np.asarray(added.indptr[1:], dtype=np.int64) + indptr[-1]]))
    out.indices = np.concatenate([indices, np.asarray(added.indices, dtype=np.int32)])
    out.data = np.concatenate([data, np.asarray(added.data, dtype=np.float32)])
    out._shape = (out.indptr.size - 1, matrix.shape[1])
    out.has_sorted_indices = True
    return out


def _merge_postings(
    index_t: sp.csr_matrix, new_of_old: np.ndarray, added: sp.csr_matrix, row_offset: int
) -> sp.csr_matrix:
    """The term-major matrix after dropping rows (``new_of_old`` -1) and appending ``added``: each term's
    postings stay in row order, so no sort is needed."""
    added_t = added.T.tocsr()
    added_t.sort_indices()
    dropping = bool((new_of_old < 0).any())
    kept_nnz = int(np.count_nonzero(new_of_old[np.asarray(index_t.indices)] >= 0)) if dropping else index_t.nnz
    nnz = kept_nnz + added.nnz
    t_indptr = np.asarray(index_t.indptr, dtype=np.int64)
    a_indptr = np.asarray(added_t.indptr, dtype=np.int64)
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz, dtype=np.float32)
    a_parts = (a_indptr, np.asarray(added_t.indices, dtype=np.int32), np.asarray(added_t.data, dtype=np.float32))
    if dropping:
        indptr = np.empty(index_t.shape[0] + 1, dtype=np.int64)
        _merge(t_indptr, np.asarray(index_t.indices), np.asarray(index_t.data), new_of_old, *a_parts, row_offset,
               indptr, indices, data)  # fmt: skip
    else:  # nothing dropped: each term's old postings are copied whole, and the new ones appended
        indptr = t_indptr + a_indptr
        _append(t_indptr, np.asarray(index_t.indices), np.asarray(index_t.data), *a_parts, row_offset, indptr,
                indices, data)  # fmt: skip
    out = sp.csr_matrix((index_t.shape[0], row_offset + added.shape[0]), dtype=np.float32)
    out.indptr, out.indices, out.data = _compact(indptr), indices, data
    return out


def _compact(indptr: np.ndarray) -> np.ndarray:
    """``indptr`` as int32 when it fits, as a fitted or loaded matrix has it: scipy converts every index
    of a matrix whose indptr and indices differ in type on each row selection (0.1 s at 25k articles)."""
    return indptr.astype(np.int32) if indptr[-1] <= np.iinfo(np.int32).max else indptr


@numba.njit(nogil=True, cache=True)
def _merge(t_indptr, t_indices, t_data, new_of_old, a_indptr, a_indices, a_data, row_offset, indptr, indices, data):
    pos = 0
    for t in range(t_indptr.shape[0] - 1):
        indptr[t] = pos
        for p in range(t_indptr[t], t_indptr[t + 1]):
            d = new_of_old[t_indices[p]]
            if d >= 0:
                indices[pos] = d
                data[pos] = t_data[p]
                pos += 1
        for p in range(a_indptr[t], a_indptr[t + 1]):
            indices[pos] = a_indices[p] + row_offset
            data[pos] = a_data[p]
            pos += 1
    indptr[t_indptr.shape[0] - 1] = pos


@numba.njit(nogil=True, cache=True)
def _append(t_indptr, t_indices, t_data, a_indptr, a_indices, a_data, row_offset, indptr, indices, data):
    for t in range(t_indptr.shape[0] - 1):
        lo, hi, pos = t_indptr[t], t_indptr[t + 1], indptr[t]
        indices[pos : pos + hi - lo] = t_indices[lo:hi]
        data[pos : pos + hi - lo] = t_data[lo:hi]
        pos += hi - lo
        for p in range(a_indptr[t], a_indptr[t + 1]):
            indices[pos] = a_indices[p] + row_offset
            data[pos] = a_data[p]
            pos += 1


# --- the overlay file ------------------------------------------------------------------------------


def overlay_state(model: Recommender, base_sha256: str) -> dict[str, Any]:
    """What :func:`apply_overlay` needs to rebuild ``model`` from its fitted file."""
    base = np.asarray(model.base_rows_)
    first_added = int(np.count_nonzero(base >= 0))
    rows = np.arange(first_added, len(model))
    return {
        "format_version": OVERLAY_FORMAT,
        "base_sha256": base_sha256,
        "updates": dict(model.updates_),
        "removed_base": _others(model.base_size_, base[base >= 0]),
        "added": {
            "matrix": csr_state(_rows_from(model.matrix_, first_added)),
            "columns": {name: getattr(model, f"{name}_").take(rows).state() for name in _ROW_FIELDS},
            "timestamps": np.asarray(model.timestamps_[first_added:]),
        },
    }


def _rows_from(matrix: sp.csr_matrix, start: int) -> sp.csr_matrix:
    """Rows ``start..`` of ``matrix``, by slicing its arrays (scipy's slicing scans every row)."""
    indptr = np.asarray(matrix.indptr, dtype=np.int64)
    lo = int(indptr[start])
    out = sp.csr_matrix((matrix.shape[0] - start, matrix.shape[1]), dtype=np.float32)
    out.indptr, out.indices, out.data = indptr[start:] - lo, matrix.indices[lo:], matrix.data[lo:]
    return out


def read_overlay(model_path: Path, base_sha256: str) -> dict[str, Any] | None:
    """The overlay beside ``model_path`` if it belongs to the fitted file with ``base_sha256``; ``None``
    if there is none, or it is left from an earlier fit (a full save supersedes it)."""
    path = overlay_path(model_path)
    if not path.is_file():
        return None
    try:
        state = joblib.load(path)
    except FileNotFoundError:  # deleted since: a save committed a new model, which the load notices
        return None
    except Exception:  # a pickle can fail in many ways (its messages say little); all mean the file is unusable
        raise ModelError(
            f"cannot read the model's updates {path} (corrupt or truncated): delete it to go back to the fitted "
            "model, or retrain"
        ) from None
    if not isinstance(state, dict) or state.get("format_version") != OVERLAY_FORMAT:
        raise ModelError(f"{path} is not a recommender updates file: delete it to go back to the fit")
    return state if state.get("base_sha256") == base_sha256 else None


def apply_overlay(model: Recommender, state: dict[str, Any]) -> Recommender:
    """``model`` as loaded from its fitted file, with the overlay's removals and additions."""
    removed = np.asarray(state["removed_base"], dtype=np.int64)
    kept = _others(len(model), removed) if removed.size else None
    added = state["added"]
    new = _assemble(
        model,
        kept,
        csr_from_state(added["matrix"]),
        {name: StringColumn(**column) for name, column in added["columns"].items()},
        np.asarray(added["timestamps"], dtype=np.float64),
    )
    new.updates_ = dict(state["updates"])
    return new


# --- the store: which lists change ------------------------------------------------------------------


@dataclass
class _Lists:
    """A store's lists as arrays over the model's rows (``-1`` pads), read once per updater."""

    indices: np.ndarray  # (articles, k) int64
    scores: np.ndarray  # (articles, k) float32
    k: int
    options: RankingOptions


def _read_lists(conn: sqlite3.Connection, model: Recommender, meta: dict[str, str]) -> _Lists:
    k, options = int(meta["k"]), _store_options(model, meta)
    rows = model._rows()
    n = len(model)
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    found = conn.execute("SELECT article_id, rank, related_id, score FROM related").fetchall()
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


def _store_options(model: Recommender, meta: dict[str, str]) -> RankingOptions:
    """The ranking options a store was precomputed with (its ``meta``), on ``model``'s prior and dedup."""
    return model._options(
        newer=meta.get("newer", "1") == "1",
        within_days=float(meta["within_days"]) if meta.get("within_days") else None,
        diversity=float(meta.get("diversity", "0")),
        min_score=float(meta.get("min_score", "0")),
        min_results=int(meta.get("min_results", "0")),
    )


class _Behind(Exception):
    """The store does not match its model's current rows: rebuild it."""


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


def _changed_lists(old: Recommender, new: Recommender, delta: _Delta, lists: _Lists) -> tuple[np.ndarray, _Lists]:
    """The rows of ``new`` whose lists must be recomputed, and the lists with those rows recomputed."""
    prior = lists.options.prior(newer=True)  # --no-newer only removes candidates: a superset
    threads = available_threads(new.n_jobs)
    threshold = _thresholds(lists)
    touched_old = np.zeros(len(old), dtype=bool)
    if delta.dropped.size:
        index = old._index()
        touched_old |= lists_entered(
            index, index.matrix[delta.dropped], old.timestamps_[delta.dropped], threshold, prior, threads,
            None if old.topics_ is None else old.topics_[delta.dropped],
        )  # fmt: skip
        touched_old |= np.isin(lists.indices, delta.dropped).any(axis=1)
    touched_old[delta.dropped] = False
    touched = [delta.new_of_old[touched_old], delta.new_rows]
    if delta.new_rows.size:
        kept = delta.new_of_old >= 0
        new_threshold = np.full(len(new), np.inf, dtype=np.float32)
        new_threshold[delta.new_of_old[kept]] = threshold[kept]
        index = new._index()
        entered = lists_entered(
            index, index.matrix[delta.new_rows], new.timestamps_[delta.new_rows], new_threshold, prior, threads,
            None if new.topics_ is None else new.topics_[delta.new_rows],
        )  # fmt: skip
        touched.append(np.flatnonzero(entered))
    rows = np.unique(np.concatenate(touched))

    kept_rows = np.flatnonzero(delta.new_of_old >= 0)
    indices = np.full((len(new), lists.k), -1, dtype=np.int64)
    scores = np.zeros((len(new), lists.k), dtype=np.float32)
    old_indices = lists.indices[kept_rows]
    indices[: kept_rows.size] = np.where(old_indices >= 0, delta.new_of_old[np.maximum(old_indices, 0)], -1)
    scores[: kept_rows.size] = lists.scores[kept_rows]
    for block in new._all_related(lists.k, lists.options, None, rows, None, 4096):
        at = rows[block.start : block.start + block.indices.shape[0]]
        indices[at], scores[at] = block.indices, block.scores
    return rows, _Lists(indices, scores, lists.k, lists.options)


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
        self._lists_key: tuple[str | None, ...] = ()
        with self._locked():
            self._sync()
            if self.store_path is not None:  # read now, so the first update costs what later ones do
                conn = connect_for_writing(self.store_path)
                try:
                    self._current_lists(conn, self._model, _meta(conn))
                except _Behind:
                    pass  # the first update rebuilds the store
                finally:
                    conn.close()
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

    def _warm(self) -> None:
        """Build the model's lookup tables and load the compiled kernels now, so that the first update
        costs what later ones do (a second more, otherwise): fold an empty article in and one article out,
        find the lists that would change, and discard the results. Nothing is written."""
        model = self._model
        model._vocab()
        model._title_ids()
        if len(model) < 2:
            return
        blank = Article(id="\x00warm-up", title="", body="")  # in the model, it would be a (discarded) edit
        for articles, remove in (([blank], []), ([], [str(model.ids_[0])])):
            new, delta = fold(model, articles, remove)
            if self._lists is not None:
                _changed_lists(model, new, delta, self._lists)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One writer at a time per model folder: updaters, and a save's commit (see Recommender.save). A lock
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
            self._model = Recommender.load(self.model_path)
            self._lists = None
            self._signature = signature

    def _update(self, articles: list[Article], remove: list[str]) -> UpdateResult:
        started = time.perf_counter()
        with self._locked():
            self._sync()
            old = self._model
            new, delta = fold(old, articles, remove)
            base_sha = old._base_sha256
            if base_sha is None:  # not loaded from this path: cannot happen for an updater, but be safe
                raise ModelError(f"the model in memory is not the one at {self.model_path}")
            state = overlay_state(new, base_sha)
            target = overlay_path(self.model_path)
            tmp = temporary_beside(target)
            conn = None
            rebuilt = False
            changed = 0
            moved = False
            try:
                joblib.dump(state, tmp)
                fsync_file(tmp)
                if self.store_path is not None:
                    conn, rebuilt, changed = self._write_store(old, new, delta)
                os.replace(tmp, target)  # the model moves on; the store follows at COMMIT
                moved = True
                if conn is not None:
                    conn.execute("COMMIT")
            except BaseException as exc:
                if conn is not None and conn.in_transaction:
                    conn.execute("ROLLBACK")
                tmp.unlink(missing_ok=True)
                self._lists = None
                if isinstance(exc, sqlite3.OperationalError) and self.store_path is not None:
                    raise StoreError(_store_failure(self.store_path, exc, moved)) from None
                raise
            finally:
                if conn is not None:
                    conn.close()
            self._model = new
            self._signature = self._disk_signature()
        return UpdateResult(
            delta.changes,
            len(new),
            new.updates_["generation"],
            changed,
            rebuilt,
            time.perf_counter() - started,
            freshness(new),
        )

    def _write_store(self, old: Recommender, new: Recommender, delta: _Delta) -> tuple[sqlite3.Connection, bool, int]:
        """Open a transaction on the store with ``new``'s lists in it (not committed yet)."""
        assert self.store_path is not None
        conn = connect_for_writing(self.store_path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            meta = _meta(conn)
            if meta.get("model_created_at") != str(old.fitted_at_):
                raise StoreError(
                    f"{self.store_path} was written from another model (fitted {meta.get('model_created_at')}, "
                    f"this one {old.fitted_at_}): rerun `recommender precompute --out {self.store_path}`"
                )
            behind = meta.get("model_generation", "0") != str(old.updates_["generation"])
            if not behind:
                try:
                    self._current_lists(conn, old, meta)
                except _Behind:
                    behind = True
            if behind:
                lists = self._rebuild_lists(new, meta)
                rows = np.arange(len(new))
                conn.execute("DELETE FROM related")
                conn.execute("DELETE FROM articles")
                insert_articles(conn, new, rows)
            else:
                assert self._lists is not None
                rows, lists = _changed_lists(old, new, delta, self._lists)
                dropped_ids = [old.ids_[int(r)] for r in delta.dropped]
                conn.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in dropped_ids))
                conn.executemany("DELETE FROM related WHERE article_id = ?", ((i,) for i in dropped_ids))
                ids = new.ids_
                conn.executemany("DELETE FROM related WHERE article_id = ?", ((ids[int(r)],) for r in rows))
                insert_articles(conn, new, delta.new_rows)
            insert_related(conn, new.ids_, row_lists(rows.tolist(), lists.indices[rows], lists.scores[rows]))
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                {
                    "articles": str(len(new)),
                    "model_generation": str(new.updates_["generation"]),
                    "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }.items(),
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        self._lists = lists
        self._lists_key = _lists_key(meta | {"model_generation": str(new.updates_["generation"])})
        return conn, behind, int(rows.size)

    def _current_lists(self, conn: sqlite3.Connection, model: Recommender, meta: dict[str, str]) -> None:
        """Read the store's lists, unless those in memory are still the store's (same job, same update)."""
        key = _lists_key(meta)
        if self._lists is None or key != self._lists_key:
            self._lists = None
            self._lists = _read_lists(conn, model, meta)
            self._lists_key = key

    def _rebuild_lists(self, model: Recommender, meta: dict[str, str]) -> _Lists:
        """Every list of ``model`` again, with the options of the store's own precompute (exact)."""
        k, options = int(meta["k"]), _store_options(model, meta)
        lists = _Lists(
            np.full((len(model), k), -1, dtype=np.int64), np.zeros((len(model), k), dtype=np.float32), k, options
        )
        for block in model._all_related(k, options, None, None, None, 4096):
            stop = block.start + block.indices.shape[0]
            lists.indices[block.start : stop], lists.scores[block.start : stop] = block.indices, block.scores
        return lists


def _store_failure(store: Path, exc: sqlite3.OperationalError, model_moved: bool) -> str:
    """The message for a store update that SQLite refused (locked for too long, disk full, ...)."""
    problem = locked(store) if is_busy(exc) else f"cannot write {store}: {exc}"
    if model_moved:  # the overlay was renamed into place before the COMMIT failed
        return f"{problem}: the model was updated but not its store; the next add or remove rebuilds the store"
    return f"{problem}: nothing was changed; try again"


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _lists_key(meta: dict[str, str]) -> tuple[str | None, ...]:
    """What identifies a store's lists: the job that wrote them and the update they are at."""
    return (meta.get("written_at"), meta.get("model_generation"), meta.get("model_created_at"))
