"""Every error the application answers, in the ``{"error": {"code", "message"}}`` envelope: the package's
named errors, refused writes, invalid parameters, and the framework's own 404/405/400."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ..errors import RecommenderError
from .errors import HTTP_CODES, Refused, error_response, status_of
from .models import PARAMS

__all__ = ["add_handlers"]


def add_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the envelope, counted by code."""

    @app.exception_handler(RecommenderError)
    async def recommender_error(request: Request, exc: RecommenderError) -> Any:
        status, code = status_of(exc)
        return error_response(request.app.state.metrics, status, code, str(exc))

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Any:
        return error_response(request.app.state.metrics, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path"))
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        if first.get("type") == "extra_forbidden" and tuple(first.get("loc", ()))[:1] == ("query",):
            message = f"unknown parameter {where!r}: the parameters are {PARAMS}"
        return error_response(request.app.state.metrics, 422, "invalid_parameter", message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        status, path = exc.status_code, request.url.path
        if status == 404:
            message = f"nothing at {path}: the API is described at /docs"
        elif status == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{path} does not take {request.method}; it takes {allowed}"
        else:
            message = str(exc.detail)
        metrics = request.app.state.metrics
        return error_response(metrics, status, HTTP_CODES.get(status, "http_error"), message, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Any:
        message = f"the server failed on this request ({type(exc).__name__}); see its log"
        return error_response(request.app.state.metrics, 500, "internal", message)
