"""Incremental updates: fold new, edited and removed articles into a fitted model and its store.

The vocabulary and IDF stay as fitted (a full ``train`` refits them). A model on disk is its fitted file
plus a small overlay beside it (``model.updates.joblib``: the rows added since the fit and the fitted
rows dropped), rewritten atomically per batch, so an update never rewrites the whole model; each batch
is also appended to the model's journal (see :mod:`recommender.modelfile`).

A SQLite store is repaired in one transaction: the lists the change reaches are recomputed by the batch
job's kernel (see :mod:`recommender.repair`), so the store equals a full precompute of the updated
model. A store precomputed from another fit (a ``train`` whose ``precompute`` has not run yet) is left as
it is: that precompute reads the updates from the journal.

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
from .corpus import Article
from .errors import InvalidParameterError, ModelError, StoreError
from .folding import Changes, Delta, fold
from .lookups import warm
from .model import ModelFiles, Recommender, load_with_manifest
from .modelfile import PendingOverlay, append_journal, manifest_path, overlay_path
from .neighbors import available_threads
from .ranking import RankingOptions
from .repair import StoredLists, all_lists, changed_lists, read_lists, rules_changed_lists, under_rules
from .rulebook import RuleBook
from .ruleindex import rule_index
from .rules import Rule, Rules, check_rule, rules_from_json, rules_json
from .state import FittedState
from .store import SqliteStore, StoreMeta, format_for, is_busy, locked, row_lists
from .vectorfile import VectorFile, encode_new

__all__ = [
    "REFIT_SHARE",
    "Changes",
    "Freshness",
    "RuleChange",
    "UpdateResult",
    "Updater",
    "freshness",
    "overlay_path",
]

REFIT_SHARE = 0.10  # articles changed since the fit, as a share of the fitted corpus, past which to refit


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A rule added or removed, and the stored lists that were rewritten with it."""

    rule: Rule
    action: str  # "added", "removed" or "moved"
    lists_updated: int
    seconds: float
    store_stale: bool = False  # the store is of another fit: left as it was (see UpdateResult)

    def to_dict(self) -> dict[str, Any]:
        """The change as ``recommender pin --json`` prints it (and ``POST /rules`` returns it)."""
        return {
            "action": self.action,
            "rule": self.rule.to_dict(),
            "lists_updated": self.lists_updated,
            "store_stale": self.store_stale,
            "seconds": round(self.seconds, 3),
        }


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
    # The store was precomputed from another fit (a `train` not yet followed by its `precompute`): it was
    # left as it was; the precompute brings it up to this update.
    store_stale: bool = False
    encoded: int = 0  # texts of the added articles encoded into the model's vectors file
    without_vector: int = 0  # added articles left without a semantic vector (ranked by their words)

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
            "store_stale": self.store_stale,
            "seconds": round(self.seconds, 3),
            "refit_suggested": self.freshness.refit_suggested,
            "encoded": self.encoded,
            "without_vector": self.without_vector,
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
        self._lists: StoredLists | None = None
        self._lists_key: tuple[Any, ...] = ()
        with self._locked():
            self._sync()
            if self.store_path is not None:  # read now, so the first update costs what later ones do
                opened = SqliteStore.for_writing(self.store_path)
                try:
                    meta = opened.meta()
                    state = self._model.fitted_state()
                    if meta.model_created_at == str(state.fitted_at):
                        self._current_lists(opened, state, meta)  # None (behind): the first update rebuilds
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

    def rules(self) -> Rules:
        """The editors' rules stored beside the model (in force or expired)."""
        return RuleBook.of_model(self.model_path).rules()

    def add_rule(self, rule: Rule) -> RuleChange:
        """Store ``rule`` and rewrite, in one transaction, every stored list it changes. A rule naming an
        article the model lacks, a position outside 1 to 1,000, an expiry in the past or a malformed pattern is an
        error (:class:`InvalidParameterError` or :class:`UnknownArticleError`), and nothing is stored."""
        return self._change_rules(add=rule)

    def remove_rule(self, rule_id: int, kind: str | None = None) -> RuleChange:
        """Remove rule ``rule_id`` (unpin, unblock; only if it is of ``kind``, when given) and rewrite the
        stored lists it changed."""
        return self._change_rules(remove=rule_id, kind=kind)

    # -- internals --

    def _threads(self) -> int:
        return available_threads(self._model.n_jobs)

    def _warm(self) -> None:
        """Build the model's lookup tables and load the compiled kernels now, so that the first update
        costs what later ones do (a second more, otherwise): fold an empty article in and one article out,
        find the lists that would change, and discard the results. Nothing is written."""
        state = self._model.fitted_state()
        warm(state)
        if len(state) < 2:
            return
        blank = Article(id="recommender-warm-up", title="", body="")  # in the model, it would be a (discarded) edit
        for articles, remove in (([blank], []), ([], [str(state.articles.ids[0])])):
            new, delta = fold(state, articles, remove)
            if self._lists is not None:
                changed_lists(state, new, delta, self._lists, self._threads())

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

        return tuple(stamp(path) for path in ModelFiles.of(self.model_path).watched)

    def _sync(self) -> None:
        """(Re)load the model if the files changed since we last read or wrote them."""
        signature = self._disk_signature()
        if signature != self._signature:
            self._model = load_with_manifest(self.model_path)[0]
            self._lists = None
            self._signature = signature

    def apply_rules(self) -> int:
        """Bring the store to the rules in force now (one expired since its lists were written, say), in one
        transaction; returns the lists rewritten (0: it was up to date, or is of another fit)."""
        if self.store_path is None:
            raise StoreError("give the store to bring up to the rules in force (--store)")
        with self._locked():
            self._sync()
            state = self._model.fitted_state()
            store, changed = self._write_rules(state)
            if store is None:
                return 0
            try:
                store.commit()
            except BaseException:
                store.rollback()
                self._lists = None
                raise
            finally:
                store.close()
            self._signature = self._disk_signature()
        return changed

    def move_pin(self, rule_id: int, position: int) -> RuleChange:
        """Move pin ``rule_id`` to ``position``: the pin is replaced by one at the new place (a new rule
        number) in one transaction, with the lists it changes."""
        pin = next((r for r in self.rules().rules if r.id == rule_id), None)
        if pin is None or pin.kind != "pin":
            raise InvalidParameterError(f"no pin {rule_id}: see `recommender rules`")
        moved = replace(pin, position=position, id=None, created=None)
        return self._change_rules(add=moved, remove=rule_id, kind="pin")

    def _change_rules(
        self, *, add: Rule | None = None, remove: int | None = None, kind: str | None = None
    ) -> RuleChange:
        started = time.perf_counter()
        with self._locked():
            self._sync()
            old = self._model.fitted_state()
            if add is not None:
                add = check_rule(add, lambda i: i in old.rows(), time.time())
            store: SqliteStore | None = None
            changed = 0
            try:
                with RuleBook.of_model(self.model_path).change(add=add, remove=remove, kind=kind) as (rules, rule):
                    new = old.with_rules(rules)
                    if self.store_path is not None:
                        store, changed = self._write_rules(new)
                # The rules are committed; the store follows (a crash in between leaves a store whose
                # recorded rules are not the model's: readers use the model, the next write repairs it).
                if store is not None:
                    store.commit()
            except BaseException as exc:
                if store is not None:
                    store.rollback()
                self._lists = None
                if isinstance(exc, sqlite3.OperationalError) and self.store_path is not None:
                    raise StoreError(_store_failure(self.store_path, exc, False)) from None
                raise
            finally:
                if store is not None:
                    store.close()
            self._model.state_ = new
            self._signature = self._disk_signature()
        stale = self.store_path is not None and store is None
        action = "moved" if add is not None and remove is not None else "added" if add is not None else "removed"
        return RuleChange(rule, action, changed, time.perf_counter() - started, stale)

    def _write_rules(self, new: FittedState) -> tuple[SqliteStore | None, int]:
        """Open a transaction on the store with the lists under ``new``'s rules in it (not committed yet);
        ``None`` when the store is of another fit."""
        assert self.store_path is not None
        store = SqliteStore.for_writing(self.store_path)
        try:
            store.begin()
            meta = store.meta()
            if meta.model_created_at != str(new.fitted_at):
                store.rollback()
                store.close()
                return None, 0
            lists = self._current_lists(store, new, meta) if meta.model_generation == new.updates.generation else None
            if lists is None:  # behind its model: rebuilt whole
                lists = all_lists(new, meta.k, self._store_options(meta), self._threads())
                rows = np.arange(len(new))
                store.clear()
                store.insert_articles(new.articles)
            else:
                rows, lists = rules_changed_lists(
                    under_rules(new, rules_from_json(meta.rules)), new, lists, self._threads()
                )
                store.delete_lists(new.articles.ids[int(r)] for r in rows)
            applied = _write_lists(store, new, rows, lists)
        except BaseException:
            store.rollback()
            store.close()
            raise
        self._lists = lists
        self._lists_key = replace(meta, rules=applied).lists_key()
        return store, int(rows.size)

    def _update(self, articles: list[Article], remove: list[str]) -> UpdateResult:
        started = time.perf_counter()
        with self._locked():
            self._sync()
            old = self._model.fitted_state()
            source = None if old.vectors is None else old.vectors.source
            # Before the fold, which finds the new texts' vectors by their text; a vector kept for an update
            # that then fails is harmless: it belongs to a text, not to an article.
            encoded = encode_new(source, articles)
            new, delta = fold(old, articles, remove)
            overlay = PendingOverlay(new, self.model_path)
            store: SqliteStore | None = None
            rebuilt = stale = False
            changed = 0
            moved = False
            try:
                if self.store_path is not None:
                    store, rebuilt, changed = self._write_store(old, new, delta)
                    stale = store is None
                if isinstance(source, VectorFile) and delta.changes.edited:
                    # Until assigned its new text, an edited article goes without a vector, never its old one.
                    source.assign((), remove=delta.changes.edited)
                overlay.commit()  # the model moves on; the store follows at COMMIT
                moved = True
                append_journal(self.model_path, new, articles, delta.changes.removed)
                if store is not None:
                    store.commit()
                if isinstance(source, VectorFile):  # which text each article has now, for the next load
                    source.assign_texts(articles, remove=delta.changes.removed)
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
            stale,
            encoded,
            0 if new.vectors is None else int(np.count_nonzero(~new.vectors.present[delta.new_rows])),
        )

    def _write_store(self, old: FittedState, new: FittedState, delta: Delta) -> tuple[SqliteStore | None, bool, int]:
        """Open a transaction on the store with ``new``'s lists in it (not committed yet); ``None`` when the
        store was precomputed from another fit, which this update leaves as it is."""
        path = self.store_path
        if path is None:
            raise StoreError("this updater has no store to write")
        store = SqliteStore.for_writing(path)
        try:
            store.begin()
            meta = store.meta()
            if meta.model_created_at != str(old.fitted_at):
                # Written before a `train` replaced the model: its lists are of the old fit, and readers
                # (`serve`) know it by the fit it records. The `precompute` that follows the train reads
                # this update from the journal.
                store.rollback()
                store.close()
                return None, False, 0
            lists = self._current_lists(store, old, meta) if meta.model_generation == old.updates.generation else None
            behind = lists is None
            ruled = np.zeros(0, dtype=np.int64)
            if lists is not None and meta.rules_key != rule_index(old).key:  # a rule expired since, say
                ruled, lists = rules_changed_lists(
                    under_rules(old, rules_from_json(meta.rules)), old, lists, self._threads()
                )
                ruled = delta.new_of_old[ruled]
                ruled = ruled[ruled >= 0]
            if lists is None:
                lists = all_lists(new, meta.k, self._store_options(meta), self._threads())
                rows = np.arange(len(new))
                store.clear()
                store.insert_articles(new.articles)
            else:
                rows, lists = changed_lists(old, new, delta, lists, self._threads())
                rows = np.union1d(rows, ruled)
                store.delete_articles(old.articles.ids[int(r)] for r in delta.dropped)
                store.delete_lists(new.articles.ids[int(r)] for r in rows)
                store.insert_articles(new.articles, delta.new_rows)
            applied = _write_lists(store, new, rows, lists)
        except BaseException:
            store.rollback()
            store.close()
            raise
        self._lists = lists
        self._lists_key = replace(meta, model_generation=new.updates.generation, rules=applied).lists_key()
        return store, behind, int(rows.size)

    def _store_options(self, meta: StoreMeta) -> RankingOptions:
        """The ranking options the store was precomputed with, on the model's prior and dedup."""
        return self._model.ranking_options(meta.lookup_options())

    def _current_lists(self, store: SqliteStore, state: FittedState, meta: StoreMeta) -> StoredLists | None:
        """The store's lists, read unless those in memory are still the store's (same job, same update);
        ``None`` when they do not fit the model's rows (the store is behind it)."""
        key = meta.lists_key()
        if self._lists is None or key != self._lists_key:
            self._lists = read_lists(store, state, meta, self._store_options(meta))
            self._lists_key = key
        return self._lists


def _write_lists(store: SqliteStore, state: FittedState, rows: np.ndarray, lists: StoredLists) -> str:
    """Write the lists of ``rows`` and record that the store is at ``state``'s update and rules (returned
    as JSON), inside the open transaction."""
    store.insert_lists(state.articles.ids, row_lists(rows.tolist(), lists.indices[rows], lists.scores[rows]))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    applied = rule_index(state)
    text = rules_json(applied.in_force)
    store.record_rules(text, applied.key, now)
    store.record_update(len(state), state.updates.generation, now)
    return text


def _store_failure(store: Path, exc: sqlite3.OperationalError, model_moved: bool) -> str:
    """The message for a store update that SQLite refused (locked for too long, disk full, ...)."""
    problem = locked(store) if is_busy(exc) else f"cannot write {store}: {exc}"
    if model_moved:  # the overlay was renamed into place before the COMMIT failed
        return f"{problem}: the model was updated but not its store; the next add or remove rebuilds the store"
    return f"{problem}: nothing was changed; try again"
