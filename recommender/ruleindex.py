"""A state's rules in force, over its rows: what lookups, the batch job and updates apply.

Built once per state (:func:`rule_index`) and again only when a rule expires, so a lookup pays for a
mask, not for matching fields. Blocks become masks the search kernel reads (a blocked article never
takes a candidate's place, so a list keeps its length); pins are placed after the list is chosen.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidParameterError
from .rules import Rule, Rules, rules_key, title_pattern
from .state import TAG_SEPARATOR, FittedState

__all__ = ["RuleIndex", "compile_rules", "rule_index"]

Pin = tuple[int, int, int]  # (pinned row, position, rule id)


@dataclass(frozen=True)
class RuleIndex:
    """Rules in force over ``n`` rows. ``blocked``: rows out of every list (``None``: none), and
    ``blocked_by`` the rule that blocks each; ``pairs``: per list row, the rows blocked under it (and by
    which rule); ``conditional``: (rows a field block applies under, the rows it blocks, rule id, the
    title pattern it applies under or ``None``); ``pins``: per list row, its pins in order;
    ``valid_until``: when a rule expires (the index is rebuilt then); ``in_force``: the rules, and ``key``
    their name."""

    n: int
    key: str
    valid_until: float = math.inf
    in_force: tuple[Rule, ...] = ()
    blocked: np.ndarray | None = None
    blocked_by: dict[int, int] = field(default_factory=dict)
    pairs: dict[int, dict[int, int]] = field(default_factory=dict)
    conditional: tuple[tuple[np.ndarray, np.ndarray, int, str | None], ...] = ()
    pins: dict[int, tuple[Pin, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.blocked is not None or bool(self.pairs or self.conditional or self.pins)

    def special_rows(self) -> np.ndarray:
        """Rows whose list has rules of its own (pins, pair blocks, conditional blocks), sorted."""
        rows: set[int] = set(self.pairs) | set(self.pins)
        for under, _, _, _ in self.conditional:
            rows.update(np.flatnonzero(under).tolist())
        return np.array(sorted(rows), dtype=np.int64)

    def signature(self, row: int) -> tuple[object, ...]:
        """Rows with equal signatures search with the same mask (their pins aside)."""
        return (
            tuple(sorted(self.pairs.get(row, {}))),
            tuple(p for p, _, _ in self.pins.get(row, ())),
            tuple(i for i, (under, _, _, _) in enumerate(self.conditional) if under[row]),
        )

    def allowed(self, row: int | None, title: str | None = None) -> np.ndarray | None:
        """The rows the list of ``row`` may choose from (``None``: every row); its pinned rows are out too,
        as the pins place them. ``row`` ``None`` is a draft: blocks under a title pattern apply to it when
        its ``title`` matches."""
        out = None if self.blocked is None else ~self.blocked
        own: list[int] = []
        if row is not None:
            own = list(self.pairs.get(row, {})) + [p for p, _, _ in self.pins.get(row, ())]
        for under, rows, _, pattern in self.conditional:
            applies = under[row] if row is not None else pattern is not None and _search(pattern, title or "")
            if applies:
                out = ~rows if out is None else out & ~rows
        if own:
            out = np.ones(self.n, dtype=bool) if out is None else out.copy()
            out[own] = False
        return out

    def pins_of(self, row: int | None) -> tuple[Pin, ...]:
        """``row``'s pins that may show, in order: those no block keeps out (blocks win over pins)."""
        if row is None:
            return ()
        return tuple(p for p in self.pins.get(row, ()) if self.blocking_rule(row, p[0]) is None)

    def blocking_rule(self, row: int, candidate: int) -> int | None:
        """The rule that keeps ``candidate`` out of ``row``'s list (explanations, pins), or ``None``."""
        if candidate in self.blocked_by:
            return self.blocked_by[candidate]
        if candidate in self.pairs.get(row, {}):
            return self.pairs[row][candidate]
        for under, rows, rule_id, _ in self.conditional:
            if under[row] and rows[candidate]:
                return rule_id
        return None


def _search(pattern: str, text: str) -> bool:
    return _title_search(pattern)(text) is not None


@functools.lru_cache(maxsize=256)
def _title_search(pattern: str) -> Callable[[str], object]:
    """A title pattern's search. A pattern stored before title patterns had to suit RE2 (lookaround, a
    backreference) is matched by Python's re, as it was then: the lists it shaped stay as they are, and
    removing it finds them (:func:`compile_rules` warns that it should go)."""
    try:
        return title_pattern(pattern).search
    except InvalidParameterError:
        return re.compile(pattern, re.IGNORECASE).search


def _warn_if_slow(rule: Rule) -> None:
    """Warn that ``rule`` has a title pattern that RE2 refuses (see :func:`_title_search`), with how to fix it."""
    for name, value in ((rule.field, rule.value), (rule.under_field, rule.under_value)):
        if name != "title" or value is None:
            continue
        try:
            title_pattern(value)
        except InvalidParameterError as exc:
            warnings.warn(
                f"rule {rule.id}: {exc}. Stored before patterns were checked for this, it still applies but can "
                f"take seconds on some titles: remove it (`recommender unblock {rule.id}`) and block again "
                "with a pattern that passes",
                stacklevel=2,
            )


class _Latest:
    # The latest index of one state, replaced as one reference when a rule expires.
    def __init__(self) -> None:
        self.value: RuleIndex | None = None
        self.lock = threading.Lock()


def rule_index(state: FittedState, now: float | None = None) -> RuleIndex:
    """``state``'s rules in force at ``now`` over its rows, built on first use and again once one expires."""
    now = time.time() if now is None else now
    latest: _Latest = state.memo.get("rules", _Latest)
    value = latest.value
    if value is None or now >= value.valid_until:
        with latest.lock:
            value = latest.value
            if value is None or now >= value.valid_until:
                value = latest.value = compile_rules(state, state.rules, now)
    return value


def compile_rules(state: FittedState, rules: Rules, now: float) -> RuleIndex:
    """``rules`` in force at ``now`` over ``state``'s rows; a rule naming an article the state lacks (since
    removed) has nothing to act on."""
    n = len(state)
    in_force = rules.in_force(now)
    later = [t for t in (r.expires_at() for r in rules.rules) if t > now]
    valid_until = min(later) if later else math.inf
    key = rules_key(in_force)
    if not in_force:
        return RuleIndex(n, key, valid_until, in_force)
    rows = state.rows()
    blocked = np.zeros(n, dtype=bool)
    blocked_by: dict[int, int] = {}
    pairs: dict[int, dict[int, int]] = {}
    conditional = []
    pins: dict[int, list[tuple[int, int, int, int]]] = {}
    for order, rule in enumerate(in_force):
        rule_id = -1 if rule.id is None else rule.id
        a = None if rule.article is None else rows.get(rule.article)
        b = None if rule.related is None else rows.get(rule.related)
        if (rule.article is not None and a is None) or (rule.related is not None and b is None):
            continue
        _warn_if_slow(rule)
        if rule.kind == "pin" and a is not None and b is not None:
            pins.setdefault(a, []).append((b, rule.position or 1, rule_id, order))
        elif rule.field is not None:
            hits = matching(state, rule.field, rule.value or "")
            if rule.under_field is None:
                blocked_by.update((int(r), rule_id) for r in np.flatnonzero(hits & ~blocked))
                blocked |= hits
            else:
                under = matching(state, rule.under_field, rule.under_value or "")
                pattern = rule.under_value if rule.under_field == "title" else None
                conditional.append((under, hits, rule_id, pattern))
        elif b is not None and a is None:
            if not blocked[b]:
                blocked_by[b] = rule_id
            blocked[b] = True
        elif a is not None and b is not None:
            pairs.setdefault(a, {}).setdefault(b, rule_id)
            if rule.both_ways:
                pairs.setdefault(b, {}).setdefault(a, rule_id)
    ordered = {
        row: tuple((b, position, rule_id) for b, position, rule_id, _ in sorted(found, key=lambda p: (p[1], p[3])))
        for row, found in pins.items()
    }
    return RuleIndex(
        n,
        key,
        valid_until,
        in_force,
        blocked if blocked.any() else None,
        blocked_by,
        pairs,
        tuple(conditional),
        ordered,
    )


def matching(state: FittedState, name: str, value: str) -> np.ndarray:
    """Rows whose field ``name`` matches ``value`` (a title: the pattern found in it, as
    :func:`~recommender.rules.title_pattern` compiles it; a tag: one of the article's tags; else the value
    itself, case-insensitive)."""
    articles = state.articles
    if name == "title":
        search = _title_search(value)
        return np.array([search(t or "") is not None for t in articles.titles.to_list()], dtype=bool)
    wanted = value.strip().casefold()
    if name == "tag":
        return np.array(
            [wanted in {t.strip().casefold() for t in (v or "").split(TAG_SEPARATOR)} for v in articles.tags.to_list()],
            dtype=bool,
        )
    column = {"section": articles.sections, "source": articles.sources, "category": articles.categories}[name]
    return np.array([(v or "").strip().casefold() == wanted for v in column.to_list()], dtype=bool)
