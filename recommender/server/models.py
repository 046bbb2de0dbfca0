"""What a lookup request says: :class:`LookupParams`, the one model of a lookup's parameters, read from the
query string of the GET routes and (as :class:`DraftBody`, with the draft) from the body of the POST routes,
unknown names refused in both; each becomes one :class:`~recommender.server.service.Query`, whose
:class:`~recommender.LookupOptions` check the values. And the results as the API answers them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidParameterError
from ..options import MIN_RESULTS, MIN_SCORE, LookupOptions, check_date
from ..ranking import Related
from .service import Query

__all__ = ["PARAMS", "DraftBody", "LookupParams", "draft_of", "draft_schema", "results_of"]


class LookupParams(BaseModel):
    """A lookup's parameters: ``k`` and the :class:`~recommender.LookupOptions` (``no_newer`` for its
    ``newer``), each described once for the API's documentation."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    k: int = Field(5, description="How many (1 to 1,000)")
    section: str | None = Field(None, description="Only this section (case-insensitive)")
    category: str | None = Field(None, description="Only this category (case-insensitive)")
    tag: str | None = Field(None, description="Only articles with this tag (case-insensitive)")
    source: str | None = Field(None, description="Only this source (site or outlet; case-insensitive)")
    exclude: list[str] = Field(default_factory=list, description="Leave out these ids (repeatable)")
    after: str | None = Field(None, description="Published on or after this ISO date")
    before: str | None = Field(None, description="Published on or before this ISO date")
    within_days: float | None = Field(None, description="Within this many days of the article (a draft: its published)")
    no_newer: bool = Field(False, description="None published after the article")
    min_score: float = Field(MIN_SCORE, description="Drop results scoring below this")
    min_results: int = Field(MIN_RESULTS, description="... unless fewer than this would remain")
    diversity: float = Field(0.0, description="0 (relevance) to 1 (variety)")
    explain: bool = Field(False, description="Each result's shared terms and similarity")

    def query(self) -> Query:
        """The lookup these parameters ask for; an InvalidParameterError names a value out of range."""
        values = {name: getattr(self, name) for name in LookupParams.model_fields if name not in ("k", "no_newer")}
        return Query(self.k, LookupOptions(**values, newer=not self.no_newer))


class DraftBody(LookupParams):
    """``POST /related``'s body: a draft and its lookup's parameters, every field strictly typed (no string
    taken for a list, a number or a boolean), and no other field."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    title: str = ""
    text: str = ""
    body: str = ""  # another name for text
    published: str | None = None


PARAMS = ", ".join(sorted(LookupParams.model_fields))
DRAFT_FIELDS = ", ".join(sorted(DraftBody.model_fields))
draft_schema = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": DraftBody.model_json_schema()}}}
}


def draft_of(raw: bytes) -> tuple[str, str, str | None, Query]:
    """A draft's title, text, date and lookup from its JSON body; an InvalidParameterError names the first
    field that is wrong. The draft routes and their fast path read a body with it alike."""
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
    check_date("published", draft.published)
    query = draft.query()
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
        | ({} if r.image is None else {"image": r.image})
        for r in results
    ]
