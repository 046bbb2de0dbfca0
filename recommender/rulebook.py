"""Where the editors' rules are kept: a SQLite file beside the model, ``<model>.rules.sqlite``.

The rules outlive every model file: ``train`` replaces the model, not its rules; ``precompute`` and the
server read them. Every SQL statement on rules lives in :class:`RuleBook`. Like the stores, the file uses
a rollback journal, so a reader needs read access only. Writers hold the model folder's lock (see
:class:`~recommender.Updater`), so ids are given in order and never reused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from ._sqlite import transaction
from .errors import InvalidParameterError, StoreError
from .rules import Rule, Rules

__all__ = ["RuleBook", "rules_path"]

_COLUMNS = tuple(f.name for f in fields(Rule) if f.name not in ("id", "created"))
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    {", ".join(f"{name} {'INTEGER' if name in ('position', 'both_ways') else 'TEXT'}" for name in _COLUMNS)}
);
"""


def rules_path(model: str | Path) -> Path:
    """The rules file of the model saved at ``model``: ``models/model.joblib`` → ``models/model.rules.sqlite``."""
    model = Path(model)
    return model.with_name(f"{model.stem}.rules.sqlite")


class RuleBook:
    """The rules stored for one model: read them, add one, remove one (each in one transaction)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of_model(cls, model: str | Path) -> RuleBook:
        return cls(rules_path(model))

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with transaction(self.path, write=write) as conn:
            if write:
                conn.execute(_SCHEMA)
            yield conn

    def rules(self) -> Rules:
        """Every stored rule, in force or expired, in the order they were added (none: no file yet)."""
        try:
            with self._connect(write=False) as conn:
                return _read(conn)
        except FileNotFoundError:
            return Rules()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the rules file {self.path}: {exc}") from None

    @contextmanager
    def change(
        self, *, add: Rule | None = None, remove: int | None = None, kind: str | None = None
    ) -> Iterator[tuple[Rules, Rule]]:
        """Remove rule ``remove`` and/or add ``add`` (checked already), in a transaction committed when the
        block ends without an error (the caller writes the lists the change rewrites inside it). Yields
        the rules as they will be and the rule added (with its id and creation time), else the one
        removed; :class:`InvalidParameterError` if there is no rule ``remove`` (of ``kind``, when given)."""
        try:
            with self._connect(write=True) as conn:
                changed: Rule | None = None
                if remove is not None:
                    found = {r.id: r for r in _read(conn).rules}
                    if remove not in found:
                        known = ", ".join(str(i) for i in sorted(i for i in found if i is not None)[:20]) or "none"
                        raise InvalidParameterError(f"no rule {remove}: the rules are {known} (`recommender rules`)")
                    changed = found[remove]
                    if kind is not None and changed.kind != kind:
                        command = "unpin" if changed.kind == "pin" else "unblock"
                        raise InvalidParameterError(
                            f"rule {remove} is a {changed.kind}, not a {kind}: use `recommender {command} {remove}`"
                        )
                    conn.execute("DELETE FROM rules WHERE id = ?", (remove,))
                if add is not None:
                    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
                    values = dict(zip((f.name for f in fields(Rule)), astuple(add), strict=True))
                    row = [int(values[name]) if name == "both_ways" else values[name] for name in _COLUMNS]
                    cursor = conn.execute(
                        f"INSERT INTO rules (created, {', '.join(_COLUMNS)}) VALUES (?{', ?' * len(_COLUMNS)})",
                        [created, *row],
                    )
                    changed = replace(add, id=cursor.lastrowid, created=created)
                if changed is None:
                    raise InvalidParameterError("give a rule to add or the number of one to remove")
                yield _read(conn), changed
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the rules file {self.path}: {exc}; nothing was changed") from None


def _read(conn: sqlite3.Connection) -> Rules:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'rules'").fetchone() is None:
        return Rules()
    out = []
    for rule_id, created, *values in conn.execute(
        f"SELECT id, created, {', '.join(_COLUMNS)} FROM rules ORDER BY id"
    ).fetchall():
        given = dict(zip(_COLUMNS, values, strict=True))
        given["both_ways"] = bool(given["both_ways"])
        given["note"] = given["note"] or ""
        out.append(Rule(id=int(rule_id), created=created, **given))
    return Rules(tuple(out))
