"""Errors as the API answers them: every one a ``{"error": {"code", "message"}}`` body with its status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from ..errors import InvalidParameterError, ModelError, RecommenderError, StoreError, UnknownArticleError
from .metrics import Metrics

__all__ = ["HTTP_CODES", "Refused", "error_body", "error_response", "status_of"]

_STATUS = {
    UnknownArticleError: (404, "unknown_article"),
    InvalidParameterError: (422, "invalid_parameter"),
    ModelError: (503, "no_model"),
    StoreError: (503, "store_unavailable"),
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def status_of(exc: RecommenderError) -> tuple[int, str]:
    for kind, answer in _STATUS.items():
        if isinstance(exc, kind):
            return answer
    return (422, "invalid_request")


# The framework's own refusals (no such route, a method the route does not take, a body it cannot read).
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


class Refused(Exception):
    """A request refused before its route runs (no token, a wrong one, too many wrong ones)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    metrics: Metrics, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Any:
    """The error's JSON response, counted."""
    metrics.errors.labels(code).inc()
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)
