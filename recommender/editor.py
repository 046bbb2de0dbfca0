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

:func:`mount` adds the routes to the server's FastAPI application; the server hands it a :class:`Backend`.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations (Request) as objects.
import asyncio
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from .errors import InvalidParameterError, RecommenderError, UnknownArticleError
from .ranking import Related
from .rules import MATCH_FIELDS, Rule

__all__ = ["Backend", "BoxItem", "Sessions", "Throttle", "View", "mount", "rule_from_form"]

DEFAULT_K = 5
MAX_K = 50  # a page of boxes, not a batch job
SEARCH_LIMIT = 20
COOKIE = "recommender_editor"
SESSION_SECONDS = 12 * 3600
MAX_FORM = 200_000  # bytes: a draft's text fits; the server refuses bodies over its own limit first
# A rule's fields as the page's forms send them (its number and creation time are the server's).
RULE_FIELDS = tuple(f.name for f in fields(Rule) if f.name not in ("id", "created"))
# The page loads its stylesheet and nothing else: no script runs, and no other site may frame it (its
# buttons write) or receive its forms.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
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

    def related(self, article_id: str, k: int = 5) -> list[Related]: ...

    def draft(self, title: str, body: str, k: int = 5) -> list[Related]: ...

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
    """What the page shows: the search text, the selected article and the size of its box."""

    q: str = ""
    id: str = ""
    k: int = DEFAULT_K

    @classmethod
    def of(cls, values: Mapping[str, str], prefix: str = "") -> "View":
        """The view named by query parameters (or a form's ``view_`` fields); a bad ``k`` is an error."""
        text = values.get(prefix + "k", "").strip()
        k = DEFAULT_K
        if text:
            if not text.isdigit() or not 1 <= int(text) <= MAX_K:
                raise InvalidParameterError(f"the box size must be a whole number from 1 to {MAX_K}, got {text!r}")
            k = int(text)
        return cls(values.get(prefix + "q", "").strip(), values.get(prefix + "id", "").strip(), k)

    def select(self, article_id: str) -> "View":
        """This view with ``article_id`` selected."""
        return View(self.q, article_id, self.k)

    def url(self, **extra: str | int) -> str:
        """The page's address for this view (plus ``extra`` parameters), at the box when one is selected."""
        params: dict[str, str | int] = {"id": self.id, "q": self.q}
        if self.k != DEFAULT_K:
            params["k"] = self.k
        query = urlencode({name: value for name, value in (params | extra).items() if value != ""})
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
            context["view"] = view = View(view.q, view.q, view.k)
    if selected:
        try:
            context["article"] = backend.article(selected)
            pins = {r["related"]: r for r in in_force if r.get("kind") == "pin" and r.get("article") == selected}
            context["box"] = box_items(backend.related(selected, view.k), pins)
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
            draft["box"] = box_items(backend.draft(draft["title"], draft["text"], view.k), {})
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
    env.globals.update(match_fields=MATCH_FIELDS, max_k=MAX_K)
    return env


def mount(app: Any, backend: Backend, throttle: Throttle | None = None) -> None:
    """Add the editor's page (``/``, ``/login``, ``/logout`` and ``/editor/...``) to the FastAPI ``app``;
    ``throttle`` counts wrong logins (the server shares its API's)."""
    try:
        env = templates()
    except ImportError:
        raise RecommenderError(
            "the editor's page needs Jinja2: install the server with: pip install 'recommender[serve]'"
        ) from None
    from fastapi import Request
    from fastapi.responses import HTMLResponse, RedirectResponse, Response

    stylesheet = (resources.files("recommender") / "static" / "editor.css").read_bytes()
    guesses = throttle if throttle is not None else Throttle()

    def sessions() -> Sessions | None:
        token = backend.token
        return None if token is None else Sessions(token)

    def nonce_of(request: Request) -> str | None:
        keys = sessions()
        return None if keys is None else keys.nonce_of(request.cookies.get(COOKIE))

    def html(name: str, request: Request, status: int = 200, **values: Any) -> Any:
        keys, nonce = sessions(), nonce_of(request)
        values.setdefault("errors", [])
        values.setdefault("notice", None)
        values.setdefault("form", {})
        values.setdefault("draft", None)
        body = env.get_template(name).render(
            writes=keys is not None,
            logged_in=nonce is not None,
            can_write=keys is not None and nonce is not None,
            csrf=keys.csrf(nonce) if keys is not None and nonce is not None else "",
            **values,
        )
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    async def page(
        request: Request,
        view: View,
        *,
        status: int = 200,
        errors: list[str] | None = None,
        notice: str | None = None,
        form: Mapping[str, str] | None = None,
        draft: dict[str, Any] | None = None,
    ) -> Any:
        editor = nonce_of(request) is not None
        context, found = await asyncio.to_thread(build_page, backend, view, draft=draft, editor=editor)
        context["errors"] = [*(errors or []), *context["errors"]]
        return html("editor.html", request, max(status, found), notice=notice, form=dict(form or {}), **context)

    async def form_of(request: Request) -> dict[str, str]:
        """The POSTed form (URL-encoded, as the page's forms send it)."""
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise InvalidParameterError("send the page's form (application/x-www-form-urlencoded)")
        raw = await request.body()
        if len(raw) > MAX_FORM:
            raise InvalidParameterError(f"the form has {len(raw):,} bytes; at most {MAX_FORM:,}")
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=64))
        except (UnicodeDecodeError, ValueError):
            raise InvalidParameterError("the form is not valid URL-encoded UTF-8") from None

    def refused_write(request: Request, form: Mapping[str, str]) -> str | None:
        """Why a write from ``form`` is refused (no token, no session, a bad CSRF token), or ``None``."""
        keys = sessions()
        if keys is None:
            return "Writes are off on this server: start it with RECOMMENDER_API_TOKEN set to change rules."
        nonce = keys.nonce_of(request.cookies.get(COOKIE))
        if nonce is None:
            return "Log in with the server's write token to change rules (or your session has expired)."
        if not keys.csrf_ok(nonce, form.get("csrf")):
            return "This form has expired or did not come from this page: reload the page and try again."
        return None

    async def write(request: Request, change: Callable[[dict[str, str]], dict[str, Any]]) -> Any:
        """Check the session and CSRF token, make ``change`` and go back to the page, showing the rule it
        names; or show the page with the error, nothing stored."""
        try:
            form = await form_of(request)
        except InvalidParameterError as exc:
            return html("message.html", request, 400, title="Bad form", errors=[str(exc)])
        try:
            view = View.of(form, "view_")
        except InvalidParameterError:
            view = View(form.get("view_q", "").strip(), form.get("view_id", "").strip())
        reason = refused_write(request, form)
        if reason is not None:
            return await page(request, view, status=403, errors=[reason])
        try:
            done = await asyncio.to_thread(change, form)
        except RecommenderError as exc:
            return await page(request, view, status=422, errors=[f"Not saved: {exc}"], form=form)
        return RedirectResponse(view.url(**done), status_code=303, headers=SECURITY_HEADERS)

    @app.get("/", response_class=HTMLResponse, summary="The editor's page", include_in_schema=False)
    async def editor_page(request: Request) -> Any:
        params = dict(request.query_params)
        try:
            view = View.of(params)
        except InvalidParameterError as exc:
            return await page(request, View(params.get("q", "").strip(), params.get("id", "").strip()),
                              status=422, errors=[str(exc)])  # fmt: skip
        notice = None
        logged_in = nonce_of(request) is not None  # a notice names a rule: for editors only
        if logged_in and (params.get("added", "").isdigit() or params.get("removed", "").isdigit()):
            notice = await asyncio.to_thread(notice_of, params)
        return await page(request, view, notice=notice)

    def notice_of(params: Mapping[str, str]) -> str:
        if params.get("removed", "").isdigit():
            return f"Removed rule {params['removed']}."
        rule_id = int(params["added"])
        rules = backend.rules()
        for rule in [*rules.get("in_force", []), *rules.get("expired", [])]:
            if rule.get("id") == rule_id:
                return f"Saved rule {rule_id}: {rule.get('description', '')}."
        return f"Saved rule {rule_id}."

    @app.post("/editor/draft", response_class=HTMLResponse, include_in_schema=False)
    async def editor_draft(request: Request) -> Any:
        # A preview reads only: no login needed. POST because a draft's text is long.
        try:
            form = await form_of(request)
            view = View.of(form, "view_")
        except InvalidParameterError as exc:
            return html("message.html", request, 400, title="Bad form", errors=[str(exc)])
        draft = {"title": form.get("title", ""), "text": form.get("text", "")}
        return await page(request, view, draft=draft)

    def add(form: dict[str, str]) -> dict[str, Any]:
        return {"added": added_id(backend.add_rule(rule_from_form(form)))}

    def remove(form: dict[str, str]) -> dict[str, Any]:
        rule_id = rule_id_of(form)
        backend.remove_rule(rule_id)
        return {"removed": rule_id}

    def move(form: dict[str, str]) -> dict[str, Any]:
        """A pin moved to another position (one transaction: the old pin goes, a new one takes its place)."""
        position = rule_from_form({"position": form.get("position", "")})["position"]
        if position is None:
            raise InvalidParameterError("give the pin's new position (1: first)")
        return {"added": added_id(backend.move_pin(rule_id_of(form), position))}

    def rule_id_of(form: Mapping[str, str]) -> int:
        text = form.get("rule", "").strip()
        if not text.isdigit():
            raise InvalidParameterError(f"no such rule: {text!r}")
        return int(text)

    @app.post("/editor/rules", include_in_schema=False)
    async def editor_add_rule(request: Request) -> Any:
        return await write(request, add)

    @app.post("/editor/rules/remove", include_in_schema=False)
    async def editor_remove_rule(request: Request) -> Any:
        return await write(request, remove)

    @app.post("/editor/rules/move", include_in_schema=False)
    async def editor_move_rule(request: Request) -> Any:
        return await write(request, move)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request) -> Any:
        return html("login.html", request, next=local_path(request.query_params.get("next")))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Any:
        try:
            form = await form_of(request)
        except InvalidParameterError as exc:
            return html("login.html", request, 400, next="/", errors=[str(exc)])
        target = local_path(form.get("next"))
        keys, token = sessions(), backend.token
        if keys is None or token is None:
            return html("login.html", request, 403, next=target)
        address = request.client.host if request.client else ""
        wait = guesses.wait(address)
        if wait:  # too many wrong tokens from there: even the right one waits (no guess gets through)
            message = f"Too many wrong tokens from your address: try again in {wait} s."
            refused = html("login.html", request, 429, next=target, errors=[message])
            refused.headers["Retry-After"] = str(wait)
            return refused
        if not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
            guesses.failed(address)
            await asyncio.sleep(0.5)  # and a guess costs time
            return html("login.html", request, 403, next=target, errors=["That is not the server's write token."])
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            keys.issue(),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Any:
        try:
            form = await form_of(request)
        except InvalidParameterError:
            form = {}
        keys = sessions()
        nonce = nonce_of(request)
        if keys is not None and nonce is not None and not keys.csrf_ok(nonce, form.get("csrf")):
            return await page(request, View(), status=403, errors=["This form has expired: reload and try again."])
        response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/editor/static/editor.css", include_in_schema=False)
    async def editor_css() -> Any:
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


def added_id(change: dict[str, Any]) -> int:
    """The id of the rule an ``add_rule`` stored (its answer names the rule, as ``POST /rules``'s does)."""
    return int(change["rule"]["id"] if "rule" in change else change["id"])


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this server (where a login may send the browser back to), else ``/``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target
