"""``recommender serve``: related lists over HTTP, as JSON or the "Berita Lainnya" box, for any CMS.

One :class:`Service` per worker process holds a :class:`Snapshot` (the model, its store when the store
matches it, and their ETag) and swaps it as one reference when the files change on disk: a ``train``,
``precompute`` or ``add`` from another process is served within about a second, and a request is
answered from one snapshot, never a mix. Writes go through an :class:`~recommender.Updater`, so the model
overlay and the store change together, as ``recommender add/remove`` do.

FastAPI and uvicorn are an optional dependency (``pip install 'recommender[serve]'``).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations (Request, ...), which
# are imported inside create_app, as objects.
import asyncio
import functools
import gc
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ._atomic import locked_directory
from .corpus import article_from_record, parse_published
from .editor import Throttle
from .editor import mount as mount_editor
from .encoder import default_encoder
from .errors import (
    InvalidParameterError,
    ModelError,
    RecommenderError,
    StoreError,
    UnknownArticleError,
)
from .folding import fold
from .lookups import find_articles, warm
from .model import Recommender, load_with_manifest, read_manifest
from .modelfile import JournalReader, manifest_path, overlay_generation, overlay_path
from .ranking import MIN_RESULTS, MIN_SCORE, Related, check_k
from .render import render_related
from .rulebook import RuleBook, rules_path
from .ruleindex import rule_index
from .rules import rule_from_dict
from .state import FittedState
from .store import ListsKey, RelatedStore, StoreMeta
from .updates import RuleChange, Updater, UpdateResult

__all__ = [
    "EditorBackend",
    "ServeSettings",
    "Service",
    "Snapshot",
    "create_app",
    "create_app_from_env",
    "run",
    "token_warning",
]

INSTALL = "install the server with: pip install 'recommender[serve]'"
TOKEN_VARIABLE = "RECOMMENDER_API_TOKEN"
# A shorter write token is warned about at start: it can be guessed, even at a few tries a minute.
MIN_TOKEN_LENGTH = 16
# How deep a JSON body may nest: a draft or an article nests two or three levels; Python's parser would
# recurse once per level (a RecursionError at about a thousand).
MAX_DEPTH = 32
# prometheus_client's multiprocess mode: the folder where every worker keeps its metrics, read before the
# library is first imported in the process.
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How the CLI hands its settings to uvicorn's worker processes (each builds its own app).
_ENV = {"model": "RECOMMENDER_SERVE_MODEL", "store": "RECOMMENDER_SERVE_STORE", "max_age": "RECOMMENDER_SERVE_MAX_AGE"}


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What a server serves: the model (and store), the write token (``None``: writes off), how long a
    CDN may cache a list (``max_age`` seconds), the largest request body, and how often to look for
    changed files."""

    model: Path
    store: Path | None = None
    token: str | None = None
    max_age: int = 60
    max_body: int = 1_000_000
    reload_seconds: float = 0.25

    @classmethod
    def from_env(cls) -> "ServeSettings":
        store = os.environ.get(_ENV["store"])
        return cls(
            model=Path(os.environ[_ENV["model"]]),
            store=Path(store) if store else None,
            token=os.environ.get(TOKEN_VARIABLE) or None,
            max_age=int(os.environ.get(_ENV["max_age"], "60")),
        )

    def to_env(self) -> dict[str, str]:
        env = {_ENV["model"]: str(self.model), _ENV["max_age"]: str(self.max_age)}
        if self.store is not None:
            env[_ENV["store"]] = str(self.store)
        return env


def token_warning(settings: ServeSettings) -> str | None:
    """What to tell the operator at start when the write token is short enough to guess; ``None`` if it is
    not (or writes are off)."""
    token = settings.token
    if token is None or len(token) >= MIN_TOKEN_LENGTH:
        return None
    return (
        f"{TOKEN_VARIABLE} has {len(token)} characters: use {MIN_TOKEN_LENGTH} or more random ones, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
    )


Stamp = tuple[tuple[int, int, int] | None, ...]


@dataclass(frozen=True)
class Snapshot:
    """One consistent view: a model, its store (``store_meta`` ``None`` when there is none, or it is not
    at the model's fit and update), the sections the model knows, and an ETag naming all of it."""

    model: Recommender
    sha256: str
    store: RelatedStore | None
    store_meta: StoreMeta | None
    sections: frozenset[str]
    stamp: Stamp
    etag: str
    # The store's lists this snapshot names: a read finding others (rewritten since) is answered by the model.
    store_key: ListsKey | None = None
    # When one of the rules in force expires: the snapshot is made again then (lists and ETag change).
    rules_valid_until: float = math.inf


@dataclass(frozen=True, slots=True)
class Query:
    """A lookup's options, as a request gives them."""

    k: int = 5
    section: str | None = None
    exclude: tuple[str, ...] = ()
    after: str | None = None
    before: str | None = None
    within_days: float | None = None
    newer: bool = True
    diversity: float = 0.0
    min_score: float = MIN_SCORE
    min_results: int = MIN_RESULTS
    explain: bool = False

    def options(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "exclude": self.exclude,
            "after": self.after,
            "before": self.before,
            "newer": self.newer,
            "diversity": self.diversity,
            "min_score": self.min_score,
            "min_results": self.min_results,
            "explain": self.explain,
        }


def _stamp_of(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Service:
    """The model and store one worker process serves, reloaded when their files change."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.snapshot: Snapshot | None = None
        self._writing = threading.Lock()
        self._updater: Updater | None = None
        self._journal = JournalReader(settings.model)

    def stamp(self) -> Stamp:
        """Which files are on disk now: the manifest, the overlay of updates, the store, the rules."""
        model = self.settings.model
        return (
            _stamp_of(manifest_path(model)),
            _stamp_of(overlay_path(model)),
            _stamp_of(self.settings.store),
            _stamp_of(rules_path(model)),
        )

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
        sections = frozenset(s for s in state.articles.sections.to_list() if s is not None)
        key_of_lists = None if meta is None else meta.lists_key()
        self.snapshot = Snapshot(
            model, sha256, store, meta, sections, stamp, etag, key_of_lists, rules_valid_until=rules.valid_until
        )

    def current(self) -> Snapshot:
        snapshot = self.snapshot
        if snapshot is None:
            raise ModelError(f"no model loaded from {self.settings.model} yet: train one with `recommender train`")
        return snapshot

    def lookup(self, snapshot: Snapshot, article_id: str, query: Query) -> tuple[list[Related], str]:
        """``article_id``'s list and where it came from: "store" when the store holds it as asked, else "model"."""
        self._check_section(snapshot, query.section)
        meta, key = snapshot.store_meta, snapshot.store_key
        if snapshot.store is not None and meta is not None and key is not None and self.store_can_answer(meta, query):
            try:
                stored = snapshot.store.related_as_of(article_id, check_k(query.k), key)
            except StoreError:
                stored = None  # locked past its timeout, say: the model answers
            if stored is not None:  # else rewritten since the snapshot: until the next one, the model answers
                return stored, "store"
        return snapshot.model.related(article_id, query.k, within_days=query.within_days, **query.options()), "model"

    def draft(self, snapshot: Snapshot, title: str, body: str, published: str | None, query: Query) -> list[Related]:
        self._check_section(snapshot, query.section)
        return snapshot.model.related_to_text(title=title, body=body, k=query.k, published=published, **query.options())

    @staticmethod
    def store_can_answer(meta: StoreMeta, query: Query) -> bool:
        # The stored list is the model's list with the store's options, best first: its first k are the
        # answer when the request asks for no more than it holds, with the same options and no filter.
        plain = Query(
            k=query.k,
            newer=meta.newer,
            diversity=meta.diversity,
            min_score=meta.min_score,
            min_results=meta.min_results,
        )
        return isinstance(query.k, int) and 1 <= query.k <= meta.k and query == plain and meta.within_days is None

    @staticmethod
    def _check_section(snapshot: Snapshot, section: str | None) -> None:
        if section is not None and section not in snapshot.sections:
            known = ", ".join(sorted(snapshot.sections)[:10])
            raise InvalidParameterError(f"unknown section {section!r}: the model's sections include {known}")

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

    def related(self, article_id: str, k: int = 5) -> list[Related]:
        service = self.service
        return service.lookup(service.current(), article_id, Query(k=k, explain=True))[0]

    def draft(self, title: str, body: str, k: int = 5) -> list[Related]:
        service = self.service
        return service.draft(service.current(), title, body, None, Query(k=k, explain=True))

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


# --- the HTTP application ---------------------------------------------------------------------------

_STATUS = {
    UnknownArticleError: (404, "unknown_article"),
    InvalidParameterError: (422, "invalid_parameter"),
    ModelError: (503, "no_model"),
    StoreError: (503, "store_unavailable"),
}


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _status_of(exc: RecommenderError) -> tuple[int, str]:
    for kind, answer in _STATUS.items():
        if isinstance(exc, kind):
            return answer
    return (422, "invalid_request")


# The framework's own refusals (no such route, a method the route does not take, a body it cannot read).
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
# Bodies that are forms, not JSON (the editor's page sends them): their nesting is not checked.
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
# A JSON string (skipped whole: brackets inside it do not nest) or a bracket.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than ``limit`` levels deep, found without
    parsing it (a parser recurses once per level)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: the common case, at the cost of two counts
    depth = 0
    for token in _JSON_TOKENS.findall(raw):
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _without_body(send: Any) -> Any:
    """``send`` for a HEAD request: the response's start (status, headers, Content-Length) as a GET's, and an
    empty body."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return sending


DRAFTS_NICE = 10  # the drafts' thread's niceness above the server's: Linux schedules threads by it


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux: a thread is a task of its own); elsewhere, nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + DRAFTS_NICE)
    except (AttributeError, OSError):
        pass


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


def _results(results: list[Related], explain: bool) -> list[dict[str, Any]]:
    """Results as the API returns them: the same from the store and the model (the store keeps no raw
    similarity, so it is given only with ``explain``, which the model answers)."""
    if explain:
        return [r.to_dict() for r in results]
    # Built field by field, in to_dict's order: dataclasses.asdict costs more than the store's read.
    return [
        {
            "id": r.id,
            "title": r.title,
            "url": r.url,
            "published": r.published,
            "section": r.section,
            "score": round(r.score, 6),
        }
        for r in results
    ]


def create_app(settings: ServeSettings) -> Any:
    """The FastAPI application serving ``settings``."""
    try:
        from fastapi import Body, Header, Request
        from fastapi import Path as PathParam
        from fastapi import Query as QueryParam
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from fastapi_offline import FastAPIOffline
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        from pydantic import BaseModel, ConfigDict, ValidationError
        from starlette.convertors import PathConvertor, register_url_convertor
        from starlette.exceptions import HTTPException
    except ImportError:
        raise RecommenderError(f"`recommender serve` needs FastAPI, uvicorn and prometheus_client: {INSTALL}") from None

    class IdConvertor(PathConvertor):
        """An article id in a route's path: any text, "/" and line breaks too, so that every id
        recommender.corpus.check_id accepts has its routes, and one it refuses is told why (not a bare 404)."""

        regex = r"[\s\S]*"

    register_url_convertor("id", IdConvertor())  # the routes' "{article_id:id}"

    service = Service(settings)
    registry = CollectorRegistry()
    requests = Counter("recommender_requests", "HTTP requests", ["route", "status"], registry=registry)
    latency = Histogram(
        "recommender_request_seconds",
        "Time to answer a request",
        ["route"],
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    errors = Counter("recommender_errors", "Requests answered with an error", ["code"], registry=registry)
    reloads = Counter("recommender_reloads", "Model or store reloads", registry=registry)

    def reload_once() -> None:
        if service.refresh():
            reloads.inc()

    # One thread encodes drafts (the encoder takes one text at a time anyway), at a lower priority.
    drafts_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drafts", initializer=_lower_priority)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await asyncio.to_thread(reload_once)
        # The model's objects are long-lived: out of the collector's sight, collections stay short and
        # lookups are not held up by them.
        gc.freeze()

        async def watch() -> None:
            while True:
                await asyncio.sleep(settings.reload_seconds)
                try:
                    await asyncio.to_thread(reload_once)
                except Exception:
                    continue

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    # /docs and /redoc with their scripts and styles served from here (fastapi-offline ships them): no CDN,
    # so they work offline and on an intranet.
    app = FastAPIOffline(
        title="recommender",
        summary="Related articles for Indonesian news sites",
        lifespan=lifespan,
        static_url="/docs/static",
    )
    throttle = Throttle()  # wrong tokens per client address, the API's and the editor's logins alike

    def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Any:
        errors.labels(code).inc()
        return JSONResponse(_error_body(code, message), status_code=status, headers=headers)

    @app.exception_handler(RecommenderError)
    async def recommender_error(request: Request, exc: RecommenderError) -> Any:
        status, code = _status_of(exc)
        return error(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path"))
        return error(422, "invalid_parameter", f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        status, path = exc.status_code, request.url.path
        if status == 404:
            message = f"nothing at {path}: the API is described at /docs"
        elif status == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{path} does not take {request.method}; it takes {allowed}"
        else:
            message = str(exc.detail)
        return error(status, _HTTP_CODES.get(status, "http_error"), message, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Any:
        return error(500, "internal", f"the server failed on this request ({type(exc).__name__}); see its log")

    stored_ok = requests.labels("/related/{article_id}", "200")
    stored_latency = latency.labels("/related/{article_id}")
    plain_query = Query()

    async def plain_lookup(scope: MutableMapping[str, Any], send: Any) -> bool:
        """Answer ``GET /related/{id}`` with no parameter but ``k`` from the store, without the framework's
        routing and validation (most of a request's time, against a tenth of a millisecond for the store).
        False, having sent nothing, for any other request, and for any error: the full route answers those.
        The answer is the full route's, byte for byte (tested)."""
        path: str = scope["path"]
        if not path.startswith("/related/") or path.endswith(".html") or path.count("/") != 2:
            return False
        query = scope["query_string"]
        k = plain_query.k
        if query:
            name, _, value = query.partition(b"=")
            if name != b"k" or not value.isdigit() or b"&" in value:
                return False
            k = int(value)
        snapshot = service.snapshot
        if snapshot is None or snapshot.store is None or snapshot.store_meta is None or snapshot.store_key is None:
            return False
        if not service.store_can_answer(snapshot.store_meta, replace(plain_query, k=k)):
            return False
        article_id = path[len("/related/") :].strip()  # the server has decoded the path already
        try:
            results = snapshot.store.related_as_of(article_id, k, snapshot.store_key)
        except RecommenderError:
            return False
        if results is None:  # the store was rewritten after this snapshot was made
            return False
        headers = [
            (b"etag", snapshot.etag.encode()),
            (b"cache-control", f"public, max-age={settings.max_age}".encode()),
            (b"x-recommender-source", b"store"),
        ]
        for name, value in scope["headers"]:
            if name == b"if-none-match" and snapshot.etag.encode() in value:
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return True
        body = json.dumps(
            {"id": article_id, "related": _results(results, False)},
            ensure_ascii=False,
            allow_nan=False,
            indent=None,
            separators=(",", ":"),
        ).encode("utf-8")
        headers += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    draft_ok = requests.labels("/related", "200")
    draft_latency = latency.labels("/related")

    async def read_body(receive: Any) -> tuple[bytes | None, Any]:
        """The request's body, read in full up to the size limit (one byte past it when too large), and a
        ``receive`` that replays it to the framework; ``None`` if the client left before sending it all."""
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, receive  # the client left: the framework deals with it
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > settings.max_body or not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        return raw, replay

    async def too_large(scope: MutableMapping[str, Any], receive: Any, send: Any, size: int | None) -> None:
        told = f"{size:,} bytes" if size is not None else f"more than {settings.max_body:,} bytes"
        await refuse(
            scope, receive, send, 413, "too_large", f"the request body has {told}; at most {settings.max_body:,}"
        )

    async def drafted(title: str, text: str, published: str | None, query: Query) -> list[Related]:
        """A draft's list. A model with vectors encodes the draft first (about 0.1 s of CPU): on the drafts'
        thread, at a lower CPU priority, so that lookups by id go on meanwhile at their pace (the encoder
        releases the GIL, and drafts are an editor's tool: they wait for the CPU, readers do not)."""
        snapshot = service.current()
        if snapshot.model.vectors_ is None:
            return service.draft(snapshot, title, text, published, query)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            drafts_thread, functools.partial(service.draft, snapshot, title, text, published, query)
        )

    async def draft_lookup(raw: bytes, scope: MutableMapping[str, Any], receive: Any, send: Any) -> bool:
        """Answer ``POST /related`` (its body ``raw``) without the framework, as the full route does; False,
        having sent nothing, for a body the route refuses: the full route answers those."""
        try:
            title, text, published, query = draft_of(raw)
        except InvalidParameterError:
            return False
        try:
            results = await drafted(title, text, published, query)
        except RecommenderError as exc:
            status, code = _status_of(exc)
            await error(status, code, str(exc))(scope, receive, send)
            requests.labels("/related", str(status)).inc()
            return True
        answer = json.dumps(
            {"related": _results(results, query.explain)},
            ensure_ascii=False,
            allow_nan=False,
            indent=None,
            separators=(",", ":"),
        ).encode("utf-8")
        headers = [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        draft_ok.inc()
        return True

    async def refuse(
        scope: MutableMapping[str, Any], receive: Any, send: Any, status: int, code: str, message: str
    ) -> None:
        """An error answered before any route (the body too large or too deep)."""
        await error(status, code, message)(scope, receive, send)
        requests.labels("other", str(status)).inc()

    class Metrics:
        """Counts and times every request (a plain ASGI wrapper: no per-request task, unlike middleware), and
        checks every body before a route reads it."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            started = time.perf_counter()
            if scope["method"] == "HEAD":  # every GET route answers HEAD: as GET, without the body
                scope = {**scope, "method": "GET"}
                send = _without_body(send)
            if scope["method"] == "GET" and await plain_lookup(scope, send):
                stored_ok.inc()
                stored_latency.observe(time.perf_counter() - started)
                return
            status = 500
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > settings.max_body:
                await too_large(scope, receive, send, int(length))
                return
            if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                # Read here, before any route takes it: a chunked body's size is known only once read, and a
                # JSON body's nesting is checked before a parser recurses into it.
                raw, receive = await read_body(receive)
                if raw is not None:
                    if len(raw) > settings.max_body:
                        await too_large(scope, receive, send, None)
                        return
                    form = headers.get(b"content-type", b"").startswith(_FORMS)
                    if not form and _too_deep(raw):
                        message = f"the JSON body nests more than {MAX_DEPTH} levels deep"
                        await refuse(scope, receive, send, 422, "invalid_parameter", message)
                        return
                    if scope["method"] == "POST" and scope["path"] == "/related":
                        if await draft_lookup(raw, scope, receive, send):
                            draft_latency.observe(time.perf_counter() - started)
                            return

            async def sending(message: MutableMapping[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.inner(scope, receive, sending)
            finally:
                # The route's path as written ("/related/{article_id}", whatever its converter).
                route = getattr(scope.get("route"), "path_format", "other")
                requests.labels(route, str(status)).inc()
                latency.labels(route).observe(time.perf_counter() - started)

    def cached(request: Request, snapshot: Snapshot, make: Callable[[], Any]) -> Any:
        headers = {"ETag": snapshot.etag, "Cache-Control": f"public, max-age={settings.max_age}"}
        if snapshot.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        response = make()
        response.headers.update(headers)
        return response

    def query_of(
        k: int,
        section: str | None,
        exclude: list[str] | None,
        after: str | None,
        before: str | None,
        within_days: float | None,
        no_newer: bool,
        min_score: float,
        min_results: int,
        diversity: float,
        explain: bool,
    ) -> Query:
        return Query(
            k, section, tuple(exclude or ()), after, before, within_days, not no_newer, diversity, min_score,
            min_results, explain,
        )  # fmt: skip

    async def by_id(request: Request, article_id: str, query: Query, html: bool) -> Any:
        snapshot = service.current()
        results, source = service.lookup(snapshot, article_id, query)

        def make() -> Any:
            if html:
                return HTMLResponse(render_related(results))
            return JSONResponse({"id": article_id.strip(), "related": _results(results, query.explain)})

        response = cached(request, snapshot, make)
        response.headers["X-Recommender-Source"] = source
        return response

    # The .html route first: "/related/{id}" would take "x.html" as an id (no id ends in .html: check_id).
    @app.get("/related/{article_id:id}.html", response_class=HTMLResponse, summary="An article's box as HTML")
    async def related_html(
        request: Request,
        article_id: str = PathParam(description="An article id in the model"),
        k: int = 5,
        section: str | None = None,
        exclude: list[str] | None = QueryParam(None),
        after: str | None = None,
        before: str | None = None,
        within_days: float | None = None,
        no_newer: bool = False,
        min_score: float = MIN_SCORE,
        min_results: int = MIN_RESULTS,
        diversity: float = 0.0,
    ) -> Any:
        query = query_of(
            k, section, exclude, after, before, within_days, no_newer, min_score, min_results, diversity, False
        )
        return await by_id(request, article_id, query, html=True)

    @app.get("/related/{article_id:id}", summary="An article's related list, as `recommender related --json`")
    async def related(
        request: Request,
        article_id: str = PathParam(description="An article id in the model"),
        k: int = QueryParam(5, description="How many (1 to 1,000)"),
        section: str | None = QueryParam(None, description="Only this section"),
        exclude: list[str] | None = QueryParam(None, description="Leave out these ids (repeatable)"),
        after: str | None = QueryParam(None, description="Published on or after this ISO date"),
        before: str | None = QueryParam(None, description="Published on or before this ISO date"),
        within_days: float | None = QueryParam(None, description="Within this many days of the article"),
        no_newer: bool = QueryParam(False, description="None published after the article"),
        min_score: float = QueryParam(MIN_SCORE, description="Drop results scoring below this"),
        min_results: int = QueryParam(MIN_RESULTS, description="... unless fewer than this would remain"),
        diversity: float = QueryParam(0.0, description="0 (relevance) to 1 (variety)"),
        explain: bool = QueryParam(False, description="Each result's shared terms and similarity"),
    ) -> Any:
        query = query_of(
            k, section, exclude, after, before, within_days, no_newer, min_score, min_results, diversity, explain
        )
        return await by_id(request, article_id, query, html=False)

    class DraftBody(BaseModel):
        """``POST /related``'s body: a draft and its lookup's options, every field strictly typed (no string
        taken for a list, a number or a boolean), and no other field."""

        model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
        title: str = ""
        text: str = ""
        body: str = ""  # another name for text
        published: str | None = None
        k: int = 5
        section: str | None = None
        exclude: list[str] | None = None
        after: str | None = None
        before: str | None = None
        no_newer: bool = False
        min_score: float = MIN_SCORE
        min_results: int = MIN_RESULTS
        diversity: float = 0.0
        explain: bool = False

    draft_fields = ", ".join(sorted(DraftBody.model_fields))
    draft_schema = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": DraftBody.model_json_schema()}}}
    }

    def draft_of(raw: bytes) -> tuple[str, str, str | None, Query]:
        """A draft's title, text, date and lookup options from its JSON body; an InvalidParameterError names
        the first field that is wrong. The draft routes and their fast path read a body with it alike."""
        try:
            draft = DraftBody.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            if first["type"] == "extra_forbidden":
                raise InvalidParameterError(f"unknown field {where!r}: the fields are {draft_fields}") from None
            if first["type"] == "model_type":
                raise InvalidParameterError("send a JSON object with the draft's title and text") from None
            raise InvalidParameterError(f"{where}: {first['msg']}" if where else first["msg"]) from None
        for name in ("published", "after", "before"):
            value = getattr(draft, name)
            if value is not None:
                try:
                    parse_published(value)
                except ValueError as exc:
                    problem = str(exc).replace(" in 'published'", "")  # named here, as the field it is
                    raise InvalidParameterError(f"{name}: {problem}") from None
        query = Query(
            k=draft.k,
            section=draft.section,
            exclude=tuple(draft.exclude or ()),
            after=draft.after,
            before=draft.before,
            newer=not draft.no_newer,
            diversity=draft.diversity,
            min_score=draft.min_score,
            min_results=draft.min_results,
            explain=draft.explain,
        )
        text = draft.text if "text" in draft.model_fields_set else draft.body
        return draft.title, text, draft.published, query

    @app.post(
        "/related",
        summary="A draft's related list (title, text, published, k and the filters)",
        openapi_extra=draft_schema,
    )
    async def related_draft(request: Request) -> Any:
        title, text, published, query = draft_of(await request.body())
        results = await drafted(title, text, published, query)
        return JSONResponse({"related": _results(results, query.explain)})

    @app.post("/related.html", response_class=HTMLResponse, summary="A draft's box as HTML", openapi_extra=draft_schema)
    async def related_draft_html(request: Request) -> Any:
        title, text, published, query = draft_of(await request.body())
        return HTMLResponse(render_related(await drafted(title, text, published, query)))

    def authorize(request: Request, authorization: str | None) -> None:
        if settings.token is None:
            raise _Refused(403, "writes_disabled", f"writes are off: start the server with {TOKEN_VARIABLE} set")
        address = request.client.host if request.client else ""
        wait = throttle.wait(address)
        if wait:  # too many wrong tokens from there: even the right one waits (no guess gets through)
            raise _Refused(
                429,
                "rate_limited",
                f"too many wrong tokens from {address}: try again in {wait} s",
                {"Retry-After": str(wait)},
            )
        if not authorization or not authorization.startswith("Bearer "):
            raise _Refused(401, "unauthorized", "send the write token as `Authorization: Bearer <token>`")
        if not _same(authorization[len("Bearer ") :], settings.token):
            throttle.failed(address)
            raise _Refused(403, "forbidden", "the token is not the server's write token")

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Any:
        return error(exc.status, exc.code, exc.message, exc.headers)

    async def write(articles: list[Any], remove: list[str]) -> Any:
        result = await asyncio.to_thread(service.update, articles, remove)
        reloads.inc()
        return JSONResponse(result)

    @app.put("/articles/{article_id:id}", summary="Add or edit one article (token required)")
    async def put_article(
        request: Request,
        article_id: str,
        body: dict[str, Any] = Body(...),
        authorization: str | None = Header(None),
    ) -> Any:
        authorize(request, authorization)
        if "id" in body and str(body["id"]).strip() != article_id.strip():
            raise InvalidParameterError(f"the body's id {body['id']!r} is not the path's {article_id!r}")
        return await write([{**body, "id": article_id}], [])

    @app.post("/articles", summary="Add or edit a batch of articles (token required)")
    async def post_articles(request: Request, body: Any = Body(...), authorization: str | None = Header(None)) -> Any:
        authorize(request, authorization)
        articles = body.get("articles") if isinstance(body, dict) else body
        if not isinstance(articles, list) or not articles:
            raise InvalidParameterError('send a JSON list of articles, or {"articles": [...]}, with at least one')
        return await write(articles, [])

    @app.delete("/articles/{article_id:id}", summary="Remove an article (token required)")
    async def delete_article(request: Request, article_id: str, authorization: str | None = Header(None)) -> Any:
        authorize(request, authorization)
        return await write([], [article_id])

    @app.get("/rules", summary="The editors' rules, in force and expired (token required)")
    async def get_rules(request: Request, authorization: str | None = Header(None)) -> Any:
        authorize(request, authorization)
        return JSONResponse(await asyncio.to_thread(service.rules))

    @app.post("/rules", status_code=201, summary="Add a pin or block (token required)")
    async def post_rule(request: Request, body: Any = Body(...), authorization: str | None = Header(None)) -> Any:
        authorize(request, authorization)
        result = await asyncio.to_thread(service.add_rule, body)
        reloads.inc()
        return JSONResponse(result, status_code=201)

    @app.delete("/rules/{rule_id}", summary="Remove a rule: unpin, unblock (token required)")
    async def delete_rule(request: Request, rule_id: int, authorization: str | None = Header(None)) -> Any:
        authorize(request, authorization)
        result = await asyncio.to_thread(service.remove_rule, rule_id)
        reloads.inc()
        return JSONResponse(result)

    @app.get("/health", summary="The model and store being served")
    async def health() -> Any:
        snapshot = service.snapshot
        if snapshot is None:
            return error(503, "no_model", f"no model loaded from {settings.model} yet")
        state = snapshot.model.fitted_state()
        meta = snapshot.store_meta
        return JSONResponse(
            {
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
        )

    shared = os.environ.get(METRICS_VARIABLE)  # several workers: each writes its values there

    @app.get("/metrics", summary="Prometheus metrics (of all the server's workers)")
    async def metrics() -> Any:
        if shared:
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker, path=shared)
            return Response(generate_latest(every_worker), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    mount_editor(app, EditorBackend(service), throttle)  # the editors' page at /
    app.state.service = service
    return Metrics(app)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _same(given: str, token: str) -> bool:
    import hmac

    return hmac.compare_digest(given.encode(), token.encode())


def create_app_from_env() -> Any:
    """The application for one of uvicorn's worker processes (settings from the environment)."""
    return create_app(ServeSettings.from_env())


def run(
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until interrupted: one process, or ``workers`` processes sharing the port. ``on_ready`` is
    called once the server listens (one worker: its model loaded too), so that "serving" is said only then.

    A store that does not exist yet is no error: lookups are answered by the model, and the store is used
    from the moment ``recommender precompute`` writes it."""
    try:
        import uvicorn
        from uvicorn.supervisors import Multiprocess
    except ImportError:
        raise RecommenderError(f"`recommender serve` needs uvicorn: {INSTALL}") from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidParameterError(f"workers must be a whole number of 1 or more, got {workers!r}")
    if not manifest_path(settings.model).is_file():
        raise ModelError(f"no model at {settings.model}: train one first with `recommender train`")
    if settings.store is not None and settings.store.exists() and not settings.store.is_file():
        raise InvalidParameterError(f"the store {settings.store} is not a file")
    common: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False}

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                on_ready()

    def serve(config: Any) -> None:
        try:
            if workers == 1:
                server = Announcing(config)
                server.run()
                started = server.started
            else:
                sock = config.bind_socket()
                if on_ready is not None:
                    on_ready()
                Multiprocess(config, sockets=[sock]).run()
                started = True
        except KeyboardInterrupt:
            return
        except SystemExit:  # uvicorn's own exit when it cannot start, its reason logged just before
            started = False
        if not started:
            raise RecommenderError(f"could not serve on http://{host}:{port}: see the message above (port in use?)")

    if workers == 1:
        serve(uvicorn.Config(create_app(settings), **common))
        return
    factory = "recommender.serve:create_app_from_env"
    os.environ.update(settings.to_env())
    if os.environ.get(METRICS_VARIABLE):  # the operator's folder, for their own collector
        serve(uvicorn.Config(factory, factory=True, workers=workers, **common))
        return
    with tempfile.TemporaryDirectory(prefix="recommender-metrics-") as shared:
        os.environ[METRICS_VARIABLE] = shared  # each worker process inherits it before importing prometheus_client
        try:
            serve(uvicorn.Config(factory, factory=True, workers=workers, **common))
        finally:
            del os.environ[METRICS_VARIABLE]
