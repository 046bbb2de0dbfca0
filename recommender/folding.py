"""Folding articles into a fitted state: a new state with articles added, edited or removed, the
vocabulary, IDF and topic space kept as fitted (a full ``train`` refits them).

An edited article's old row goes and its new version is appended; the rows after a dropped one move
up. Rows are assembled from the old state's arrays without recomputing them, and the term-major index
is merged term by term, so a batch costs what it changes, not a rebuild. The lookup tables the old
state had built are carried over and extended.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from . import _folding_kernels as kernels
from ._sparse import compact_indptr, row_ranges
from .corpus import Article
from .errors import InvalidParameterError, UnknownArticleError
from .features import project_topics, weigh
from .lookups import TitleNumbers, term_counts
from .ranking import title_key
from .state import ArticleColumns, FittedState, Memo, UpdateCounts, timestamp_of

__all__ = ["Changes", "Delta", "assemble", "fold", "others", "renumbering"]


@dataclass(frozen=True, slots=True)
class Changes:
    """What one batch did to a model: ids added (new), edited (given again) and removed."""

    added: tuple[str, ...] = ()
    edited: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delta:
    """How a fold renumbered rows: what an update of stored lists needs to know."""

    changes: Changes
    dropped: np.ndarray  # rows of the old state dropped (removed, or edited and appended again)
    new_of_old: np.ndarray  # old row -> new row, -1 when dropped
    new_rows: np.ndarray  # rows of the new state holding the added and edited articles


def fold(state: FittedState, articles: Iterable[Article], remove: Iterable[str]) -> tuple[FittedState, Delta]:
    """A new state: ``state`` without the ``remove`` ids, with ``articles`` added (an existing id is an
    edit: its old row goes, the new one is appended). ``state`` itself is left as it was."""
    docs = list(articles)
    gone = [i.strip() if isinstance(i, str) else i for i in remove]  # as ids are read from a corpus
    twice = sorted(i for i, n in Counter(gone).items() if n > 1)
    if twice:
        raise InvalidParameterError(f"article id {twice[0]!r} is given twice to remove: give each id once")
    if not docs and not gone:
        raise InvalidParameterError("nothing to update: give articles to add or ids to remove")
    rows = state.rows()
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
    kept = others(len(state), dropped)

    # Analysed here, one by one: worker processes would cost seconds to start, more than a batch takes.
    parts = [term_counts(state, a.title, a.body) for a in docs]
    indptr = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(cols) for cols, _, _ in parts], out=indptr[1:])
    raw = sp.csr_matrix(
        (
            np.concatenate([tf for _, tf, _ in parts]) if parts else np.zeros(0, np.float32),
            np.concatenate([cols for cols, _, _ in parts]).astype(np.int32) if parts else np.zeros(0, np.int32),
            indptr,
        ),
        shape=(len(docs), state.idf.shape[0]),
    )
    added = weigh(raw, state.idf, sublinear_tf=state.sublinear_tf)
    timestamps = np.array([timestamp_of(a.published) for a in docs], dtype=np.float64)
    updates = state.updates.after(
        added=len(docs) - len(edited),
        edited=len(edited),
        removed=len(gone),
        known=int(raw.data.sum()),
        unknown=sum(unknown for _, _, unknown in parts),
    )
    carried = kept if dropped.size else None
    new = assemble(state, carried, added, ArticleColumns.from_articles(docs), timestamps, updates)
    new = _with_lookups(new, state, carried, ids, [a.title for a in docs])
    if state.vectors is not None:  # kept rows keep theirs; new ones are looked up by their text
        new = new.with_vectors(state.vectors.take(carried).extend(docs))
    changes = Changes(tuple(i for i in ids if i not in rows), tuple(edited), tuple(gone))
    new_rows = np.arange(kept.size, kept.size + len(docs), dtype=np.int64)
    return new, Delta(changes, dropped, renumbering(len(state), kept), new_rows)


def _with_lookups(
    new: FittedState, old: FittedState, kept: np.ndarray | None, ids: list[str], titles: list[str | None]
) -> FittedState:
    """``new`` with ``old``'s lookup tables extended to it (``old``'s rows ``kept`` plus new ``ids``): an
    update then costs what it adds, not a rebuild of tables over the whole corpus."""
    seed: dict[str, object] = {}
    vocabulary = old.memo.peek("vocabulary")
    if vocabulary is not None:  # fixed after the fit
        seed["vocabulary"] = vocabulary
    rows = old.memo.peek("rows")
    if rows is not None and kept is None:
        rows = dict(rows)
        rows.update((i, len(rows)) for i in ids)
        seed["rows"] = rows
    numbers: TitleNumbers | None = old.memo.peek("titles")
    if numbers is not None:
        # Numbered as first seen, and the numbering kept: an update numbers only its new headlines.
        keys = dict(numbers.keys)
        extra = [keys.setdefault(title_key(t), len(keys)) for t in titles]
        own = numbers.ids if kept is None else numbers.ids[kept]
        seed["titles"] = TitleNumbers(keys, np.concatenate([own, np.array(extra, dtype=np.int64)]))
    return replace(new, memo=Memo(seed))


def others(n: int, rows: np.ndarray) -> np.ndarray:
    """The rows ``0..n`` not in ``rows``, in order (a mask: ``np.setdiff1d`` sorts, 40 ms at 100k rows)."""
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(rows, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def renumbering(n: int, kept: np.ndarray | None) -> np.ndarray:
    """Each of ``n`` rows' number once only ``kept`` remain (all when ``None``), ``-1`` for the others."""
    if kept is None:
        return np.arange(n, dtype=np.int64)
    new_of_old = np.full(n, -1, dtype=np.int64)
    new_of_old[kept] = np.arange(kept.size)
    return new_of_old


def assemble(
    state: FittedState,
    kept: np.ndarray | None,
    added: sp.csr_matrix,
    articles: ArticleColumns,
    timestamps: np.ndarray,
    updates: UpdateCounts,
) -> FittedState:
    """``state``'s rows ``kept`` (all when ``None``) followed by the ``added`` rows and their fields."""
    n_kept = len(state) if kept is None else kept.size
    own = state.timestamps if kept is None else state.timestamps[kept]
    topics = state.topics
    if state.topics is not None and state.topic_terms is not None:  # the topic space stays as fitted, like idf
        kept_topics = state.topics if kept is None else state.topics[kept]
        topics = np.concatenate([np.asarray(kept_topics), project_topics(added, state.topic_terms)])
    base = state.base_rows if kept is None else state.base_rows[kept]
    return FittedState(
        analyzer=state.analyzer,
        terms=state.terms,
        idf=state.idf,
        sublinear_tf=state.sublinear_tf,
        matrix=_stack_rows(state.matrix, kept, added),
        index_t=_merge_postings(state.index_t, renumbering(len(state), kept), added, n_kept),
        topic_terms=state.topic_terms,
        topics=topics,
        articles=(state.articles if kept is None else state.articles.take(kept)).extend(articles),
        timestamps=np.concatenate([np.asarray(own, dtype=np.float64), timestamps]),
        time_origin=state.time_origin,
        corpus=state.corpus,
        fitted_at=state.fitted_at,
        updates=updates,
        base_rows=np.concatenate([np.asarray(base, dtype=np.int64), np.full(added.shape[0], -1, dtype=np.int64)]),
        base_size=state.base_size,
        base_sha256=state.base_sha256,
        rules=state.rules,
    )


def _stack_rows(matrix: sp.csr_matrix, kept: np.ndarray | None, added: sp.csr_matrix) -> sp.csr_matrix:
    indptr = np.asarray(matrix.indptr, dtype=np.int64)
    indices, data = np.asarray(matrix.indices), np.asarray(matrix.data)
    if kept is not None:
        indptr, where = row_ranges(indptr, kept)
        indices, data = indices[where], data[where]
    out_indptr = compact_indptr(np.concatenate([indptr, np.asarray(added.indptr[1:], dtype=np.int64) + indptr[-1]]))
    out = sp.csr_matrix((out_indptr.size - 1, matrix.shape[1]), dtype=np.float32)
    out.indptr = out_indptr
    out.indices = np.concatenate([indices, np.asarray(added.indices, dtype=np.int32)])
    out.data = np.concatenate([data, np.asarray(added.data, dtype=np.float32)])
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
        kernels.merge(
            t_indptr, np.asarray(index_t.indices), np.asarray(index_t.data), new_of_old, *a_parts, row_offset, indptr,
            indices, data,
        )  # fmt: skip
    else:  # nothing dropped: each term's old postings are copied whole, and the new ones appended
        indptr = t_indptr + a_indptr
        kernels.append(
            t_indptr, np.asarray(index_t.indices), np.asarray(index_t.data), *a_parts, row_offset, indptr, indices, data
        )  # fmt: skip
    out = sp.csr_matrix((index_t.shape[0], row_offset + added.shape[0]), dtype=np.float32)
    out.indptr, out.indices, out.data = compact_indptr(indptr), indices, data
    return out
