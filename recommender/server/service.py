"""One worker's service: the model and store it serves as one :class:`Snapshot`, swapped whole when their
files change on disk, lookups and drafts on a snapshot, and writes through an :class:`~recommender.Updater`.

No FastAPI here: the routes (:mod:`recommender.server.routes`) reach a :class:`Service` through a
dependency, and so could any other front end.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import locked_directory
from ..corpus import article_from_record
from ..encoder import default_encoder
from ..errors import InvalidParameterError, ModelError, RecommenderError, StoreError
from ..folding import fold
from ..lookups import find_articles, label_values, warm
from ..model import ModelFiles, Recommender, load_with_manifest, read_manifest
from ..modelfile import JournalReader, overlay_generation
from ..options import DEFAULTS, NO_FILTERS, Filters, LookupOptions
from ..ranking import Related, check_k
from ..rulebook import RuleBook
from ..ruleindex import rule_index
from ..rules import rule_from_dict
from ..state import FittedState
from ..store import ListsKey, RelatedStore, StoreMeta
from ..updates import RuleChange, Updater, UpdateResult
from .settings import ServeSettings

__all__ = ["EditorBackend", "Query", "Service", "Snapshot", "Stamp", "health_of"]

Stamp = tuple[tuple[int, int, int] | None, ...]


@dataclass(frozen=True)
class Snapshot:
    """One consistent view: a model, its store (``store_meta`` ``None`` when there is none, or it is not
    at the model's fit and update), and an ETag naming all of it."""

    model: Recommender
    sha256: str
    store: RelatedStore | None
    store_meta: StoreMeta | None
    stamp: Stamp
    etag: str
    # The store's lists this snapshot names: a read finding others (rewritten since) is answered by the model.
    store_key: ListsKey | None = None
    # When one of the rules in force expires: the snapshot is made again then (lists and ETag change).
    rules_valid_until: float = math.inf


@dataclass(frozen=True, slots=True)
class Query:
    """A lookup as a request asks for it: how many, and the options (checked when made)."""

    k: int = 5
    options: LookupOptions = DEFAULTS


@functools.lru_cache(maxsize=8)
def _stored_options(meta: StoreMeta) -> LookupOptions | None:
    """The options a request must have for the store's lists to answer it; ``None``: none does (lists with a
    time window, which the batch job applies to an undated article as a lookup does not)."""
    return None if meta.within_days is not None else meta.lookup_options()


def _stamp_of(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


DRAFTS_NICE = 10  # the drafts' thread's niceness above the server's: Linux schedules threads by it


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux: a thread is a task of its own); elsewhere, nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + DRAFTS_NICE)
    except (AttributeError, OSError):
        pass


class Service:
    """The model and store one worker process serves, reloaded when their files change."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.snapshot: Snapshot | None = None
        self._writing = threading.Lock()
        self._updater: Updater | None = None
        self._journal = JournalReader(settings.model)
        # One thread encodes drafts (the encoder takes one text at a time anyway), at a lower priority.
        self._drafts = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drafts", initializer=_lower_priority)

    def stamp(self) -> Stamp:
        """Which files are on disk now: the manifest, the overlay of updates, the store, the rules."""
        manifest, overlay, rules = ModelFiles.of(self.settings.model).watched
        return (_stamp_of(manifest), _stamp_of(overlay), _stamp_of(self.settings.store), _stamp_of(rules))

    def refresh(self) -> bool:
        """Load the files again if they changed since the snapshot was made; True if a new one is in place.
        A model that cannot be loaded now (mid-save, say) leaves the current snapshot serving.

        Only the store changed: the model is kept. Only the updates changed (another process's add): the
        journal's new batches are folded into the model served, as that process folded them (tens of
        milliseconds, lookup tables kept), instead of loading the model again. A new model is loaded and
        its lookup tables are built before it is swapped in, so no request waits for them. Only the rules
        changed (or one expired): the model served applies the rules now stored."""
        with self._writing:  # not beside this process's own update, which installs its result itself
            stamp = self.stamp()
            current = self.snapshot
            if current is not None and current.stamp == stamp and time.time() < current.rules_valid_until:
                return False
            if stamp[0] is None:
                return False  # no model (yet): keep what is served, if anything
            if current is not None and stamp[:2] == current.stamp[:2]:
                self._install(self._ruled(current.model, stamp, current.stamp), current.sha256, stamp)
                return True
            if current is not None and stamp[0] == current.stamp[0]:
                replayed = self._replay(current)
                if replayed is not None:
                    model = self._ruled(replayed[0], replayed[1], current.stamp)
                    self._install(model, current.sha256, replayed[1])
                    return True
            try:
                model, manifest = load_with_manifest(self.settings.model)
            except ModelError:
                return False
            warm(model.fitted_state())
            self._install(model, str(manifest["model_file"]["sha256"]), stamp)
            return True

    def _ruled(self, model: Recommender, stamp: Stamp, before: Stamp) -> Recommender:
        """``model`` applying the rules stored now, if they changed since ``before``."""
        if stamp[3] == before[3]:
            return model
        state = model.fitted_state().with_rules(RuleBook.of_model(self.settings.model).rules())
        return Recommender.from_state(state, model.get_params())

    def _replay(self, current: Snapshot) -> tuple[Recommender, Stamp] | None:
        """The served model with the journal's new batches folded in, and the files' stamp it matches;
        ``None`` when it cannot be had that way (a batch missing from the journal): load the model again."""
        state = current.model.fitted_state()
        fit = state.base_sha256
        if fit is None:
            return None
        # Under the writers' lock: no update lands between reading the journal and checking the overlay.
        with locked_directory(self.settings.model.parent):
            stamp = self.stamp()
            if stamp[0] != current.stamp[0]:
                return None
            for entry in self._journal.new_entries(fit, after=state.updates.generation):
                if entry.generation != state.updates.generation + 1:
                    return None
                try:
                    state, _ = fold(state, entry.articles, entry.removed)
                except RecommenderError:  # the served state is not the one the batch was folded into: load it
                    return None
            if overlay_generation(self.settings.model, fit) != state.updates.generation:
                return None
        return Recommender.from_state(state, current.model.get_params()), stamp

    def _install(self, model: Recommender, sha256: str, stamp: Stamp) -> None:
        store, meta = None, None
        if self.settings.store is not None and stamp[2] is not None:
            try:
                store = RelatedStore(self.settings.store)
                meta = StoreMeta.from_rows(store.meta())
            except (StoreError, KeyError, ValueError):
                store, meta = None, None
        state = model.fitted_state()
        rules = rule_index(state)
        if meta is not None and (
            meta.model_created_at != state.fitted_at
            or meta.model_generation != state.updates.generation
            or meta.rules_key != rules.key
        ):
            meta = None  # the store is behind (or ahead of) this model or its rules: lists come from the model
        key = repr(
            (
                sha256,
                state.updates.generation,
                rules.key,
                None if meta is None else meta.lists_key(),
                meta and meta.updated_at,
            )
        )
        etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:20] + '"'
        key_of_lists = None if meta is None else meta.lists_key()
        self.snapshot = Snapshot(
            model, sha256, store, meta, stamp, etag, key_of_lists, rules_valid_until=rules.valid_until
        )

    def current(self) -> Snapshot:
        snapshot = self.snapshot
        if snapshot is None:
            raise ModelError(f"no model loaded from {self.settings.model} yet: train one with `recommender train`")
        return snapshot

    def lookup(self, snapshot: Snapshot, article_id: str, query: Query) -> tuple[list[Related], str]:
        """``article_id``'s list and where it came from: "store" when the store holds it as asked, else "model"."""
        self._check_labels(snapshot, query.options)
        meta, key = snapshot.store_meta, snapshot.store_key
        if snapshot.store is not None and meta is not None and key is not None and self.store_can_answer(meta, query):
            try:
                stored = snapshot.store.related_as_of(article_id, check_k(query.k), key)
            except StoreError:
                stored = None  # locked past its timeout, say: the model answers
            if stored is not None:  # else rewritten since the snapshot: until the next one, the model answers
                return stored, "store"
        return snapshot.model.related(article_id, query.k, query.options), "model"

    def draft(self, snapshot: Snapshot, title: str, body: str, published: str | None, query: Query) -> list[Related]:
        self._check_labels(snapshot, query.options)
        model, k = snapshot.model, query.k
        return model.related_to_text(title=title, body=body, k=k, published=published, options=query.options)

    async def draft_soon(self, title: str, body: str, published: str | None, query: Query) -> list[Related]:
        """A draft's list on the current snapshot. A model with vectors encodes the draft first (about 0.1 s
        of CPU): on the drafts' thread, at a lower CPU priority, so that lookups by id go on meanwhile at
        their pace (the encoder releases the GIL, and drafts are an editor's tool: they wait for the CPU,
        readers do not)."""
        snapshot = self.current()
        if snapshot.model.vectors_ is None:
            return self.draft(snapshot, title, body, published, query)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._drafts, functools.partial(self.draft, snapshot, title, body, published, query)
        )

    @staticmethod
    def store_can_answer(meta: StoreMeta, query: Query) -> bool:
        # The stored list is the model's list with the store's options, best first: its first k are the
        # answer when the request asks for no more than it holds, with the same options and filters.
        return isinstance(query.k, int) and 1 <= query.k <= meta.k and query.options == _stored_options(meta)

    @staticmethod
    def _check_labels(snapshot: Snapshot, options: LookupOptions) -> None:
        """An :class:`InvalidParameterError` for a label filter no article of the model has: a typo, most likely
        (a list filtered by it would be empty)."""
        state = snapshot.model.fitted_state()
        for name, value in options.labels().items():
            known = label_values(state, name)
            if value not in known:  # casefolded by Filters, as the known values are
                some = ", ".join(sorted(known)[:10]) or "none"
                plural = "categories" if name == "category" else f"{name}s"
                raise InvalidParameterError(f"unknown {name} {value!r}: the model's {plural} include {some}")

    def update(self, articles: list[Any], remove: list[str]) -> dict[str, Any]:
        """Add (or edit) ``articles`` (JSON records) or remove ids, through the updater; then serve the
        result at once. Bad input changes nothing."""
        records = []
        for i, record in enumerate(articles):
            try:
                records.append(article_from_record(record))
            except ValueError as exc:
                raise InvalidParameterError(f"article {i + 1}: {exc}") from None
        return self._write(lambda updater: updater.add(records) if records else updater.remove(remove))

    def rules(self) -> dict[str, Any]:
        """The stored rules, those in force and those expired, as JSON objects."""
        return RuleBook.of_model(self.settings.model).rules().to_dict(time.time())

    def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Add a rule (a JSON object, see :class:`~recommender.rules.Rule`) through the updater, which
        rewrites the stored lists it changes; then serve the result at once. Bad input stores nothing."""
        return self._write(lambda updater: updater.add_rule(rule_from_dict(rule)))

    def remove_rule(self, rule_id: int) -> dict[str, Any]:
        """Remove rule ``rule_id`` through the updater; then serve the result at once."""
        return self._write(lambda updater: updater.remove_rule(rule_id))

    def move_pin(self, rule_id: int, position: int) -> dict[str, Any]:
        """Move pin ``rule_id`` to ``position`` through the updater, in one transaction."""
        return self._write(lambda updater: updater.move_pin(rule_id, position))

    def _write(self, change: Callable[[Updater], UpdateResult | RuleChange]) -> dict[str, Any]:
        """Make ``change`` through this worker's updater, then serve its result at once."""
        with self._writing:
            # A store not written yet (serve before any precompute): the model alone is updated, and the
            # precompute that writes the store catches up with the journal. Once it exists, it is kept fresh.
            store = self.settings.store
            store = store if store is not None and store.is_file() else None
            if self._updater is None or self._updater.store_path != store:
                self._updater = Updater(self.settings.model, store)
            updater = self._updater
            result = change(updater)
            model = updater.model
            manifest = read_manifest(self.settings.model)  # checked, as a load checks it
            fresh = Recommender.from_state(model.fitted_state(), model.get_params())
            self._install(fresh, str(manifest["model_file"]["sha256"]), self.stamp())
        return result.to_dict()


class EditorBackend:
    """What the editor's page (:mod:`recommender.editor`) reads and writes, on a worker's :class:`Service`:
    the box as readers see it (store or model, with each result's score and shared terms), drafts, title
    search, and the rules."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def token(self) -> str | None:
        return self.service.settings.token

    def related(self, article_id: str, k: int = 5, filters: Filters | None = None) -> list[Related]:
        service = self.service
        return service.lookup(service.current(), article_id, _explained(k, filters))[0]

    def draft(self, title: str, body: str, k: int = 5, filters: Filters | None = None) -> list[Related]:
        service = self.service
        return service.draft(service.current(), title, body, None, _explained(k, filters))

    def find(self, text: str, limit: int = 20) -> list[dict[str, str | None]]:
        return find_articles(self.service.current().model.fitted_state(), text, limit)

    def article(self, article_id: str) -> dict[str, str | None]:
        """The stored fields (id, title, url, published, section) of ``article_id``; UnknownArticleError if none."""
        state = self.service.current().model.fitted_state()
        return state.articles.article(state.row_of(article_id))

    def rules(self) -> dict[str, Any]:
        return self.service.rules()

    def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        return self.service.add_rule(rule)

    def remove_rule(self, rule_id: int) -> dict[str, Any]:
        return self.service.remove_rule(rule_id)

    def move_pin(self, rule_id: int, position: int) -> dict[str, Any]:
        return self.service.move_pin(rule_id, position)


def _explained(k: int, filters: Filters | None) -> Query:
    """The editors' page's lookup: ``k`` results with their shared terms, under ``filters``."""
    return Query(k, LookupOptions.of(explain=True, **(filters or NO_FILTERS).to_dict()))


def health_of(service: Service) -> dict[str, Any] | None:
    """``GET /health``'s answer: the model and store served, the rules in force, the semantic vectors, the
    ETag and whether writes are on; ``None`` before a model is loaded."""
    snapshot, settings = service.snapshot, service.settings
    if snapshot is None:
        return None
    state = snapshot.model.fitted_state()
    meta = snapshot.store_meta
    return {
        "status": "ok",
        "model": {
            "path": str(settings.model),
            "sha256": snapshot.sha256,
            "articles": len(state),
            "fitted_at": state.fitted_at,
            "generation": state.updates.generation,
        },
        "store": None
        if settings.store is None
        else {
            "path": str(settings.store),
            "in_use": meta is not None,
            "k": None if meta is None else meta.k,
            "written_at": None if meta is None else meta.written_at,
        },
        "rules": {"in_force": len(rule_index(state).in_force)},
        "vectors": _vectors_health(state),
        "etag": snapshot.etag,
        "writes": settings.token is not None,
    }


def _vectors_health(state: FittedState) -> dict[str, Any] | None:
    """Whether the model served has semantic vectors, how many articles lack one, and whether drafts are
    encoded (the encoder they were made with is installed here); ``None``: no vectors (words alone)."""
    vectors = state.vectors
    if vectors is None:
        return None
    try:
        drafts = default_encoder().name == vectors.encoder
    except RecommenderError:
        drafts = False
    return {
        "encoder": vectors.encoder,
        "articles_with_vector": len(vectors) - vectors.missing,
        "articles_without_vector": vectors.missing,
        "drafts_encoded": drafts,
    }
