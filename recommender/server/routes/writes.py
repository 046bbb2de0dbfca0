"""Writes, each with the server's token: articles added, edited and removed, and the editors' rules. A write
goes through the worker's :class:`~recommender.Updater` (model and store change together) and is served at
once."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from ...errors import InvalidParameterError
from ..deps import MetricsDep, ServiceDep, require_token

__all__ = ["router"]

router = APIRouter(tags=["writes"], dependencies=[Depends(require_token)])


async def _update(service: ServiceDep, metrics: MetricsDep, articles: list[Any], remove: list[str]) -> Any:
    result = await asyncio.to_thread(service.update, articles, remove)
    metrics.reloads.inc()
    return JSONResponse(result)


@router.put("/articles/{article_id:id}", summary="Add or edit one article (token required)")
async def put_article(
    service: ServiceDep, metrics: MetricsDep, article_id: str, body: Annotated[dict[str, Any], Body()]
) -> Any:
    if "id" in body and str(body["id"]).strip() != article_id.strip():
        raise InvalidParameterError(f"the body's id {body['id']!r} is not the path's {article_id!r}")
    return await _update(service, metrics, [{**body, "id": article_id}], [])


@router.post("/articles", summary="Add or edit a batch of articles (token required)")
async def post_articles(service: ServiceDep, metrics: MetricsDep, body: Annotated[Any, Body()]) -> Any:
    articles = body.get("articles") if isinstance(body, dict) else body
    if not isinstance(articles, list) or not articles:
        raise InvalidParameterError('send a JSON list of articles, or {"articles": [...]}, with at least one')
    return await _update(service, metrics, articles, [])


@router.delete("/articles/{article_id:id}", summary="Remove an article (token required)")
async def delete_article(service: ServiceDep, metrics: MetricsDep, article_id: str) -> Any:
    return await _update(service, metrics, [], [article_id])


@router.get("/rules", summary="The editors' rules, in force and expired (token required)")
async def get_rules(service: ServiceDep) -> Any:
    return JSONResponse(await asyncio.to_thread(service.rules))


@router.post("/rules", status_code=201, summary="Add a pin or block (token required)")
async def post_rule(service: ServiceDep, metrics: MetricsDep, body: Annotated[Any, Body()]) -> Any:
    result = await asyncio.to_thread(service.add_rule, body)
    metrics.reloads.inc()
    return JSONResponse(result, status_code=201)


@router.delete("/rules/{rule_id}", summary="Remove a rule: unpin, unblock (token required)")
async def delete_rule(service: ServiceDep, metrics: MetricsDep, rule_id: int) -> Any:
    result = await asyncio.to_thread(service.remove_rule, rule_id)
    metrics.reloads.inc()
    return JSONResponse(result)
