"""The API's routers, by resource: lookups, writes (token required), status, and the editors' page.

Their paths name an article id ``{article_id:id}``: the convertor is registered here, before any router
declares a route."""

from __future__ import annotations

from starlette.convertors import PathConvertor, register_url_convertor


class IdConvertor(PathConvertor):
    """An article id in a route's path: any text, "/" and line breaks too, so that every id
    recommender.corpus.check_id accepts has its routes, and one it refuses is told why (not a bare 404)."""

    regex = r"[\s\S]*"


register_url_convertor("id", IdConvertor())
