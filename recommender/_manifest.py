"""The model manifest's JSON Schema (format 1), and the first way a manifest breaks it, in words; and the
first field in which a manifest contradicts the model file it names.

Fields that older saves of format 1 lack (``updates``; parameters added since) are optional, and fields
this version does not know are allowed, so that manifests written before and after it still read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["KEYWORDS", "MANIFEST_SCHEMA", "VERSION_SCHEMA", "SchemaProblem", "disagreement", "schema_problem"]

_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_SHA256: dict[str, Any] = {
    "type": "string",
    "pattern": "^[0-9a-f]{64}$",
    "description": "a SHA-256 digest (64 lowercase hexadecimal digits)",
}
_COUNTS: dict[str, Any] = {"type": "object", "additionalProperties": _COUNT}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "recommender model manifest, format 1",
    "type": "object",
    "required": [
        "format_version",
        "package",
        "package_version",
        "versions",
        "params",
        "corpus",
        "terms",
        "nonzeros",
        "created_at",
        "model_file",
    ],
    "properties": {
        "format_version": {"type": "integer"},
        "package": {"const": "recommender"},
        "package_version": {"type": "string"},
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "params": {
            "type": "object",
            # The parameters of the first format-1 models; the others came later and default on load.
            "required": ["stem", "ngram_range", "title_weight", "min_df", "max_df", "sublinear_tf"],
            "additionalProperties": False,
            "properties": {
                "stem": {"type": "boolean"},
                "stopwords": {"type": "string"},
                "numbers": {"type": "boolean"},
                "ngram_range": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": 2,
                    "maxItems": 2,
                    "description": "two whole numbers [shortest, longest]",
                },
                "title_weight": {"type": "integer", "minimum": 1},
                "min_df": {"type": "number", "exclusiveMinimum": 0},
                "max_df": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "sublinear_tf": {"type": "boolean"},
                "half_life_days": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "time_weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "topic_dims": {"type": ["integer", "null"], "minimum": 1},
                "dedup": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
                "semantic": {"type": "boolean"},
            },
        },
        "corpus": {
            "type": "object",
            "required": ["articles", "checksum", "sections", "sources", "empty_bodies"],
            "properties": {
                "articles": _COUNT,
                "checksum": _SHA256,
                "sections": _COUNTS,
                "sources": _COUNTS,
                "empty_bodies": _COUNT,
            },
        },
        "terms": _COUNT,
        "nonzeros": _COUNT,
        "created_at": {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}",
            "description": "an ISO 8601 time such as 2026-11-30T10:15:00+00:00",
        },
        "updates": {
            "type": "object",
            "required": ["generation", "added", "edited", "removed", "terms_known", "terms_unknown"],
            "additionalProperties": _COUNT,
        },
        "model_file": {
            "type": "object",
            "required": ["name", "bytes", "sha256"],
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": "^[^/\\x00]+$",
                    "description": "a file name beside the manifest (no folder)",
                },
                "bytes": _COUNT,
                "sha256": _SHA256,
            },
        },
    },
}

# Checked first: a manifest of another format is reported as such, not as breaking this format's schema.
VERSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format_version"],
    "properties": {"format_version": MANIFEST_SCHEMA["properties"]["format_version"]},
}

_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@dataclass(frozen=True)
class SchemaProblem:
    """The first way a manifest breaks a schema: the field (``corpus.sections``, ``""`` for the whole
    manifest) and what is wrong with it, in words."""

    field: str
    text: str


# The keywords the validator below understands; a schema using another would be checked incompletely.
KEYWORDS = frozenset(
    {"$schema", "title", "description", "type", "const", "required", "properties", "additionalProperties"}
    | {"items", "minItems", "maxItems", "minimum", "exclusiveMinimum", "maximum", "pattern"}
)


def schema_problem(manifest: object, schema: dict[str, Any] = MANIFEST_SCHEMA) -> SchemaProblem | None:
    """The first way ``manifest`` breaks ``schema`` (field "corpus": "must be an object, got "x""), or ``None``.

    A validator of the JSON Schema keywords in :data:`KEYWORDS` (draft 2020-12 semantics; the tests check
    it against the jsonschema package): a fraction of a millisecond, where importing jsonschema would
    add a tenth of a second to every process's first load.
    """
    return _first_problem(manifest, schema, [])


def _first_problem(value: Any, schema: dict[str, Any], path: list[str | int]) -> SchemaProblem | None:
    """Depth first, in the schema's order: the value itself, then its items or fields."""
    if "const" in schema and not _same(value, schema["const"]):
        return _problem(path, schema, value, _shown(schema["const"]))
    if "type" in schema:
        names = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        if not any(_is(value, name) for name in names):
            return _problem(path, {}, value, " or ".join(_TYPE_NAMES[n] for n in names))
    if _is(value, "number"):
        for keyword, broken, words in (
            ("minimum", lambda v, m: v < m, "{} or more"),
            ("exclusiveMinimum", lambda v, m: v <= m, "more than {}"),
            ("maximum", lambda v, m: v > m, "{} or less"),
        ):
            if keyword in schema and broken(value, schema[keyword]):
                return _problem(path, schema, value, words.format(schema[keyword]))
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return _problem(path, schema, value, f"text matching {schema['pattern']}")
    if isinstance(value, list):
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if len(value) < lo or (hi is not None and len(value) > hi):
            size = f"at least {lo}" if hi is None else f"{lo} to {hi}"
            return _problem(path, schema, value, f"an array of {size} items")
        if "items" in schema:
            for i, item in enumerate(value):
                found = _first_problem(item, schema["items"], [*path, i])
                if found is not None:
                    return found
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                return SchemaProblem(_field([*path, name]), "is missing")
        known = schema.get("properties", {})
        for name, subschema in known.items():
            if name in value:
                found = _first_problem(value[name], subschema, [*path, name])
                if found is not None:
                    return found
        others = schema.get("additionalProperties", True)
        for name in value:
            if name in known or others is True:
                continue
            if others is False:
                return SchemaProblem(_field([*path, name]), "is not a field of this format")
            found = _first_problem(value[name], others, [*path, name])
            if found is not None:
                return found
    return None


def _is(value: object, type_name: str) -> bool:
    if type_name == "integer":  # JSON has one kind of number: 1.0 is an integer too
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    kinds: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "null": type(None),
    }
    return isinstance(value, kinds[type_name])


def _same(value: object, expected: object) -> bool:
    return value == expected and isinstance(value, bool) == isinstance(expected, bool)


def _problem(path: list[str | int], schema: dict[str, Any], value: object, wanted: str) -> SchemaProblem:
    """A value of the wrong form: "must be <the schema's description, or ``wanted``>, got <value>"."""
    return SchemaProblem(_field(path), f"must be {schema.get('description', wanted)}, got {_shown(value)}")


def _field(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def disagreement(manifest: dict[str, Any], facts: dict[str, Any], source: str) -> str | None:
    """The first field in which ``manifest`` contradicts ``facts`` (the same fields, as the model file
    ``source`` has them), in words, or ``None``. Objects are compared field by field; of ``params``
    only those the manifest has (older manifests lack the newer ones, which load with their defaults)."""
    for name, actual in facts.items():
        if name not in manifest:  # optional in the schema, and absent: nothing to contradict
            continue
        stated = manifest[name]
        if isinstance(stated, dict) and isinstance(actual, dict):
            keys = list(stated) if name == "params" else sorted(set(stated) | set(actual))
            pairs = [(f"{name}.{key}", stated.get(key, _ABSENT), actual.get(key, _ABSENT)) for key in keys]
        else:
            pairs = [(name, stated, actual)]
        for field, said, has in pairs:
            if said != has:
                return f"field '{field}' is {_stated(said)}, but the data file {source} has {_stated(has)}"
    return None


_ABSENT = object()


def _stated(value: object) -> str:
    return "no such field" if value is _ABSENT else _shown(value)
