"""The editors' page (``/``, ``/login``, ``/logout`` and ``/editor/...``): the routes over
:mod:`recommender.editor`, which builds the page, and the worker's
:class:`~recommender.server.service.EditorBackend`, reached through a dependency. Plain forms, no script:
a write is a POST answered by a redirect back to the page, or by the page with the error."""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...editor import (
    COOKIE,
    MAX_FORM,
    SECURITY_HEADERS,
    SESSION_SECONDS,
    Backend,
    Sessions,
    Throttle,
    View,
    added_id,
    build_page,
    local_path,
    rule_from_form,
    templates,
)
from ...errors import InvalidParameterError, RecommenderError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def backend_of(request: Request) -> Backend:
    return request.app.state.editor


BackendDep = Annotated[Backend, Depends(backend_of)]


@functools.cache
def _environment() -> Any:
    try:
        return templates()
    except ImportError:
        raise RecommenderError(
            "the editor's page needs Jinja2: install the server with: pip install 'recommender[serve]'"
        ) from None


@functools.cache
def _stylesheet() -> bytes:
    return (resources.files("recommender") / "static" / "editor.css").read_bytes()


def _sessions(backend: Backend) -> Sessions | None:
    token = backend.token
    return None if token is None else Sessions(token)


def _nonce_of(backend: Backend, request: Request) -> str | None:
    keys = _sessions(backend)
    return None if keys is None else keys.nonce_of(request.cookies.get(COOKIE))


def _html(backend: Backend, name: str, request: Request, status: int = 200, **values: Any) -> Any:
    keys, nonce = _sessions(backend), _nonce_of(backend, request)
    values.setdefault("errors", [])
    values.setdefault("notice", None)
    values.setdefault("form", {})
    values.setdefault("draft", None)
    body = (
        _environment()
        .get_template(name)
        .render(
            writes=keys is not None,
            logged_in=nonce is not None,
            can_write=keys is not None and nonce is not None,
            csrf=keys.csrf(nonce) if keys is not None and nonce is not None else "",
            **values,
        )
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


async def _page(
    backend: Backend,
    request: Request,
    view: View,
    *,
    status: int = 200,
    errors: list[str] | None = None,
    notice: str | None = None,
    form: Mapping[str, str] | None = None,
    draft: dict[str, Any] | None = None,
) -> Any:
    editor = _nonce_of(backend, request) is not None
    context, found = await asyncio.to_thread(build_page, backend, view, draft=draft, editor=editor)
    context["errors"] = [*(errors or []), *context["errors"]]
    return _html(backend, "editor.html", request, max(status, found), notice=notice, form=dict(form or {}), **context)


async def _form_of(request: Request) -> dict[str, str]:
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


def _refused_write(backend: Backend, request: Request, form: Mapping[str, str]) -> str | None:
    """Why a write from ``form`` is refused (no token, no session, a bad CSRF token), or ``None``."""
    keys = _sessions(backend)
    if keys is None:
        return "Writes are off on this server: start it with RECOMMENDER_API_TOKEN set to change rules."
    nonce = keys.nonce_of(request.cookies.get(COOKIE))
    if nonce is None:
        return "Log in with the server's write token to change rules (or your session has expired)."
    if not keys.csrf_ok(nonce, form.get("csrf")):
        return "This form has expired or did not come from this page: reload the page and try again."
    return None


async def _write(
    backend: Backend, request: Request, change: Callable[[Backend, dict[str, str]], dict[str, Any]]
) -> Any:
    """Check the session and CSRF token, make ``change`` and go back to the page, showing the rule it
    names; or show the page with the error, nothing stored."""
    try:
        form = await _form_of(request)
    except InvalidParameterError as exc:
        return _html(backend, "message.html", request, 400, title="Bad form", errors=[str(exc)])
    try:
        view = View.of(form, "view_")
    except InvalidParameterError:
        view = View(form.get("view_q", "").strip(), form.get("view_id", "").strip())
    reason = _refused_write(backend, request, form)
    if reason is not None:
        return await _page(backend, request, view, status=403, errors=[reason])
    try:
        done = await asyncio.to_thread(change, backend, form)
    except RecommenderError as exc:
        return await _page(backend, request, view, status=422, errors=[f"Not saved: {exc}"], form=form)
    return RedirectResponse(view.url(**done), status_code=303, headers=SECURITY_HEADERS)


def _notice_of(backend: Backend, params: Mapping[str, str]) -> str:
    if params.get("removed", "").isdigit():
        return f"Removed rule {params['removed']}."
    rule_id = int(params["added"])
    rules = backend.rules()
    for rule in [*rules.get("in_force", []), *rules.get("expired", [])]:
        if rule.get("id") == rule_id:
            return f"Saved rule {rule_id}: {rule.get('description', '')}."
    return f"Saved rule {rule_id}."


def _rule_id_of(form: Mapping[str, str]) -> int:
    text = form.get("rule", "").strip()
    if not text.isdigit():
        raise InvalidParameterError(f"no such rule: {text!r}")
    return int(text)


def _add(backend: Backend, form: dict[str, str]) -> dict[str, Any]:
    return {"added": added_id(backend.add_rule(rule_from_form(form)))}


def _remove(backend: Backend, form: dict[str, str]) -> dict[str, Any]:
    rule_id = _rule_id_of(form)
    backend.remove_rule(rule_id)
    return {"removed": rule_id}


def _move(backend: Backend, form: dict[str, str]) -> dict[str, Any]:
    """A pin moved to another position (one transaction: the old pin goes, a new one takes its place)."""
    position = rule_from_form({"position": form.get("position", "")})["position"]
    if position is None:
        raise InvalidParameterError("give the pin's new position (1: first)")
    return {"added": added_id(backend.move_pin(_rule_id_of(form), position))}


@router.get("/", response_class=HTMLResponse, summary="The editor's page")
async def editor_page(request: Request, backend: BackendDep) -> Any:
    params = dict(request.query_params)
    try:
        view = View.of(params)
    except InvalidParameterError as exc:
        fallback = View(params.get("q", "").strip(), params.get("id", "").strip())
        return await _page(backend, request, fallback, status=422, errors=[str(exc)])
    notice = None
    logged_in = _nonce_of(backend, request) is not None  # a notice names a rule: for editors only
    if logged_in and (params.get("added", "").isdigit() or params.get("removed", "").isdigit()):
        notice = await asyncio.to_thread(_notice_of, backend, params)
    return await _page(backend, request, view, notice=notice)


@router.post("/editor/draft", response_class=HTMLResponse)
async def editor_draft(request: Request, backend: BackendDep) -> Any:
    # A preview reads only: no login needed. POST because a draft's text is long.
    try:
        form = await _form_of(request)
        view = View.of(form, "view_")
    except InvalidParameterError as exc:
        return _html(backend, "message.html", request, 400, title="Bad form", errors=[str(exc)])
    draft = {"title": form.get("title", ""), "text": form.get("text", "")}
    return await _page(backend, request, view, draft=draft)


@router.post("/editor/rules")
async def editor_add_rule(request: Request, backend: BackendDep) -> Any:
    return await _write(backend, request, _add)


@router.post("/editor/rules/remove")
async def editor_remove_rule(request: Request, backend: BackendDep) -> Any:
    return await _write(backend, request, _remove)


@router.post("/editor/rules/move")
async def editor_move_rule(request: Request, backend: BackendDep) -> Any:
    return await _write(backend, request, _move)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, backend: BackendDep) -> Any:
    return _html(backend, "login.html", request, next=local_path(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request, backend: BackendDep) -> Any:
    try:
        form = await _form_of(request)
    except InvalidParameterError as exc:
        return _html(backend, "login.html", request, 400, next="/", errors=[str(exc)])
    target = local_path(form.get("next"))
    keys, token = _sessions(backend), backend.token
    if keys is None or token is None:
        return _html(backend, "login.html", request, 403, next=target)
    address = request.client.host if request.client else ""
    guesses: Throttle = request.app.state.throttle  # shared with the API's writes
    wait = guesses.wait(address)
    if wait:  # too many wrong tokens from there: even the right one waits (no guess gets through)
        message = f"Too many wrong tokens from your address: try again in {wait} s."
        refused = _html(backend, "login.html", request, 429, next=target, errors=[message])
        refused.headers["Retry-After"] = str(wait)
        return refused
    if not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
        guesses.failed(address)
        await asyncio.sleep(0.5)  # and a guess costs time
        return _html(backend, "login.html", request, 403, next=target, errors=["That is not the server's write token."])
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


@router.post("/logout")
async def logout(request: Request, backend: BackendDep) -> Any:
    try:
        form = await _form_of(request)
    except InvalidParameterError:
        form = {}
    keys = _sessions(backend)
    nonce = _nonce_of(backend, request)
    if keys is not None and nonce is not None and not keys.csrf_ok(nonce, form.get("csrf")):
        return await _page(
            backend, request, View(), status=403, errors=["This form has expired: reload and try again."]
        )
    response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/editor/static/editor.css")
async def editor_css() -> Any:
    return Response(_stylesheet(), media_type="text/css", headers={"Cache-Control": "public, max-age=300"})
