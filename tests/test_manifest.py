"""The manifest's JSON Schema and the validator that reads it: the schema is valid JSON Schema (draft
2020-12) in the keywords the validator knows, and the validator agrees with the jsonschema package on
which manifests break it and where."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from recommender import read_manifest
from recommender._manifest import KEYWORDS, MANIFEST_SCHEMA, VERSION_SCHEMA, schema_problem

REFERENCE = Draft202012Validator(MANIFEST_SCHEMA)


def schemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``schema`` and every schema inside it."""
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from schemas(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from schemas(schema[key])


@pytest.mark.parametrize("schema", [MANIFEST_SCHEMA, VERSION_SCHEMA], ids=["manifest", "version"])
def test_the_schema_is_json_schema_in_the_keywords_the_validator_knows(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    used = {key for s in schemas(schema) for key in s}
    assert used <= KEYWORDS, used - KEYWORDS


def field(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def reference_fields(manifest: object) -> set[str]:
    """The fields jsonschema finds wrong (a missing or unexpected field named itself, as ours are)."""
    found = set()
    for error in REFERENCE.iter_errors(manifest):
        path = list(error.absolute_path)
        if error.validator == "required":
            found |= {field([*path, name]) for name in error.validator_value if name not in error.instance}
        elif error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            found |= {field([*path, name]) for name in error.instance if name not in known}
        else:
            found.add(field(path))
    return found


def paths(value: object, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*at, i))


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [0.5, 1.0, 2.0, "1", "", "recommender", "a" * 64, "0" * 64, "x/y", "model-0123456789abcdef.joblib"]
    )
    | st.sampled_from(["2026-11-30T10:15:00+00:00", "2026-11-30", "news"])
    | st.text(max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def manifest(model_path: Path) -> dict[str, Any]:
    found = read_manifest(model_path)
    assert schema_problem(found) is None and REFERENCE.is_valid(found)
    return found


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_validator_agrees_with_jsonschema_on_edited_manifests(
    manifest: dict[str, Any], data: st.DataObject
) -> None:
    edited = copy.deepcopy(manifest)
    for _ in range(data.draw(st.integers(1, 2))):
        at = data.draw(st.sampled_from(list(paths(edited))))
        parent: Any = edited
        for key in at[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if not at:
            edited = data.draw(JSON) if action == "replace" else edited
            continue
        if action == "delete" and isinstance(parent, dict):
            del parent[at[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=6))] = data.draw(JSON)
        else:
            parent[at[-1]] = data.draw(JSON)
    ours = schema_problem(edited)
    theirs = reference_fields(edited)
    assert (ours is None) == (not theirs), (ours, theirs)
    if ours is not None:
        assert ours.field in theirs, (ours, theirs)
