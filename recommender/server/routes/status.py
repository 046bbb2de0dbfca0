"""Status: what is served (``/health``) and the Prometheus metrics (``/metrics``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ..deps import MetricsDep, ServiceDep, SettingsDep
from ..errors import error_response
from ..metrics import CONTENT_TYPE_LATEST
from ..service import health_of

__all__ = ["router"]

router = APIRouter(tags=["status"])


@router.get("/health", summary="The model and store being served")
async def health(service: ServiceDep, settings: SettingsDep, metrics: MetricsDep) -> Any:
    answer = health_of(service)
    if answer is None:
        return error_response(metrics, 503, "no_model", f"no model loaded from {settings.model} yet")
    return JSONResponse(answer)


@router.get("/metrics", summary="Prometheus metrics (of all the server's workers)")
async def metrics(metrics: MetricsDep) -> Any:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
