"""Editors' rules: pins and blocks, checked against a model and compiled to what the kernels read.

A :class:`Rule` pins an article into another's list at a position, or blocks: one article under another
(a pair, optionally both ways), an article everywhere (takedowns), or every article whose field matches
(a section, source, category or tag value, or a title pattern), optionally only under articles matching
another field. Rules live in a :class:`~recommender.rulebook.RuleBook` next to the model; a state carries
them (:class:`Rules`), and :mod:`~recommender.ruleindex` turns those in force into row masks and pins
once per state: lookups, the batch job and updates all apply the same, so a stored list equals the list
a lookup gives.

Blocks win over pins: a pinned article that is blocked (a takedown, say) is not shown.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import timezone
from typing import Any, Protocol

import re2

from .corpus import check_id, parse_published
from .errors import InvalidParameterError, UnknownArticleError

__all__ = [
    "KINDS",
    "MATCH_FIELDS",
    "MAX_POSITION",
    "Rule",
    "Rules",
    "TitlePattern",
    "check_rule",
    "place_pins",
    "rule_from_dict",
    "rules_from_json",
    "rules_json",
    "rules_key",
    "title_pattern",
]

KINDS = ("pin", "block")
# The fields a block can match: a candidate's (or, with under_field, the list's article's).
MATCH_FIELDS = ("section", "source", "category", "tag", "title")
# A pin's last place: a list holds at most ranking.MAX_K articles (a pin further down is at its end anyway).
MAX_POSITION = 1000


@dataclass(frozen=True, slots=True)
class Rule:
    """One pin or block. ``article``: the list it applies to (``None``: every list); ``related``: the
    pinned or blocked article; ``position``: a pin's place (1: first); ``field``/``value``: a block of
    every article whose field matches (``title``: a regular expression, case-insensitive, see
    :func:`title_pattern`; other fields: the value, case-insensitive); ``under_field``/``under_value``:
    only under articles that match; ``both_ways``: a pair block that also blocks ``article`` under
    ``related``; ``until``: when it expires (ISO 8601; a plain date keeps that whole day, UTC; ``None``:
    never). ``id`` and ``created`` are given when it is stored."""

    kind: str
    article: str | None = None
    related: str | None = None
    position: int | None = None
    field: str | None = None
    value: str | None = None
    under_field: str | None = None
    under_value: str | None = None
    both_ways: bool = False
    until: str | None = None
    note: str = ""
    id: int | None = None
    created: str | None = None

    def expires_at(self) -> float:
        """When it stops being in force (seconds since the epoch; ``inf``: never)."""
        if self.until is None:
            return math.inf
        try:
            moment = parse_published(self.until)
        except ValueError:
            raise InvalidParameterError(f"until must be an ISO 8601 date or time, got {self.until!r}") from None
        end = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
        # "until 2026-12-31" keeps that whole day, as a plain date does in `before`.
        return end + 86_400 if re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.until.strip()) else end

    def in_force(self, now: float) -> bool:
        return self.expires_at() > now

    def describe(self) -> str:
        """The rule in a sentence, as `recommender rules` lists it."""
        where = f"under {self.article}" if self.article else "everywhere"
        if self.kind == "pin":
            text = f"pin {self.related} at position {self.position or 1} {where}"
        elif self.field is not None:
            match = f"{self.field} ~ /{self.value}/" if self.field == "title" else f"{self.field} = {self.value!r}"
            text = f"block every article with {match}"
            if self.under_field is not None:
                text += f" under articles with {self.under_field} = {self.under_value!r}"
        elif self.article is not None:
            text = f"block {self.related} under {self.article}" + (" (both ways)" if self.both_ways else "")
        else:
            text = f"block {self.related} everywhere"
        if self.until:
            text += f", until {self.until}"
        return text

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["description"] = self.describe()
        data["expired"] = not self.in_force(time.time() if now is None else now)
        return data


_RULE_FIELDS = {f.name for f in fields(Rule)}


def rule_from_dict(data: dict[str, Any]) -> Rule:
    """A rule from its JSON form (the API's, `rules --json`'s); unknown keys are an error."""
    if not isinstance(data, dict):
        raise InvalidParameterError("a rule is a JSON object with a 'kind' (pin or block)")
    given = {k: v for k, v in data.items() if k not in ("description", "expired")}
    unknown = sorted(set(given) - _RULE_FIELDS)
    if unknown:
        raise InvalidParameterError(f"unknown rule field(s): {', '.join(unknown)}")
    if "kind" not in given:
        raise InvalidParameterError("a rule needs a 'kind': pin or block")
    for name in ("position", "id"):
        value = given.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidParameterError(f"{name} must be a whole number, got {value!r}")
    for name in ("kind", "article", "related", "field", "value", "under_field", "under_value", "until", "note"):
        value = given.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidParameterError(f"{name} must be text, got {value!r}")
    if not isinstance(given.get("both_ways", False), bool):
        raise InvalidParameterError(f"both_ways must be true or false, got {given['both_ways']!r}")
    return Rule(**{**given, "note": given.get("note") or ""})


def check_rule(rule: Rule, known: Callable[[str], bool], now: float) -> Rule:
    """``rule`` cleaned up (ids stripped, position defaulted) if it can be stored, else
    :class:`InvalidParameterError` or :class:`UnknownArticleError` naming what is wrong. ``known(id)``:
    whether the model has that article."""

    def text(value: str | None) -> str | None:
        return None if value is None or not value.strip() else value.strip()

    r = replace(rule, article=text(rule.article), related=text(rule.related), field=text(rule.field))
    r = replace(r, under_field=text(r.under_field), until=text(r.until))
    if r.kind not in KINDS:
        raise InvalidParameterError(f"a rule's kind is pin or block, got {r.kind!r}")
    for name in ("article", "related"):
        value = getattr(r, name)
        if value is None:
            continue
        try:
            check_id(value)  # the corpus's id rule: what a rule names, every entry point can address
        except ValueError as exc:
            raise InvalidParameterError(f"a rule's {name} is not a valid article id: {exc}") from None
        if not known(value):
            raise UnknownArticleError(value, f"no article {value!r} in the model: a rule can only name articles it has")
    if r.article is not None and r.article == r.related:
        raise InvalidParameterError(f"an article cannot be pinned or blocked under itself ({r.article!r})")
    if r.kind == "pin":
        if r.article is None or r.related is None:
            raise InvalidParameterError("a pin needs the article whose list it changes and the article to pin")
        if r.field is not None or r.under_field is not None or r.both_ways:
            raise InvalidParameterError("a pin takes an article, a related article and a position only")
        position = 1 if r.position is None else r.position
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= MAX_POSITION:
            raise InvalidParameterError(
                f"a pin's position is 1 or more (1: first) and at most {MAX_POSITION:,}, got {r.position!r}"
            )
        r = replace(r, position=position)
    else:
        if r.position is not None:
            raise InvalidParameterError("a block has no position (positions are for pins)")
        if (r.related is None) == (r.field is None):
            raise InvalidParameterError("a block names either an article to block or a field and value to match")
        if r.field is not None:
            r = replace(r, value=_check_match(r.field, r.value, "field"))
            if r.article is not None:
                raise InvalidParameterError("a field block applies everywhere, or under articles matching under_field")
        if (r.under_field is None) != (r.under_value is None):
            raise InvalidParameterError("give under_field and under_value together")
        if r.under_field is not None:
            if r.field is None:
                raise InvalidParameterError("under_field narrows a field block; to block under one article, give it")
            r = replace(r, under_value=_check_match(r.under_field, r.under_value, "under_field"))
        if r.both_ways and r.article is None:
            raise InvalidParameterError("both_ways is for a pair: give the article whose list it changes")
    if r.until is not None:
        if r.expires_at() <= now:
            raise InvalidParameterError(f"the expiry {r.until} is in the past: a rule must expire later than now")
    return r


def _check_match(name: str, value: str | None, what: str) -> str:
    if name not in MATCH_FIELDS:
        raise InvalidParameterError(f"{what} must be one of {', '.join(MATCH_FIELDS)}, got {name!r}")
    if value is None or not value.strip():
        raise InvalidParameterError(f"give the {name} value to match")
    if name == "title":
        title_pattern(value)
        return value
    return value.strip()


class TitlePattern(Protocol):
    """A compiled title pattern: ``search(title)`` is a match object or ``None``."""

    def search(self, text: str) -> object | None: ...


@functools.lru_cache(maxsize=256)
def title_pattern(value: str) -> TitlePattern:
    """``value`` compiled as a title pattern (by RE2), case-insensitive.
    RE2 matches in time linear in the title, where Python's ``re`` can take exponential time (``^(a+)+$``
    against 30 "a" and a "b"); so it has no backreferences or lookaround, and ``\\b``/``\\w`` are ASCII.
    :class:`InvalidParameterError` naming the pattern if it is malformed or uses what RE2 lacks."""
    try:
        re.compile(value)  # Python's messages say where a malformed pattern goes wrong
    except re.error as exc:
        raise InvalidParameterError(f"malformed title pattern {value!r}: {exc}") from None
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is ours to report, not a line on stderr
    try:
        return re2.compile(value, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidParameterError(
            f"title pattern {value!r} is refused ({reason}): patterns are matched in time linear in the title, "
            "without backreferences (\\1) or lookaround ((?=...), (?!...), (?<=...), (?<!...)); write it without them"
        ) from None


@dataclass(frozen=True)
class Rules:
    """The rules a state applies (those stored; each applies while in force)."""

    rules: tuple[Rule, ...] = ()

    def in_force(self, now: float) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.in_force(now))

    def expired(self, now: float) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.in_force(now))

    def to_dict(self, now: float) -> dict[str, list[dict[str, Any]]]:
        """The rules as `recommender rules --json` and ``GET /rules`` show them."""
        return {
            "in_force": [r.to_dict(now) for r in self.in_force(now)],
            "expired": [r.to_dict(now) for r in self.expired(now)],
        }

    def __bool__(self) -> bool:
        return bool(self.rules)


def rules_key(rules: Sequence[Rule]) -> str:
    """A short name for a set of rules: equal sets, equal names ("none" for no rule)."""
    if not rules:
        return "none"
    return hashlib.sha256(rules_json(rules).encode()).hexdigest()[:16]


def rules_json(rules: Sequence[Rule]) -> str:
    """Rules as JSON (a store records the rules its lists apply), in a canonical order."""
    return json.dumps([asdict(r) for r in sorted(rules, key=lambda r: (r.id or 0, r.describe()))], sort_keys=True)


def rules_from_json(text: str | None) -> tuple[Rule, ...]:
    """The rules :func:`rules_json` wrote (none for ``None``)."""
    return () if not text else tuple(Rule(**item) for item in json.loads(text))


def place_pins(chosen: list[int], pins: Sequence[tuple[int, int, int]], k: int) -> list[int]:
    """``chosen`` with the pinned rows placed at their positions, ``k`` in all: pins make room by pushing
    the last chosen out. ``pins`` come in order (by position, then as added); a pin whose place an earlier
    pin took goes after it, and a position past the end takes the last place."""
    pinned = {p for p, _, _ in pins}
    out = [r for r in chosen if r not in pinned][: max(0, k - len(pinned))]
    placed: set[int] = set()
    for row, position, _ in pins:
        at = position - 1
        while at < len(out) and out[at] in placed:
            at += 1
        out.insert(min(at, len(out)), row)
        placed.add(row)
    return out[:k]
