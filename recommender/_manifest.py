"""The model manifest's JSON Schema (format 1), and the first way a manifest breaks it, in words; and the
first field in which a manifest contradicts the model file it names.

Fields that older saves of format 1 lack (``updates``; parameters added since) are optional, and fields
this version does not know are allowed, so that manifests written before and after it still read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Validator
    from jsonschema.exceptions import ValidationError

__all__ = ["MANIFEST_SCHEMA", "VERSION_SCHEMA", "disagreement", "schema_problem"]

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


_validators: dict[int, tuple[dict[str, Any], Validator]] = {}  # the schema kept with it: its id stays unique


def _validator(schema: dict[str, Any]) -> Validator:
    found = _validators.get(id(schema))
    if found is None:
        # Imported here: jsonschema takes a tenth of a second to import, paid only once a manifest is read.
        from jsonschema import Draft202012Validator

        found = _validators[id(schema)] = (schema, Draft202012Validator(schema))
    return found[1]


def schema_problem(manifest: object, schema: dict[str, Any] = MANIFEST_SCHEMA) -> str | None:
    """The first way ``manifest`` breaks ``schema`` ("field 'corpus' must be an object, got "x""), or ``None``."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema).iter_errors(manifest))
    return None if error is None else _describe(error)


def _field(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError) -> str:
    path = list(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next(name for name in expected if name not in value)
        return f"field '{_field([*path, missing])}' is missing"
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = sorted(name for name in value if name not in known)[0]
        return f"field '{_field([*path, extra])}' is not a field of this format"
    where = f"field '{_field(path)}'" if path else "the manifest"
    if kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    elif "description" in error.schema:
        wanted = error.schema["description"]
    elif kind == "const":
        wanted = _shown(expected)
    elif kind == "minimum":
        wanted = f"{expected} or more"
    elif kind == "exclusiveMinimum":
        wanted = f"more than {expected}"
    elif kind == "maximum":
        wanted = f"{expected} or less"
    else:  # a keyword this schema does not use yet: jsonschema's own words
        return f"{where} is invalid: {error.message}"
    return f"{where} must be {wanted}, got {_shown(value)}"


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
