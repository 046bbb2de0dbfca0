"""One SQLite transaction on a small file the package keeps beside the model (the rules, the vectors)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["transaction"]


@contextmanager
def transaction(path: Path, *, write: bool, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection to ``path`` in rollback-journal mode, so that a reader needs read access only. With
    ``write``, one ``IMMEDIATE`` transaction, committed when the block ends and rolled back if it raises;
    without, :class:`FileNotFoundError` if there is no file (reading never creates one)."""
    if not write and not path.is_file():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        if write:
            conn.execute("BEGIN IMMEDIATE")
        yield conn
        if write:
            conn.execute("COMMIT")
    except BaseException:
        if write and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
