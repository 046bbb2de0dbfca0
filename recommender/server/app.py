"""The application: the routers, the error handlers and the editors' page assembled around one worker's
:class:`~recommender.server.service.Service`, behind the :class:`~recommender.server.edge.Edge`."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from ..editor import Throttle
from .edge import Edge
from .handlers import add_handlers
from .metrics import Metrics
from .routes import editor, lookups, status, writes
from .service import EditorBackend, Service
from .settings import ServeSettings

__all__ = ["create_app"]

TAGS = [
    {"name": "lookups", "description": "Related lists and boxes: by article id, or for a draft"},
    {"name": "writes", "description": "Articles and editors' rules (the write token required)"},
    {"name": "status", "description": "What is served, and the metrics"},
]


def reload_once(app: FastAPI) -> None:
    if app.state.service.refresh():
        app.state.metrics.reloads.inc()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before the first request, then look for changed files every ``reload_seconds``."""
    await asyncio.to_thread(reload_once, app)
    # The model's objects are long-lived: out of the collector's sight, collections stay short and lookups
    # are not held up by them.
    gc.freeze()

    async def watch() -> None:
        while True:
            await asyncio.sleep(app.state.settings.reload_seconds)
            try:
                await asyncio.to_thread(reload_once, app)
            except Exception:
                continue

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()


def create_app(settings: ServeSettings) -> Any:
    """The ASGI application serving ``settings`` (a FastAPI application behind the edge)."""
    service, metrics = Service(settings), Metrics()
    # /docs and /redoc with their scripts and styles served from here (fastapi-offline ships them): no CDN,
    # so they work offline and on an intranet.
    app = FastAPIOffline(
        title="recommender",
        summary="Related articles for Indonesian news sites",
        lifespan=lifespan,
        static_url="/docs/static",
        openapi_tags=TAGS,
    )
    app.state.service, app.state.settings, app.state.metrics = service, settings, metrics
    app.state.throttle = Throttle()  # wrong tokens per client address: the API's and the editor's logins alike
    app.state.editor = EditorBackend(service)
    add_handlers(app)
    for router in (lookups.router, writes.router, status.router, editor.router):
        app.include_router(router)
    return Edge(app, service, settings, metrics)
