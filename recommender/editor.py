"""The editor's page on ``recommender serve``: find an article, see its box as readers will (each result's
score and shared terms), pin, reorder, unpin and block with a click, and preview a draft's box.

Server-rendered with Jinja2 (autoescaped), plain HTML forms and no JavaScript: a write is a POST answered by
a redirect back to the page (post-redirect-get), or by the page with the error when the input is refused,
and then nothing is stored. Reading (search, boxes, drafts) needs no login; the rules and their notes are
shown to a logged-in editor only, as ``GET /rules`` needs the token. Writes need the server's token, given
once in a login form (wrong tokens are rate-limited per client address: :class:`Throttle`). The session
cookie is signed with a key derived from the token (never the token itself), so every worker process accepts
it without shared state, and a new token ends every session. Each write form carries a CSRF token derived
from the session, compared in constant time.

The routes are :mod:`recommender.server.routes.editor`'s; the server hands them a :class:`Backend`. Nothing
here imports FastAPI.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol
from urllib.parse import urlencode

from .errors import InvalidParameterError, RecommenderError, UnknownArticleError
from .options import LABELS, NO_FILTERS, Filters
from .ranking import Related
from .rules import MATCH_FIELDS, Rule

__all__ = [
    "COOKIE",
    "MAX_FORM",
    "SECURITY_HEADERS",
    "SESSION_SECONDS",
    "Backend",
    "BoxItem",
    "Sessions",
    "Throttle",
    "View",
    "added_id",
    "build_page",
    "local_path",
    "rule_from_form",
    "templates",
]

DEFAULT_K = 5
MAX_K = 50  # a page of boxes, not a batch job
SEARCH_LIMIT = 20
COOKIE = "recommender_editor"
SESSION_SECONDS = 12 * 3600
MAX_FORM = 200_000  # bytes: a draft's text fits; the server refuses bodies over its own limit first
# A rule's fields as the page's forms send them (its number and creation time are the server's).
RULE_FIELDS = tuple(f.name for f in fields(Rule) if f.name not in ("id", "created"))
# The page loads its stylesheet and the articles' pictures, nothing else: no script runs, and no other site
# may frame it (its buttons write) or receive its forms.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' https: http:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Backend(Protocol):
    """What the page reads and writes (the server's ``EditorBackend`` on its worker's service)."""

    @property
    def token(self) -> str | None:
        """The server's write token; ``None``: writes are off."""
        ...

    def related(self, article_id: str, k: int = 5, filters: Filters | None = None) -> list[Related]: ...

    def draft(self, title: str, body: str, k: int = 5, filters: Filters | None = None) -> list[Related]: ...

    def find(self, text: str, limit: int = 20) -> list[dict[str, str | None]]: ...

    def article(self, article_id: str) -> dict[str, str | None]: ...

    def rules(self) -> dict[str, Any]: ...

    def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]: ...

    def remove_rule(self, rule_id: int) -> dict[str, Any]: ...

    def move_pin(self, rule_id: int, position: int) -> dict[str, Any]: ...


class Throttle:
    """Wrong tokens per client address: after ``limit`` of them within ``window`` seconds, an address waits
    until the oldest is ``window`` seconds old, whatever it sends. The server shares one between its API's
    writes and the page's logins. Kept in memory by each worker process (with N workers an address gets up to
    N times ``limit`` tries a window), thread-safe."""

    def __init__(self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, address: str) -> int:
        """Whole seconds ``address`` must wait before its token is checked again; 0: it may try now."""
        with self._lock:
            now = self.clock()
            recent = self._recent(address, now)
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, address: str) -> None:
        """Count a wrong token from ``address``."""
        with self._lock:
            now = self.clock()
            self._failures.setdefault(address, deque()).append(now)
            if len(self._failures) > 10_000:  # many addresses: forget those with no failure in the window
                for other in list(self._failures):
                    self._recent(other, now)

    def _recent(self, address: str, now: float) -> deque[float]:
        """``address``'s failures within the window (older ones dropped; an address with none forgotten)."""
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(address, None)
        return times


class Sessions:
    """Signed session cookies and their CSRF tokens, keyed by the server's write token.

    A cookie is ``issued.nonce.signature``; its CSRF token is another signature of the nonce. Both are
    HMAC-SHA256 under a key derived from the token, so they hold in every worker process and a leaked
    cookie reveals nothing of the token."""

    def __init__(self, token: str, lifetime: float = SESSION_SECONDS) -> None:
        self.key = hmac.new(token.encode(), b"recommender editor sessions", hashlib.sha256).digest()
        self.lifetime = lifetime

    def sign(self, purpose: str, payload: str) -> str:
        return hmac.new(self.key, f"{purpose}:{payload}".encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        """A new session cookie's value."""
        payload = f"{int(time.time() if now is None else now)}.{secrets.token_urlsafe(18)}"
        return f"{payload}.{self.sign('session', payload)}"

    def nonce_of(self, cookie: str | None, now: float | None = None) -> str | None:
        """The session's nonce if ``cookie`` is a session this key signed and it has not expired, else ``None``."""
        if not cookie or cookie.count(".") != 2:
            return None
        issued, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self.sign("session", f"{issued}.{nonce}").encode()):
            return None
        age = (time.time() if now is None else now) - int(issued)  # signed: issued is our own number
        return nonce if -60 <= age <= self.lifetime else None

    def csrf(self, nonce: str) -> str:
        return self.sign("csrf", nonce)

    def csrf_ok(self, nonce: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf(nonce).encode())


@dataclass(frozen=True, slots=True)
class View:
    """What the page shows: the search text, the selected article, the size of its box and the label filters
    its box (and a draft's) is seen under (``NO_FILTERS``: none), as a reader's box may ask for them."""

    q: str = ""
    id: str = ""
    k: int = DEFAULT_K
    filters: Filters = NO_FILTERS

    @classmethod
    def of(cls, values: Mapping[str, str], prefix: str = "") -> View:
        """The view named by query parameters (or a form's ``view_`` fields); a bad ``k`` or filter is an
        error."""
        text = values.get(prefix + "k", "").strip()
        k = DEFAULT_K
        if text:
            if not text.isdigit() or not 1 <= int(text) <= MAX_K:
                raise InvalidParameterError(f"the box size must be a whole number from 1 to {MAX_K}, got {text!r}")
            k = int(text)
        labels: dict[str, Any] = {name: values.get(prefix + name, "").strip() or None for name in LABELS}
        return cls(values.get(prefix + "q", "").strip(), values.get(prefix + "id", "").strip(), k, Filters(**labels))

    def select(self, article_id: str) -> View:
        """This view with ``article_id`` selected."""
        return replace(self, id=article_id)

    def params(self) -> dict[str, str | int]:
        """The view's parameters that differ from a fresh page's: what its address and forms carry."""
        params: dict[str, str | int] = {"id": self.id, "q": self.q}
        if self.k != DEFAULT_K:
            params["k"] = self.k
        params.update(self.filters.labels())
        return {name: value for name, value in params.items() if value != ""}

    def url(self, **extra: str | int) -> str:
        """The page's address for this view (plus ``extra`` parameters), at the box when one is selected."""
        query = urlencode({name: value for name, value in (self.params() | extra).items() if value != ""})
        return "/" + (f"?{query}" if query else "") + ("#box" if self.id else "")


@dataclass(frozen=True, slots=True)
class BoxItem:
    """One line of a box: its place, the result, its shared terms, the rule the box names for it, and the pin
    (in force) that puts it there, if any."""

    position: int
    result: Related
    terms: tuple[tuple[str, float], ...]
    label: str | None
    pin: dict[str, Any] | None


def rule_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """A rule (the backend's dict) from the page's form fields: blank fields are ``None``; a position that is
    not a whole number is an :class:`InvalidParameterError`. The backend checks the rest."""
    rule: dict[str, Any] = {}
    for name in RULE_FIELDS:
        value = form.get(name, "")
        if name == "both_ways":
            rule[name] = value in ("on", "true", "1")
        elif name == "position":
            text = value.strip()
            if text and not text.lstrip("-").isdigit():
                raise InvalidParameterError(f"a pin's position is a whole number, 1 or more (1: first), got {text!r}")
            rule[name] = int(text) if text else None
        elif name == "note":
            rule[name] = value.strip()
        else:
            # A title pattern keeps its spaces (they may be meant); blank is no value at all.
            rule[name] = value if name in ("value", "under_value") and value.strip() else (value.strip() or None)
    return rule


def box_items(results: list[Related], pins: Mapping[str, dict[str, Any]]) -> list[BoxItem]:
    """A box's lines: ``pins`` maps a pinned article's id to its rule."""
    return [
        BoxItem(i, r, tuple((t.term, t.weight) for t in r.why), r.rule, pins.get(r.id))
        for i, r in enumerate(results, start=1)
    ]


def safe_href(url: object) -> str | None:
    """``url`` if it is a web address a link may point to (never ``javascript:`` and the like), else ``None``."""
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return url
    return None


def build_page(
    backend: Backend, view: View, *, draft: dict[str, Any] | None = None, editor: bool = False
) -> tuple[dict[str, Any], int]:
    """The page's values for ``view`` (and a draft's preview), and the HTTP status: an unknown article or a
    refused lookup is shown on the page, as an error. The rules (and their notes) are read only for a
    logged-in ``editor``, as ``GET /rules`` needs the token."""
    context: dict[str, Any] = {"view": view, "search": None, "article": None, "box": [], "list_rules": []}
    errors: list[str] = []
    status = 200
    rules = backend.rules() if editor else {}
    in_force: list[dict[str, Any]] = list(rules.get("in_force", []))
    context["rules_in_force"], context["rules_expired"] = in_force, list(rules.get("expired", []))
    selected = view.id
    if view.q:
        context["search"] = backend.find(view.q, SEARCH_LIMIT)
        if not selected and context["search"] and context["search"][0]["id"] == view.q:
            selected = view.q  # an id typed in the search box opens that article
            context["view"] = view = view.select(view.q)
    if selected:
        try:
            context["article"] = backend.article(selected)
            pins = {r["related"]: r for r in in_force if r.get("kind") == "pin" and r.get("article") == selected}
            context["box"] = box_items(backend.related(selected, view.k, view.filters), pins)
            # Its own rules, and those on every box (takedowns, field blocks).
            context["list_rules"] = [
                r for r in in_force if selected in (r.get("article"), r.get("related")) or r.get("article") is None
            ]
        except UnknownArticleError as exc:
            errors.append(str(exc))
            status = 404
        except RecommenderError as exc:
            errors.append(str(exc))
            status = 422
    if draft is not None:
        context["draft"] = draft
        try:
            draft["box"] = box_items(backend.draft(draft["title"], draft["text"], view.k, view.filters), {})
        except RecommenderError as exc:
            errors.append(f"draft: {exc}")
            status = 422
    context["errors"] = errors
    return context, status


def templates() -> Any:
    """The page's Jinja2 environment: every template autoescaped."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("recommender", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_href"] = safe_href
    env.globals.update(match_fields=MATCH_FIELDS, max_k=MAX_K, labels=LABELS)
    return env


def added_id(change: dict[str, Any]) -> int:
    """The id of the rule an ``add_rule`` stored (its answer names the rule, as ``POST /rules``'s does)."""
    return int(change["rule"]["id"] if "rule" in change else change["id"])


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this server (where a login may send the browser back to), else ``/``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target
