"""Lookups: an article's list or box by id, and a draft's (``POST``), as JSON or HTML."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi import Query as QueryParams
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ...render import render_related
from ..deps import ServiceDep, SettingsDep
from ..models import LookupParams, draft_of, draft_schema, results_of
from ..service import Query

__all__ = ["router"]

router = APIRouter(tags=["lookups"])

ArticleId = Annotated[str, PathParam(description="An article id in the model")]
Params = Annotated[LookupParams, QueryParams()]


def _by_id(
    request: Request, service: ServiceDep, settings: SettingsDep, article_id: str, query: Query, html: bool
) -> Any:
    """The list of ``article_id`` (from the store when it holds it as asked), with the snapshot's ETag: a
    ``304`` when the client has it."""
    snapshot = service.current()
    results, source = service.lookup(snapshot, article_id, query)
    headers = {"ETag": snapshot.etag, "Cache-Control": f"public, max-age={settings.max_age}"}
    if snapshot.etag in request.headers.get("if-none-match", ""):
        response: Response = Response(status_code=304, headers=headers)
    elif html:
        response = HTMLResponse(render_related(results, default_image=settings.default_image))
    else:
        response = JSONResponse({"id": article_id.strip(), "related": results_of(results, query.options.explain)})
    response.headers.update(headers)
    response.headers["X-Recommender-Source"] = source
    return response


# The .html route first: "/related/{id}" would take "x.html" as an id (no id ends in .html: check_id).
@router.get("/related/{article_id:id}.html", response_class=HTMLResponse, summary="An article's box as HTML")
async def related_html(
    request: Request, service: ServiceDep, settings: SettingsDep, article_id: ArticleId, params: Params
) -> Any:
    return _by_id(request, service, settings, article_id, params.query(), html=True)


@router.get("/related/{article_id:id}", summary="An article's related list, as `recommender related --json`")
async def related(
    request: Request, service: ServiceDep, settings: SettingsDep, article_id: ArticleId, params: Params
) -> Any:
    return _by_id(request, service, settings, article_id, params.query(), html=False)


@router.post(
    "/related",
    summary="A draft's related list (title, text, published, k and the filters)",
    openapi_extra=draft_schema,
)
async def related_draft(request: Request, service: ServiceDep) -> Any:
    title, text, published, query = draft_of(await request.body())
    results = await service.draft_soon(title, text, published, query)
    return JSONResponse({"related": results_of(results, query.options.explain)})


@router.post("/related.html", response_class=HTMLResponse, summary="A draft's box as HTML", openapi_extra=draft_schema)
async def related_draft_html(request: Request, service: ServiceDep, settings: SettingsDep) -> Any:
    title, text, published, query = draft_of(await request.body())
    results = await service.draft_soon(title, text, published, query)
    return HTMLResponse(render_related(results, default_image=settings.default_image))
