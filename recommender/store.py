"""Precomputed related lists: written in one batch job to JSON Lines, CSV or SQLite, read by a CMS.

Every format is replaced atomically: files through a temporary file and a rename, SQLite in one
transaction. A failed job leaves the previous output as it was.

SQLite stores use a rollback journal, not WAL: a WAL reader must be able to write the ``-shm`` file (or
create it in the directory), so a CMS with read access only (another OS user, a read-only mount) could not
open a WAL store. With a rollback journal a reader needs read access to the file and nothing else. A
writer keeps its changes in memory until COMMIT (``cache_spill`` off), so readers keep reading the old
lists during the whole job and wait (their busy timeout) only while the commit writes the file: they see
the old lists or the new, never a mix.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write
from .cluster import check_cluster_options, cluster_blocks
from .errors import StoreError, UnknownArticleError
from .model import Recommender, Related, StringColumn
from .neighbors import Block, Plan, ProgressCallback
from .ranking import check_k

__all__ = ["FORMATS", "PrecomputeResult", "RelatedStore", "check_output", "format_for", "precompute"]

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite"}
# Seconds a writer waits for another writer, for readers to finish before its COMMIT, and for a store an
# older version left in WAL mode to be free to convert.
LOCK_TIMEOUT = 30.0
# Seconds a RelatedStore read waits while a writer commits (the only time readers are locked out).
READ_TIMEOUT = 10.0

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
    section TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class PrecomputeResult:
    """What a precompute job wrote."""

    path: str
    format: str
    articles: int
    pairs: int
    k: int
    seconds: float
    mode: str = "exact"
    multiply_adds: int = 0
    recall: float | None = None  # approximate mode: estimated recall@k against exact lists


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


def _pairs(model: Recommender, blocks: Iterator[Block]) -> Iterator[tuple[int, list[tuple[int, float]]]]:
    for block in blocks:
        yield from row_lists(range(block.start, block.start + block.indices.shape[0]), block.indices, block.scores)


def row_lists(
    rows: Iterable[int], indices: np.ndarray, scores: np.ndarray
) -> Iterator[tuple[int, list[tuple[int, float]]]]:
    """Each of ``rows`` with its list from ``indices``/``scores`` (one row each, ``-1`` padded), as
    ``(related row, score)`` pairs."""
    for row, idx, values in zip(rows, indices.tolist(), scores.tolist(), strict=True):
        yield row, [(j, s) for j, s in zip(idx, values, strict=True) if j >= 0]


def precompute(
    model: Recommender,
    path: str | Path,
    k: int = 10,
    *,
    mode: str | Plan = "auto",
    progress: ProgressCallback | None = None,
    block_rows: int = 4096,
    recall_sample: int = 200,
    scheduler: Any = None,
    workers: int | None = None,
    **options: Any,
) -> PrecomputeResult:
    """Write every article's top-``k`` related list to ``path`` (format by suffix), replacing it atomically.

    ``mode``: "exact", "approx", or "auto" (exact up to a size, see :meth:`Recommender.plan_all_related`).
    In approximate mode the recall against exact lists is estimated on ``recall_sample`` articles first.
    ``options`` are :meth:`Recommender.all_related`'s (``newer``, ``within_days``, ``diversity``, ``min_score``,
    ``min_results``), recorded in a SQLite store's ``meta`` table.
    ``scheduler`` (a Dask scheduler's address, or a ``distributed.Client``) or ``workers`` (a local Dask
    cluster of that many processes) computes the lists on a cluster instead, identical (``recommender[dask]``).
    """
    path = Path(path)
    check_k(k)  # first: a mistyped k must not start a job sized by it
    kind = check_output(path)
    on_cluster = scheduler is not None or workers is not None
    if on_cluster:
        check_cluster_options(scheduler, workers)  # before the slow steps
    started = time.perf_counter()
    plan = mode if isinstance(mode, Plan) else model.plan_all_related(mode)
    recall = model.estimate_recall(k, mode=plan, sample=recall_sample, **options) if plan.approx else None
    blocks = iter(model.all_related(k, progress=progress, block_rows=block_rows, mode=plan, **options))
    if on_cluster:  # the same blocks (all_related above checked k and options) from Dask workers, once writing starts
        blocks = cluster_blocks(
            model, k, plan, scheduler=scheduler, workers=workers, block_rows=block_rows, progress=progress, **options
        )
    ids = model.ids_.to_list()
    # What an incremental update needs to recompute lists as this job did.
    ranking = model._options(**options)
    meta = {
        "k": str(k),
        "mode": plan.mode,
        "newer": "1" if ranking.newer else "0",
        "within_days": "" if ranking.within_days is None else repr(ranking.within_days),
        "diversity": repr(ranking.diversity),
        "min_score": repr(ranking.min_score),
        "min_results": str(ranking.min_results),
        "model_generation": str(model.updates_["generation"]),
    }
    if recall is not None:
        meta["recall_estimate"] = f"{recall:.4f}"
    writer = {"jsonl": _write_jsonl, "csv": _write_csv, "sqlite": _write_sqlite}[kind]
    try:
        pairs = writer(model, path, ids, _pairs(model, blocks), meta)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    except sqlite3.OperationalError as exc:  # locked for too long, disk full, ...
        if is_busy(exc):
            raise StoreError(f"{locked(path)}: nothing was changed; try again") from None
        raise StoreError(f"cannot write {path}: {exc}") from None
    finally:
        if isinstance(blocks, Generator):
            blocks.close()  # now, not at garbage collection: a failed job shuts its Dask cluster down at once
    seconds = time.perf_counter() - started
    return PrecomputeResult(str(path), kind, len(ids), pairs, k, seconds, plan.mode, plan.multiply_adds, recall)


def _write_jsonl(model: Recommender, path: Path, ids: list[Any], rows: Iterator[Any], meta: dict[str, str]) -> int:
    titles, urls, published = model.titles_.to_list(), model.urls_.to_list(), model.published_.to_list()
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", encoding="utf-8") as out:
            for row, neighbours in rows:
                related = [
                    {"id": ids[j], "title": titles[j], "url": urls[j], "published": published[j], "score": round(s, 6)}
                    for j, s in neighbours
                ]
                count += len(related)
                out.write(json.dumps({"id": ids[row], "related": related}, ensure_ascii=False) + "\n")

    atomic_write(path, write, make_parents=False)
    return count


def _write_csv(model: Recommender, path: Path, ids: list[Any], rows: Iterator[Any], meta: dict[str, str]) -> int:
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "rank", "related_id", "score"])
            for row, neighbours in rows:
                for rank, (j, s) in enumerate(neighbours, start=1):
                    writer.writerow([ids[row], rank, ids[j], f"{s:.6f}"])
                    count += 1

    atomic_write(path, write, make_parents=False)
    return count


def connect_for_writing(path: Path) -> sqlite3.Connection:
    """A writer's connection to the SQLite store at ``path``: rollback journal, changes kept in memory
    until COMMIT (see the module's docstring). A store left in WAL mode by an older version is converted."""
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
    return conn


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


def _create_readable(path: Path) -> None:
    """Create an empty store at ``path`` with the mode any new file gets (0666 less the umask: SQLite's own
    is 0644 less it); SQLite gives its journal the same mode. An existing store keeps its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    os.close(fd)


def insert_articles(conn: sqlite3.Connection, model: Recommender, rows: np.ndarray) -> None:
    """Insert (or replace) the stored fields of ``model``'s ``rows`` into the store's ``articles``."""
    fields = [model.ids_, model.titles_, model.urls_, model.published_, model.sections_]
    if rows.size == len(model):  # every row: decode each column in one go
        values = zip(*(f.to_list() for f in fields), strict=True)
    else:
        values = ((*(f[int(r)] for f in fields),) for r in rows)  # type: ignore[assignment]
    conn.executemany(
        "INSERT OR REPLACE INTO articles (id, title, url, published, section) VALUES (?, ?, ?, ?, ?)", values
    )


def insert_related(
    conn: sqlite3.Connection, ids: list[Any] | StringColumn, lists: Iterator[tuple[int, list[tuple[int, float]]]]
) -> int:
    """Insert ``lists`` (rows with their ``(related row, score)`` pairs) into ``related``, rows named by
    ``ids``; returns the pairs inserted."""
    count = 0

    def pairs() -> Iterator[tuple[str | None, int, str | None, float]]:
        nonlocal count
        for row, neighbours in lists:
            own = ids[row]
            for rank, (j, s) in enumerate(neighbours, start=1):
                count += 1
                yield own, rank, ids[j], s

    conn.executemany("INSERT INTO related (article_id, rank, related_id, score) VALUES (?, ?, ?, ?)", pairs())
    return count


def _write_sqlite(model: Recommender, path: Path, ids: list[Any], rows: Iterator[Any], meta: dict[str, str]) -> int:
    _create_readable(path)
    conn = connect_for_writing(path)
    try:
        # One transaction: readers keep seeing the old lists until COMMIT; a crash rolls back to them.
        conn.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        conn.execute("DELETE FROM related")
        conn.execute("DELETE FROM articles")
        insert_articles(conn, model, np.arange(len(ids)))
        count = insert_related(conn, ids, rows)
        stored = {
            **meta,
            "articles": str(len(ids)),
            "model_created_at": str(model.fitted_at_),
            "corpus_checksum": str(model.corpus_["checksum"]),
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        conn.execute("DELETE FROM meta")  # no figure of an earlier run (a recall estimate) may linger
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", stored.items())
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return count


# What SQLite says when a reader without write access opens a WAL store it cannot set up.
_WAL_NEEDS_WRITE_ACCESS = {
    "SQLITE_READONLY_DIRECTORY",
    "SQLITE_READONLY_CANTINIT",
    "SQLITE_READONLY_CANTLOCK",
    "SQLITE_READONLY_RECOVERY",
}


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

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self._uri, uri=True, timeout=READ_TIMEOUT, check_same_thread=False)
            except sqlite3.Error as exc:  # removed since, say
                raise StoreError(f"cannot open {self.path}: {exc}") from None
            try:
                conn.execute("SELECT 1 FROM related LIMIT 1")
            except sqlite3.DatabaseError as exc:
                conn.close()
                if isinstance(exc, sqlite3.OperationalError):
                    raise self._read_error(exc, f"{self.path} is not a recommender store: {exc}") from None
                raise StoreError(f"{self.path} is not a recommender store: {exc}") from None
            self._local.conn = conn
        return conn

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
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
        if k is not None:
            k = check_k(k)
        if isinstance(article_id, str):
            article_id = article_id.strip()
        rows = self._read(
            "SELECT a.id, a.title, a.url, a.published, a.section, r.score FROM related r "
            "JOIN articles a ON a.id = r.related_id WHERE r.article_id = ? ORDER BY r.rank LIMIT ?",
            (article_id, -1 if k is None else int(k)),
        )
        if not rows and not self._read("SELECT 1 FROM articles WHERE id = ?", (article_id,)):
            raise UnknownArticleError(article_id)
        return [Related(*row) for row in rows]

    def meta(self) -> dict[str, str]:
        """The job's facts: k, article count, model and write times."""
        return dict(self._read("SELECT key, value FROM meta"))
