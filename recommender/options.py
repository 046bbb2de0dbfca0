"""A lookup's options, declared once: :class:`Filters` (which articles a list may hold) and
:class:`LookupOptions` (those, and how the list is chosen). Frozen, and checked when made, so a bad value is
one :class:`~recommender.errors.InvalidParameterError` naming it, wherever it came from: Python, the CLI's
options, the HTTP query string or a draft's body (each builds one of these), or a precompute job.

To add a filter, see docs/architecture.md ("How to add a filter").
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import numpy as np

from .corpus import parse_published
from .errors import InvalidParameterError

__all__ = [
    "DEFAULTS",
    "LABELS",
    "MAX_DAYS",
    "MIN_RESULTS",
    "MIN_SCORE",
    "NO_FILTERS",
    "OPTION_NAMES",
    "Filters",
    "LookupOptions",
    "check_date",
    "check_days",
]

# The default floor under a list, chosen on the graded judgments (docs/quality.md): results scoring below
# 0.05 were all judged unrelated, so the box shows fewer rather than filling up with noise.
MIN_SCORE = 0.05
MIN_RESULTS = 0
# Beyond about 2,700 years a window cannot be represented as dates (and filters nothing anyway).
MAX_DAYS = 1_000_000
# The filters that match one of an article's labels (case-insensitive, as the editors' rules match them).
LABELS = ("section", "category", "tag", "source")
_LONGEST_LABEL = 200


def check_days(within_days: object) -> float:
    """``within_days`` as a float, or :class:`InvalidParameterError` unless it is from 0 to :data:`MAX_DAYS`."""
    if isinstance(within_days, bool) or not isinstance(within_days, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"within_days must be a number of days, got {within_days!r}")
    if not 0 <= within_days <= MAX_DAYS:  # NaN fails too
        raise InvalidParameterError(f"within_days must be from 0 to {MAX_DAYS:,} days, got {float(within_days)}")
    return float(within_days)


def check_list_options(diversity: object, min_score: object, min_results: object) -> None:
    """:class:`InvalidParameterError` naming the first of these per-list options that is out of range."""
    if not _is_number(diversity) or not 0.0 <= diversity <= 1.0:  # type: ignore[operator]
        raise InvalidParameterError(f"diversity must be between 0 and 1, got {diversity!r}")
    if not _is_number(min_score) or not 0.0 <= min_score <= 1.0:  # type: ignore[operator]
        raise InvalidParameterError(f"min_score must be between 0 and 1, got {min_score!r}")
    if isinstance(min_results, bool) or not isinstance(min_results, (int, np.integer)) or min_results < 0:
        raise InvalidParameterError(f"min_results must be a whole number of 0 or more, got {min_results!r}")


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def check_date(name: str, value: object) -> None:
    """:class:`InvalidParameterError` naming ``name`` unless ``value`` is ``None``, a datetime or ISO 8601 text."""
    if value is None or isinstance(value, datetime):
        return
    if not isinstance(value, str):
        raise InvalidParameterError(f"{name} must be an ISO 8601 date, got {value!r}")
    try:
        parse_published(value)
    except ValueError as exc:
        problem = str(exc).replace(" in 'published'", "")  # named here, as the option it is
        raise InvalidParameterError(f"{name}: {problem}") from None


@dataclass(frozen=True, slots=True)
class Filters:
    """Which articles a list may hold.

    section, category, tag, source: only articles with this label (one of its tags, for ``tag``),
        compared as the editors' rules compare them: case-insensitive, surrounding spaces ignored (the
        value is kept stripped and casefolded).
    exclude: not these ids (already on the page, say); one id may be given as a string.
    after, before: published on or after ``after`` and on or before ``before`` (ISO 8601; a plain date as
        ``before`` includes that whole day). An undated article passes neither.
    """

    section: str | None = None
    category: str | None = None
    tag: str | None = None
    source: str | None = None
    exclude: tuple[str, ...] = ()
    after: str | datetime | None = None
    before: str | datetime | None = None

    def __post_init__(self) -> None:
        for name in LABELS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidParameterError(f"{name} must be text, got {value!r}")
            if not value.strip() or len(value) > _LONGEST_LABEL:
                raise InvalidParameterError(f"{name} must be 1 to {_LONGEST_LABEL} characters, got {value!r}")
            # Kept as compared: equal options filter alike (a store's filters answer the same request).
            object.__setattr__(self, name, value.strip().casefold())
        exclude = self.exclude
        if isinstance(exclude, str):
            exclude = (exclude,)
        try:
            exclude = tuple(exclude)
        except TypeError:
            raise InvalidParameterError(f"exclude must be a list of article ids, got {self.exclude!r}") from None
        if not all(isinstance(i, str) for i in exclude):
            raise InvalidParameterError(f"exclude must be a list of article ids (text), got {list(exclude)!r}")
        object.__setattr__(self, "exclude", exclude)  # frozen: set once, here
        check_date("after", self.after)
        check_date("before", self.before)

    @property
    def active(self) -> bool:
        """Whether any filter is set (``False``: every article may be in a list)."""
        return bool(self.to_dict())

    def labels(self) -> dict[str, str]:
        """The label filters set, by name (section, category, tag, source)."""
        return {name: value for name in LABELS if (value := getattr(self, name)) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The filters set, as JSON can hold them (dates as given; a datetime in ISO 8601)."""
        found: dict[str, Any] = {}
        for f in fields(Filters):
            value = getattr(self, f.name)
            if value != f.default:
                found[f.name] = list(value) if f.name == "exclude" else _text(value)
        return found

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Filters:
        """:meth:`to_dict`'s filters again."""
        return cls(**values)  # exclude as a list: made a tuple when checked


def _text(value: object) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class LookupOptions(Filters):
    """A lookup's options: its :class:`Filters`, and how its list is chosen.

    within_days: only articles published within this many days of the article (a draft: of its
        ``published`` time). An undated article passes none.
    newer: allow articles published after the article (``False``: a stable archive list).
    diversity: trade relevance for variety, 0 (pure relevance) to 1 (most diverse).
    min_score: drop results scoring below this (0 to 1) ...
    min_results: ... unless fewer than this many would remain: then the best ones fill up to it.
    explain: fill each result's ``why`` with the shared terms behind it.
    """

    within_days: float | None = None
    newer: bool = True
    diversity: float = 0.0
    min_score: float = MIN_SCORE
    min_results: int = MIN_RESULTS
    explain: bool = False

    def __post_init__(self) -> None:
        Filters.__post_init__(self)
        if self.within_days is not None:
            check_days(self.within_days)
        check_list_options(self.diversity, self.min_score, self.min_results)
        for name in ("newer", "explain"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")

    @classmethod
    def of(cls, options: LookupOptions | None = None, /, **changes: Any) -> LookupOptions:
        """``options`` (default: the defaults) with ``changes``; an unknown name is an
        :class:`InvalidParameterError` listing the options."""
        unknown = sorted(set(changes) - set(OPTION_NAMES))
        if unknown:
            names = ", ".join(OPTION_NAMES)
            raise InvalidParameterError(f"unknown lookup option {unknown[0]!r}: the options are {names}")
        base = cls() if options is None else options
        return replace(base, **changes) if changes else base

    def filters(self) -> Filters:
        """Only the filters of these options."""
        return Filters(**{f.name: getattr(self, f.name) for f in fields(Filters)})


OPTION_NAMES = tuple(f.name for f in fields(LookupOptions))
NO_FILTERS = Filters()
DEFAULTS = LookupOptions()
