"""What a lookup request says: the query parameters of the GET routes, the draft body of the POST routes
(strictly typed, no other field), both as one :class:`~recommender.server.service.Query`; and the results
as the API answers them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query as QueryParam
from pydantic import BaseModel, ConfigDict, ValidationError

from ..corpus import parse_published
from ..errors import InvalidParameterError
from ..ranking import MIN_RESULTS, MIN_SCORE, Related
from .service import Query

__all__ = ["DraftBody", "draft_of", "draft_schema", "lookup_query", "results_of"]


def lookup_query(
    k: Annotated[int, QueryParam(description="How many (1 to 1,000)")] = 5,
    section: Annotated[str | None, QueryParam(description="Only this section")] = None,
    exclude: Annotated[list[str] | None, QueryParam(description="Leave out these ids (repeatable)")] = None,
    after: Annotated[str | None, QueryParam(description="Published on or after this ISO date")] = None,
    before: Annotated[str | None, QueryParam(description="Published on or before this ISO date")] = None,
    within_days: Annotated[float | None, QueryParam(description="Within this many days of the article")] = None,
    no_newer: Annotated[bool, QueryParam(description="None published after the article")] = False,
    min_score: Annotated[float, QueryParam(description="Drop results scoring below this")] = MIN_SCORE,
    min_results: Annotated[int, QueryParam(description="... unless fewer than this would remain")] = MIN_RESULTS,
    diversity: Annotated[float, QueryParam(description="0 (relevance) to 1 (variety)")] = 0.0,
    explain: Annotated[bool, QueryParam(description="Each result's shared terms and similarity")] = False,
) -> Query:
    """The lookup options of a GET route's query string (a dependency of both by-id routes)."""
    return Query(
        k=k,
        section=section,
        exclude=tuple(exclude or ()),
        after=after,
        before=before,
        within_days=within_days,
        newer=not no_newer,
        diversity=diversity,
        min_score=min_score,
        min_results=min_results,
        explain=explain,
    )


class DraftBody(BaseModel):
    """``POST /related``'s body: a draft and its lookup's options, every field strictly typed (no string
    taken for a list, a number or a boolean), and no other field."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    title: str = ""
    text: str = ""
    body: str = ""  # another name for text
    published: str | None = None
    k: int = 5
    section: str | None = None
    exclude: list[str] | None = None
    after: str | None = None
    before: str | None = None
    no_newer: bool = False
    min_score: float = MIN_SCORE
    min_results: int = MIN_RESULTS
    diversity: float = 0.0
    explain: bool = False


DRAFT_FIELDS = ", ".join(sorted(DraftBody.model_fields))
draft_schema = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": DraftBody.model_json_schema()}}}
}


def draft_of(raw: bytes) -> tuple[str, str, str | None, Query]:
    """A draft's title, text, date and lookup options from its JSON body; an InvalidParameterError names
    the first field that is wrong. The draft routes and their fast path read a body with it alike."""
    try:
        draft = DraftBody.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise InvalidParameterError(f"unknown field {where!r}: the fields are {DRAFT_FIELDS}") from None
        if first["type"] == "model_type":
            raise InvalidParameterError("send a JSON object with the draft's title and text") from None
        raise InvalidParameterError(f"{where}: {first['msg']}" if where else first["msg"]) from None
    for name in ("published", "after", "before"):
        value = getattr(draft, name)
        if value is not None:
            try:
                parse_published(value)
            except ValueError as exc:
                problem = str(exc).replace(" in 'published'", "")  # named here, as the field it is
                raise InvalidParameterError(f"{name}: {problem}") from None
    query = Query(
        k=draft.k,
        section=draft.section,
        exclude=tuple(draft.exclude or ()),
        after=draft.after,
        before=draft.before,
        newer=not draft.no_newer,
        diversity=draft.diversity,
        min_score=draft.min_score,
        min_results=draft.min_results,
        explain=draft.explain,
    )
    text = draft.text if "text" in draft.model_fields_set else draft.body
    return draft.title, text, draft.published, query


def results_of(results: list[Related], explain: bool) -> list[dict[str, Any]]:
    """Results as the API returns them: the same from the store and the model (the store keeps no raw
    similarity, so it is given only with ``explain``, which the model answers)."""
    if explain:
        return [r.to_dict() for r in results]
    # Built field by field, in to_dict's order: dataclasses.asdict costs more than the store's read.
    return [
        {
            "id": r.id,
            "title": r.title,
            "url": r.url,
            "published": r.published,
            "section": r.section,
            "score": round(r.score, 6),
        }
        for r in results
    ]
