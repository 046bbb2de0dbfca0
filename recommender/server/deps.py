"""The routes' dependencies: the worker's service, settings and metrics (kept on the application's state by
:func:`~recommender.server.app.create_app`), and the write token's check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from .errors import Refused
from .metrics import Metrics
from .service import Service
from .settings import TOKEN_VARIABLE, ServeSettings

__all__ = ["MetricsDep", "ServiceDep", "SettingsDep", "require_token"]


def service_of(request: Request) -> Service:
    return request.app.state.service


def settings_of(request: Request) -> ServeSettings:
    return request.app.state.settings


def metrics_of(request: Request) -> Metrics:
    return request.app.state.metrics


ServiceDep = Annotated[Service, Depends(service_of)]
SettingsDep = Annotated[ServeSettings, Depends(settings_of)]
MetricsDep = Annotated[Metrics, Depends(metrics_of)]


def require_token(
    request: Request, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Let a write through only with the server's token (``Authorization: Bearer <token>``); wrong tokens are
    counted per client address, and past the limit even the right one waits (no guess gets through)."""
    if settings.token is None:
        raise Refused(403, "writes_disabled", f"writes are off: start the server with {TOKEN_VARIABLE} set")
    address = request.client.host if request.client else ""
    throttle = request.app.state.throttle
    wait = throttle.wait(address)
    if wait:
        raise Refused(
            429,
            "rate_limited",
            f"too many wrong tokens from {address}: try again in {wait} s",
            {"Retry-After": str(wait)},
        )
    if not authorization or not authorization.startswith("Bearer "):
        raise Refused(401, "unauthorized", "send the write token as `Authorization: Bearer <token>`")
    if not hmac.compare_digest(authorization[len("Bearer ") :].encode(), settings.token.encode()):
        throttle.failed(address)
        raise Refused(403, "forbidden", "the token is not the server's write token")
