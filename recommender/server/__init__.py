"""``recommender serve``: related lists over HTTP, as JSON or the "Berita Lainnya" box, for any CMS.

One :class:`Service` per worker process holds a :class:`Snapshot` (the model, its store when the store
matches it, and their ETag) and swaps it as one reference when the files change on disk: a ``train``,
``precompute`` or ``add`` from another process is served within about a second, and a request is
answered from one snapshot, never a mix. Writes go through an :class:`~recommender.Updater`, so the model
overlay and the store change together, as ``recommender add/remove`` do.

The package follows FastAPI's "bigger applications" layout: :mod:`.settings` and :mod:`.service` (no FastAPI),
the routers by resource in :mod:`.routes` (lookups, writes, status, the editors' page), the dependencies they
share in :mod:`.deps`, the request models in :mod:`.models`, the errors' envelope in :mod:`.errors` and
:mod:`.handlers`, the edge (metrics, limits, the fast paths) in :mod:`.edge`, and :func:`create_app`
assembling them in :mod:`.app`. FastAPI and uvicorn are an optional dependency
(``pip install 'recommender[serve]'``).
"""

from __future__ import annotations

from typing import Any

from ..errors import RecommenderError
from .run import create_app_from_env, run
from .service import EditorBackend, Query, Service, Snapshot
from .settings import INSTALL, TOKEN_VARIABLE, ServeSettings, token_warning

__all__ = [
    "TOKEN_VARIABLE",
    "EditorBackend",
    "Query",
    "ServeSettings",
    "Service",
    "Snapshot",
    "create_app",
    "create_app_from_env",
    "run",
    "token_warning",
]


def create_app(settings: ServeSettings) -> Any:
    """The ASGI application serving ``settings`` (:func:`recommender.server.app.create_app`); a
    :class:`~recommender.RecommenderError` naming the extra when FastAPI is not installed."""
    try:
        from .app import create_app as assemble
    except ImportError:
        raise RecommenderError(f"`recommender serve` needs FastAPI, uvicorn and prometheus_client: {INSTALL}") from None
    return assemble(settings)
