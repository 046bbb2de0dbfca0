"""The server's edge: a plain ASGI wrapper around the application that counts and times every request,
answers ``HEAD`` as ``GET`` without the body, refuses a body too large or nested too deep before any route
reads it, and answers the two hottest requests without the framework (``GET /related/{id}`` from the store,
``POST /related``), byte for byte as their routes do (tested)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

from ..errors import InvalidParameterError, RecommenderError
from .errors import error_response, status_of
from .metrics import Metrics
from .models import draft_of, results_of
from .service import Query, Service
from .settings import MAX_DEPTH, ServeSettings

__all__ = ["Edge", "too_deep"]

# Bodies that are forms, not JSON (the editor's page sends them): their nesting is not checked.
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
# A JSON string (skipped whole: brackets inside it do not nest) or a bracket.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_PLAIN = Query()


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than ``limit`` levels deep, found without
    parsing it (a parser recurses once per level)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: the common case, at the cost of two counts
    depth = 0
    for token in _JSON_TOKENS.findall(raw):
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _without_body(send: Any) -> Any:
    """``send`` for a HEAD request: the response's start (status, headers, Content-Length) as a GET's, and an
    empty body."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return sending


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


class Edge:
    """The application ``inner`` behind the edge (see the module); a plain ASGI wrapper, not middleware, so
    that no request pays for a task of its own."""

    def __init__(self, inner: Any, service: Service, settings: ServeSettings, metrics: Metrics) -> None:
        self.inner, self.service, self.settings, self.metrics = inner, service, settings, metrics
        self.stored_ok = metrics.requests.labels("/related/{article_id}", "200")
        self.stored_unchanged = metrics.requests.labels("/related/{article_id}", "304")
        self.stored_latency = metrics.latency.labels("/related/{article_id}")
        self.draft_ok = metrics.requests.labels("/related", "200")
        self.draft_latency = metrics.latency.labels("/related")

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        if scope["method"] == "HEAD":  # every GET route answers HEAD: as GET, without the body
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        if scope["method"] == "GET":
            answered = await self.plain_lookup(scope, send)
            if answered:
                (self.stored_unchanged if answered == 304 else self.stored_ok).inc()
                self.stored_latency.observe(time.perf_counter() - started)
                return
        status = 500
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.settings.max_body:
            await self.too_large(scope, receive, send, int(length))
            return
        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            # Read here, before any route takes it: a chunked body's size is known only once read, and a
            # JSON body's nesting is checked before a parser recurses into it.
            raw, receive = await self.read_body(receive)
            if raw is not None:
                if len(raw) > self.settings.max_body:
                    await self.too_large(scope, receive, send, None)
                    return
                form = headers.get(b"content-type", b"").startswith(_FORMS)
                if not form and too_deep(raw):
                    message = f"the JSON body nests more than {MAX_DEPTH} levels deep"
                    await self.refuse(scope, receive, send, 422, "invalid_parameter", message)
                    return
                if scope["method"] == "POST" and scope["path"] == "/related":
                    if await self.draft_lookup(raw, scope, receive, send):
                        self.draft_latency.observe(time.perf_counter() - started)
                        return

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, sending)
        finally:
            # The route's path as written ("/related/{article_id}", whatever its converter).
            route = getattr(scope.get("route"), "path_format", "other")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    async def plain_lookup(self, scope: MutableMapping[str, Any], send: Any) -> int:
        """Answer ``GET /related/{id}`` with no parameter but ``k`` from the store, without the framework's
        routing and validation (most of a request's time, against a tenth of a millisecond for the store);
        the status sent (200, or 304 to a client that has the list). 0, having sent nothing, for any other
        request, and for any error: the full route answers those."""
        path: str = scope["path"]
        if not path.startswith("/related/") or path.endswith(".html") or path.count("/") != 2:
            return 0
        query = scope["query_string"]
        k = _PLAIN.k
        if query:
            name, _, value = query.partition(b"=")
            if name != b"k" or not value.isdigit() or b"&" in value:
                return 0
            k = int(value)
        snapshot = self.service.snapshot
        if snapshot is None or snapshot.store is None or snapshot.store_meta is None or snapshot.store_key is None:
            return 0
        if not self.service.store_can_answer(snapshot.store_meta, replace(_PLAIN, k=k)):
            return 0
        article_id = path[len("/related/") :].strip()  # the server has decoded the path already
        try:
            results = snapshot.store.related_as_of(article_id, k, snapshot.store_key)
        except RecommenderError:
            return 0
        if results is None:  # the store was rewritten after this snapshot was made
            return 0
        headers = [
            (b"etag", snapshot.etag.encode()),
            (b"cache-control", f"public, max-age={self.settings.max_age}".encode()),
            (b"x-recommender-source", b"store"),
        ]
        for name, value in scope["headers"]:
            if name == b"if-none-match" and snapshot.etag.encode() in value:
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return 304
        body = _compact({"id": article_id, "related": results_of(results, False)})
        headers += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return 200

    async def draft_lookup(self, raw: bytes, scope: MutableMapping[str, Any], receive: Any, send: Any) -> bool:
        """Answer ``POST /related`` (its body ``raw``) without the framework, as the full route does; False,
        having sent nothing, for a body the route refuses: the full route answers those."""
        try:
            title, text, published, query = draft_of(raw)
        except InvalidParameterError:
            return False
        try:
            results = await self.service.draft_soon(title, text, published, query)
        except RecommenderError as exc:
            status, code = status_of(exc)
            await error_response(self.metrics, status, code, str(exc))(scope, receive, send)
            self.metrics.requests.labels("/related", str(status)).inc()
            return True
        answer = _compact({"related": results_of(results, query.options.explain)})
        headers = [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        self.draft_ok.inc()
        return True

    async def read_body(self, receive: Any) -> tuple[bytes | None, Any]:
        """The request's body, read in full up to the size limit (one byte past it when too large), and a
        ``receive`` that replays it to the framework; ``None`` if the client left before sending it all."""
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, receive  # the client left: the framework deals with it
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.settings.max_body or not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        return raw, replay

    async def too_large(self, scope: MutableMapping[str, Any], receive: Any, send: Any, size: int | None) -> None:
        limit = self.settings.max_body
        told = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
        await self.refuse(scope, receive, send, 413, "too_large", f"the request body has {told}; at most {limit:,}")

    async def refuse(
        self, scope: MutableMapping[str, Any], receive: Any, send: Any, status: int, code: str, message: str
    ) -> None:
        """An error answered before any route (the body too large or too deep)."""
        await error_response(self.metrics, status, code, message)(scope, receive, send)
        self.metrics.requests.labels("other", str(status)).inc()
