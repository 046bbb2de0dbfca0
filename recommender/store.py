"""Stores of precomputed lists: the formats, and the one class that runs SQL on a SQLite store.

Every format is replaced atomically: files through a temporary file and a rename, SQLite in one
transaction. A failed job leaves the previous output as it was.

SQLite stores use a rollback journal, not WAL: a WAL reader must be able to write the ``-shm`` file (or
create it in the directory), so a CMS with read access only (another OS user, a read-only mount) could not
open a WAL store. With a rollback journal a reader needs read access to the file and nothing else. A
writer keeps its changes in memory until COMMIT (``cache_spill`` off), so readers keep reading the old
lists during the whole job and wait (their busy timeout) only while the commit writes the file: they see
the old lists or the new, never a mix.

Every SQL statement and every ``meta`` key lives here: :class:`SqliteStore` (one connection: the batch
job's and an update's writes, the reads) and :class:`StoreMeta` (what a store records of the job that
wrote it). :class:`RelatedStore` is the reader a CMS uses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import StoreError, UnknownArticleError
from .options import LookupOptions
from .ranking import RankingOptions, Related, check_k
from .rules import rules_from_json, rules_key
from .state import ArticleColumns, StringColumn

__all__ = [
    "FORMATS",
    "LISTS_KEY_ROWS",
    "LOCK_TIMEOUT",
    "READ_TIMEOUT",
    "ListsKey",
    "RelatedStore",
    "SqliteStore",
    "StoreMeta",
    "check_output",
    "format_for",
    "is_busy",
    "locked",
    "row_lists",
]

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite"}
# Seconds a writer waits for another writer, for readers to finish before its COMMIT, and for a store an
# older version left in WAL mode to be free to convert.
LOCK_TIMEOUT = 30.0
# Seconds a RelatedStore read waits while a writer commits (the only time readers are locked out).
READ_TIMEOUT = 10.0
_T = TypeVar("_T")
# What names a store's lists: the job that wrote them, the update they are at, the model's fit, the rules.
ListsKey = tuple[str | None, int, str | None, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS related (
    article_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    related_id TEXT NOT NULL,
    score REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS related_article_id ON related (article_id, rank);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    url TEXT,
    published TEXT,
    section TEXT,
    image TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# The articles table's columns, in the order of ArticleColumns.FIELDS.
_ARTICLE_COLUMNS = ", ".join(field for _, field in ArticleColumns.FIELDS)
_ARTICLE_VALUES = ", ".join("?" for _ in ArticleColumns.FIELDS)
# Columns added to the articles table since stores were first written: added to an older store by its next
# write; a reader of an older store reads them as NULL.
_ADDED_COLUMNS = ("image",)


@dataclass(frozen=True, slots=True)
class StoreMeta:
    """What a SQLite store records (its ``meta`` table) of the job that wrote it: enough for an update to
    recompute lists as that job did, and to tell whether the store still matches its model.

    Stored as text, one row per field, in this order; absent (``None``) fields are not stored. Stores
    written by older versions lack some: they read as the defaults those versions used.
    """

    k: int
    mode: str = "exact"
    newer: bool = True
    within_days: float | None = None
    diversity: float = 0.0
    min_score: float = 0.0
    min_results: int = 0
    model_generation: int = 0
    recall_estimate: float | None = None
    articles: int | None = None
    model_created_at: str | None = None
    corpus_checksum: str | None = None
    written_at: str | None = None
    updated_at: str | None = None
    rules: str | None = None  # the editors' rules the lists apply, as JSON (None: none)
    filters: str | None = None  # the filters the lists apply, as JSON (None: none)

    @classmethod
    def from_rows(cls, rows: dict[str, str]) -> StoreMeta:
        def number(key: str) -> float | None:
            return float(rows[key]) if rows.get(key) else None

        return cls(
            k=int(rows["k"]),
            mode=rows.get("mode", "exact"),
            newer=rows.get("newer", "1") == "1",
            within_days=number("within_days"),
            diversity=float(rows.get("diversity", "0")),
            min_score=float(rows.get("min_score", "0")),
            min_results=int(rows.get("min_results", "0")),
            model_generation=int(rows.get("model_generation", "0")),
            recall_estimate=number("recall_estimate"),
            articles=int(rows["articles"]) if rows.get("articles") else None,
            model_created_at=rows.get("model_created_at"),
            corpus_checksum=rows.get("corpus_checksum"),
            written_at=rows.get("written_at"),
            updated_at=rows.get("updated_at"),
            rules=rows.get("rules"),
            filters=rows.get("filters"),
        )

    def rows(self) -> dict[str, str]:
        """The fields as the ``meta`` table stores them."""
        text = {
            "k": str(self.k),
            "mode": self.mode,
            "newer": "1" if self.newer else "0",
            "within_days": "" if self.within_days is None else repr(self.within_days),
            "diversity": repr(self.diversity),
            "min_score": repr(self.min_score),
            "min_results": str(self.min_results),
            "model_generation": str(self.model_generation),
            "recall_estimate": None if self.recall_estimate is None else f"{self.recall_estimate:.4f}",
            "articles": None if self.articles is None else str(self.articles),
            "model_created_at": self.model_created_at,
            "corpus_checksum": self.corpus_checksum,
            "written_at": self.written_at,
            "updated_at": self.updated_at,
            "rules": self.rules,
            "rules_key": None if self.rules is None else self.rules_key,
            "filters": self.filters,
        }
        return {key: value for key, value in text.items() if value is not None}

    @classmethod
    def of_job(cls, k: int, mode: str, options: RankingOptions, model_generation: int) -> StoreMeta:
        """The meta of a job that computes ``k`` lists in ``mode`` with ``options``."""
        return cls(
            k=k,
            mode=mode,
            newer=options.newer,
            within_days=options.within_days,
            diversity=options.diversity,
            min_score=options.min_score,
            min_results=options.min_results,
            model_generation=model_generation,
            filters=json.dumps(options.only.to_dict(), ensure_ascii=False) if options.only.active else None,
        )

    def lookup_options(self) -> LookupOptions:
        """The options the store's lists were computed with (a model's :meth:`~recommender.Recommender.ranking_options`
        of them: the lists' ranking)."""
        only = {} if self.filters is None else json.loads(self.filters)
        return LookupOptions(
            **only,
            newer=self.newer,
            within_days=self.within_days,
            diversity=self.diversity,
            min_score=self.min_score,
            min_results=self.min_results,
        )

    @property
    def rules_key(self) -> str:
        """The name of the editors' rules the lists apply ("none": none; see :func:`~recommender.rules.rules_key`)."""
        return rules_key(rules_from_json(self.rules))

    def lists_key(self) -> ListsKey:
        """What identifies a store's lists: the job that wrote them, the update they are at, and the rules."""
        return (self.written_at, self.model_generation, self.model_created_at, self.rules_key)

    @staticmethod
    def lists_key_of(rows: Mapping[str, str]) -> ListsKey:
        """:meth:`lists_key` from the ``meta`` rows of :data:`LISTS_KEY_ROWS` alone."""
        return (
            rows.get("written_at"),
            int(rows.get("model_generation", "0")),
            rows.get("model_created_at"),
            rows.get("rules_key", "none"),
        )


LISTS_KEY_ROWS = ("written_at", "model_generation", "model_created_at", "rules_key")


def format_for(path: str | Path) -> str:
    """The store format chosen by ``path``'s suffix, or :class:`StoreError` listing the choices."""
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise StoreError(f"cannot tell the output format of {path}: use a path ending in .jsonl, .csv, .sqlite or .db")
    return kind


def check_output(path: str | Path) -> str:
    """The format of an output ``path`` (see :func:`format_for`), or :class:`StoreError` if its directory
    does not exist: a mistyped path should fail, not leave new directories behind."""
    kind = format_for(path)
    parent = Path(path).parent
    if not parent.is_dir():
        if parent.exists():
            raise StoreError(f"{parent} is not a directory: write the output into a directory")
        raise StoreError(f"directory {parent} does not exist: create it first")
    return kind


def row_lists(
    rows: Iterable[int], indices: np.ndarray, scores: np.ndarray
) -> Iterator[tuple[int, list[tuple[int, float]]]]:
    """Each of ``rows`` with its list from ``indices``/``scores`` (one row each, ``-1`` padded), as
    ``(related row, score)`` pairs."""
    for row, idx, values in zip(rows, indices.tolist(), scores.tolist(), strict=True):
        yield row, [(j, s) for j, s in zip(idx, values, strict=True) if j >= 0]


RowLists = Iterator[tuple[int, list[tuple[int, float]]]]


class SqliteStore:
    """One connection to a SQLite store, and every SQL statement run on one.

    :meth:`for_writing` (the batch job, an update) or :meth:`for_reading` (read-only: a reader needs read
    access to the file and nothing else). A writer's changes are made between :meth:`begin` and
    :meth:`commit` (or :meth:`rollback`): readers see the old lists or the new, never a mix.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._columns: frozenset[str] | None = None  # the articles table's, read on first use

    @classmethod
    def for_writing(cls, path: str | Path, *, create: bool = False) -> SqliteStore:
        """A writer's connection to the store at ``path`` (created, readable by all, when ``create``):
        rollback journal, changes kept in memory until COMMIT. A store left in WAL mode by an older version
        is converted."""
        path = Path(path)
        if create:
            _create_readable(path)
        try:
            conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None
        try:
            # Spilling changes into the file before COMMIT would take the exclusive lock and shut readers out
            # for the rest of the job; the price is memory for the changed pages (about the store's size).
            conn.execute("PRAGMA cache_spill=OFF")
            _use_rollback_journal(conn, path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path} is not a usable SQLite database: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def for_reading(cls, path: Path, uri: str) -> SqliteStore:
        """A read-only connection (``uri``: the store's ``file:`` URI with ``mode=ro``), usable from any
        thread; see :meth:`check_tables`."""
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=READ_TIMEOUT, check_same_thread=False)
        except sqlite3.Error as exc:  # removed since, say
            raise StoreError(f"cannot open {path}: {exc}") from None
        return cls(conn, path)

    def check_tables(self) -> None:
        """:class:`sqlite3.DatabaseError` unless the file is a store (SQLite's own error, for the caller to
        explain)."""
        self.conn.execute("SELECT 1 FROM related LIMIT 1")

    def close(self) -> None:
        self.conn.close()

    # -- transactions --

    def begin(self) -> None:
        """Start the write transaction (waiting up to :data:`LOCK_TIMEOUT` for another writer)."""
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        """Undo the open transaction, if any."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # -- writing --

    def create_tables(self) -> None:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self.conn.execute(statement)
        self.add_columns()

    def article_columns(self) -> frozenset[str]:
        """The columns of the store's articles table (an older store lacks those added since)."""
        if self._columns is None:
            self._columns = frozenset(row[1] for row in self.conn.execute("PRAGMA table_info(articles)"))
        return self._columns

    def add_columns(self) -> None:
        """Add to an older store's articles table the columns added since it was written (inside the
        writer's transaction)."""
        missing = [name for name in _ADDED_COLUMNS if name not in self.article_columns()]
        for name in missing:
            self.conn.execute(f"ALTER TABLE articles ADD COLUMN {name} TEXT")
        if missing:
            self._columns = None

    def clear(self) -> None:
        """Delete every list and article (the meta stays)."""
        self.conn.execute("DELETE FROM related")
        self.conn.execute("DELETE FROM articles")

    def insert_articles(self, articles: ArticleColumns, rows: np.ndarray | None = None) -> None:
        """Insert (or replace) the stored fields of ``rows`` (all when ``None``) into ``articles``."""
        self.add_columns()
        self.conn.executemany(
            f"INSERT OR REPLACE INTO articles ({_ARTICLE_COLUMNS}) VALUES ({_ARTICLE_VALUES})", articles.values(rows)
        )

    def delete_articles(self, ids: Iterable[str | None]) -> None:
        """Delete these articles and their own lists."""
        ids = list(ids)
        self.conn.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in ids))
        self.delete_lists(ids)

    def delete_lists(self, ids: Iterable[str | None]) -> None:
        """Delete the lists of these articles."""
        self.conn.executemany("DELETE FROM related WHERE article_id = ?", ((i,) for i in ids))

    def insert_lists(self, ids: list[Any] | StringColumn, lists: RowLists) -> int:
        """Insert ``lists`` (rows with their ``(related row, score)`` pairs), rows named by ``ids``; returns
        the pairs inserted."""
        count = 0

        def pairs() -> Iterator[tuple[str | None, int, str | None, float]]:
            nonlocal count
            for row, neighbours in lists:
                own = ids[row]
                for rank, (j, s) in enumerate(neighbours, start=1):
                    count += 1
                    yield own, rank, ids[j], s

        self.conn.executemany("INSERT INTO related (article_id, rank, related_id, score) VALUES (?, ?, ?, ?)", pairs())
        return count

    def write_meta(self, meta: StoreMeta) -> None:
        """Replace the whole meta table: no figure of an earlier run (a recall estimate) may linger."""
        self.conn.execute("DELETE FROM meta")
        self.conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.rows().items())

    def record_rules(self, rules: str, key: str, updated_at: str) -> None:
        """Record in the meta table that the lists now apply ``rules`` (JSON) named ``key``."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            {"rules": rules, "rules_key": key, "updated_at": updated_at}.items(),
        )

    def record_update(self, articles: int, model_generation: int, updated_at: str) -> None:
        """Record in the meta table that an update brought the store to ``model_generation``."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            {"articles": str(articles), "model_generation": str(model_generation), "updated_at": updated_at}.items(),
        )

    # -- reading --

    def meta_rows(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def meta(self) -> StoreMeta:
        return StoreMeta.from_rows(self.meta_rows())

    def all_pairs(self) -> list[tuple[str, int, str, float]]:
        """Every stored pair: ``(article id, rank, related id, score)``."""
        return self.conn.execute("SELECT article_id, rank, related_id, score FROM related").fetchall()

    def related(self, article_id: str, k: int | None) -> list[tuple[Any, ...]]:
        """The stored list of ``article_id`` with the related articles' fields, best first, at most ``k``:
        (id, title, url, published, section, score, image) each."""
        image = "a.image" if "image" in self.article_columns() else "NULL"
        return self.conn.execute(
            f"SELECT a.id, a.title, a.url, a.published, a.section, r.score, {image} FROM related r "
            "JOIN articles a ON a.id = r.related_id WHERE r.article_id = ? ORDER BY r.rank LIMIT ?",
            (article_id, -1 if k is None else int(k)),
        ).fetchall()

    def has_article(self, article_id: str) -> bool:
        return bool(self.conn.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchall())

    def related_with_key(self, article_id: str, k: int | None) -> tuple[ListsKey, list[tuple[Any, ...]], bool]:
        """In one read transaction: the key of the store's lists (:meth:`StoreMeta.lists_key`), the stored
        list of ``article_id`` (as :meth:`related`), and whether the store holds that article."""
        self.conn.execute("BEGIN")
        try:
            rows = self.conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?)", LISTS_KEY_ROWS)
            key = StoreMeta.lists_key_of(dict(rows.fetchall()))
            found = self.related(article_id, k)
            return key, found, bool(found) or self.has_article(article_id)
        finally:
            self.conn.execute("COMMIT")  # a read: ends the transaction, takes no lock


def _use_rollback_journal(conn: sqlite3.Connection, path: Path) -> None:
    """Put the store in rollback-journal mode (a no-op unless an older version left it in WAL mode).

    Leaving WAL mode needs the store to itself for a moment, and SQLite fails at once rather than wait
    for the other connections to close, so retry for up to ``LOCK_TIMEOUT``."""
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            if conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete":
                return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        if time.monotonic() >= deadline:
            raise StoreError(
                f"{path} is in WAL mode (written by an older recommender), which readers without write access "
                f"cannot open, and it stayed open elsewhere for {LOCK_TIMEOUT:g} s, so it could not be converted: "
                "stop the programs reading it for a moment (restart the CMS workers) and run this again"
            )
        time.sleep(0.05)


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection holds."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    return name.startswith("SQLITE_BUSY") if name else str(exc).startswith("database is locked")


def locked(path: Path) -> str:
    """The start of a message for a store that stayed locked past ``LOCK_TIMEOUT``."""
    return f"{path} stayed locked for {LOCK_TIMEOUT:g} s (by another writer, or a reader holding a transaction open)"


def _related(row: tuple[Any, ...]) -> Related:
    """A result from a row of :meth:`SqliteStore.related`."""
    article_id, title, url, published, section, score, image = row
    return Related(article_id, title, url, published, section, score, image=image)


def _create_readable(path: Path) -> None:
    """Create an empty store at ``path`` with the mode any new file gets (0666 less the umask: SQLite's own
    is 0644 less it); SQLite gives its journal the same mode. An existing store keeps its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    os.close(fd)


# What SQLite says when a reader without write access opens a WAL store it cannot set up.
_WAL_NEEDS_WRITE_ACCESS = {
    "SQLITE_READONLY_DIRECTORY",
    "SQLITE_READONLY_CANTINIT",
    "SQLITE_READONLY_CANTLOCK",
    "SQLITE_READONLY_RECOVERY",
}


def _asked(article_id: str, k: int | None) -> tuple[str, int | None]:
    """A reader's id as a corpus reads ids (surrounding whitespace ignored), and its ``k`` checked."""
    return (article_id.strip() if isinstance(article_id, str) else article_id), (None if k is None else check_k(k))


class RelatedStore:
    """Read precomputed lists from a SQLite store: what a CMS calls on every page view.

    Opens read-only (read access to the file is all it needs); safe to share between threads (one
    connection per thread).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"no store at {self.path}: write one with `recommender precompute --out {self.path}`")
        self._uri = f"{self.path.resolve().as_uri()}?mode=ro"
        self._local = threading.local()

    def connection(self) -> SqliteStore:
        """This thread's read-only connection to the store, opened on first use."""
        store: SqliteStore | None = getattr(self._local, "store", None)
        if store is None:
            store = SqliteStore.for_reading(self.path, self._uri)
            try:
                store.check_tables()
            except sqlite3.DatabaseError as exc:
                store.close()
                if isinstance(exc, sqlite3.OperationalError):
                    raise self._read_error(exc, f"{self.path} is not a recommender store: {exc}") from None
                raise StoreError(f"{self.path} is not a recommender store: {exc}") from None
            self._local.store = store
        return store

    def _read(self, read: Callable[[SqliteStore], _T]) -> _T:
        try:
            return read(self.connection())
        except sqlite3.OperationalError as exc:
            raise self._read_error(exc, f"cannot read {self.path}: {exc}") from None

    def _read_error(self, exc: sqlite3.OperationalError, otherwise: str) -> StoreError:
        """What a reader can do about ``exc``."""
        name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+; older ones get ``otherwise``
        if is_busy(exc):
            return StoreError(f"{self.path} stayed locked by a writer for {READ_TIMEOUT:g} s: try again")
        if name == "SQLITE_READONLY_ROLLBACK":
            return StoreError(
                f"{self.path} was left mid-commit by a writer that was killed (its journal {self.path.name}-journal "
                "is hot): a reader without write access cannot roll it back; the next `recommender add`, `remove` "
                "or `precompute` does, or opening it once with write access (`sqlite3 PATH 'SELECT 1'` as its owner)"
            )
        if name in _WAL_NEEDS_WRITE_ACCESS:
            return StoreError(
                f"{self.path} is in WAL mode (written by an older recommender), which needs write access to read: "
                "the next `recommender precompute`, `add` or `remove` converts it"
            )
        return StoreError(otherwise)

    def related(self, article_id: str, k: int | None = None) -> list[Related]:
        """The stored list of ``article_id`` (surrounding whitespace ignored, as when a corpus is read), best
        first, at most ``k`` (1 to :data:`~recommender.ranking.MAX_K`; ``None``: all stored)."""
        article_id, k = _asked(article_id, k)
        wanted = article_id
        rows = self._read(lambda store: store.related(wanted, k))
        if not rows and not self._read(lambda store: store.has_article(wanted)):
            raise UnknownArticleError(article_id)
        return [_related(row) for row in rows]

    def related_as_of(self, article_id: str, k: int | None, lists_key: ListsKey) -> list[Related] | None:
        """:meth:`related`, if the store's lists are still those named ``lists_key``
        (:meth:`StoreMeta.lists_key` of the meta its reader checked); ``None`` once another job or update
        has rewritten them: the reader's view of the store is out of date."""
        article_id, k = _asked(article_id, k)
        wanted = article_id
        key, rows, known = self._read(lambda store: store.related_with_key(wanted, k))
        if key != lists_key:
            return None
        if not known:
            raise UnknownArticleError(article_id)
        return [_related(row) for row in rows]

    def meta(self) -> dict[str, str]:
        """The job's facts: k, article count, model and write times."""
        return self._read(SqliteStore.meta_rows)
