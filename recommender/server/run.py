"""Serving until interrupted: one process, or several worker processes sharing the port (uvicorn)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import InvalidParameterError, ModelError, RecommenderError
from ..modelfile import manifest_path
from .settings import INSTALL, METRICS_VARIABLE, ServeSettings

__all__ = ["create_app_from_env", "run"]


def create_app_from_env() -> Any:
    """The application for one of uvicorn's worker processes (settings from the environment)."""
    from . import create_app

    return create_app(ServeSettings.from_env())


def run(
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until interrupted: one process, or ``workers`` processes sharing the port. ``on_ready`` is
    called once the server listens (one worker: its model loaded too), so that "serving" is said only then.

    A store that does not exist yet is no error: lookups are answered by the model, and the store is used
    from the moment ``recommender precompute`` writes it."""
    try:
        import uvicorn
        from uvicorn.supervisors import Multiprocess
    except ImportError:
        raise RecommenderError(f"`recommender serve` needs uvicorn: {INSTALL}") from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidParameterError(f"workers must be a whole number of 1 or more, got {workers!r}")
    if not manifest_path(settings.model).is_file():
        raise ModelError(f"no model at {settings.model}: train one first with `recommender train`")
    if settings.store is not None and settings.store.exists() and not settings.store.is_file():
        raise InvalidParameterError(f"the store {settings.store} is not a file")
    common: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False}

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                on_ready()

    def serve(config: Any) -> None:
        try:
            if workers == 1:
                server = Announcing(config)
                server.run()
                started = server.started
            else:
                sock = config.bind_socket()
                if on_ready is not None:
                    on_ready()
                Multiprocess(config, sockets=[sock]).run()
                started = True
        except KeyboardInterrupt:
            return
        except SystemExit:  # uvicorn's own exit when it cannot start, its reason logged just before
            started = False
        if not started:
            raise RecommenderError(f"could not serve on http://{host}:{port}: see the message above (port in use?)")

    if workers == 1:
        from . import create_app

        serve(uvicorn.Config(create_app(settings), **common))
        return
    factory = "recommender.server.run:create_app_from_env"
    os.environ.update(settings.to_env())
    if os.environ.get(METRICS_VARIABLE):  # the operator's folder, for their own collector
        serve(uvicorn.Config(factory, factory=True, workers=workers, **common))
        return
    with tempfile.TemporaryDirectory(prefix="recommender-metrics-") as shared:
        os.environ[METRICS_VARIABLE] = shared  # each worker process inherits it before importing prometheus_client
        try:
            serve(uvicorn.Config(factory, factory=True, workers=workers, **common))
        finally:
            del os.environ[METRICS_VARIABLE]
