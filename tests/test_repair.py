"""Repairs: small, schema-determined fixes, validated again; what cannot be fixed stays rejected."""

from __future__ import annotations

from typing import Any

import pytest

from schema_specialist.generate.repair import repair
from schema_specialist.schema import schema_from_dict


def _fix(schema: dict[str, Any], instance: Any) -> tuple[Any, list[str]]:
    return repair(instance, schema_from_dict(schema))


@pytest.mark.parametrize("schema,bad,good", [
    ({"const": "v1"}, "v2", "v1"),
    ({"enum": ["Open", "Closed"]}, "open", "Open"),
    ({"type": "integer", "minimum": 1, "maximum": 5}, 9, 5),
    ({"type": "integer", "multipleOf": 5}, 12, 10),
    ({"type": "integer"}, 2.0, 2),
    ({"type": "number"}, "3.5", 3.5),
    ({"type": "string", "maxLength": 3}, "abcdef", "abc"),
    ({"type": "string", "minLength": 4}, "ab", "abxx"),
    ({"type": "array", "uniqueItems": True}, [1, 1, 2], [1, 2]),
    ({"type": "string", "format": "date"}, "2024-02-31", "2024-05-17"),
    ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "minimum": 0,
      "exclusiveMinimum": True}, 0, 1),
])
def test_single_keyword_fixes(schema: dict[str, Any], bad: Any, good: Any) -> None:
    fixed, remaining = _fix(schema, bad)
    assert remaining == [] and fixed == good


def test_missing_required_is_filled_only_with_schema_determined_values() -> None:
    schema = {"type": "object", "properties": {
        "version": {"const": 2}, "mode": {"type": "string", "default": "auto"}, "tags": {"type": "array"},
        "meta": {"type": "object", "properties": {"k": {"enum": ["only"]}}, "required": ["k"]}},
        "required": ["version", "mode", "tags", "meta"]}
    fixed, remaining = _fix(schema, {})
    assert remaining == [] and fixed == {"version": 2, "mode": "auto", "tags": [], "meta": {"k": "only"}}
    _, remaining = _fix({"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}, {})
    assert remaining and remaining[0].startswith("required")  # no value is made up


def test_min_items_and_dependencies_are_completed() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": ["null", "string"]},
        "xs": {"type": "array", "items": {"type": "null"}, "minItems": 2}},
        "dependentRequired": {"a": ["b"]}}
    fixed, remaining = _fix(schema, {"a": "x", "xs": []})
    assert remaining == [] and fixed == {"a": "x", "b": None, "xs": [None, None]}


def test_any_of_follows_the_closest_branch() -> None:
    schema = {"anyOf": [{"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}},
                         "required": ["n"], "additionalProperties": False},
                        {"type": "string"}]}
    fixed, remaining = _fix(schema, {"n": 7, "extra": True})
    assert remaining == [] and fixed == {"n": 3}


def test_extra_keys_outside_pattern_properties_are_dropped() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}},
              "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False}
    fixed, remaining = _fix(schema, {"id": 1, "x-a": "k", "other": 2})
    assert remaining == [] and fixed == {"id": 1, "x-a": "k"}


def test_unfixable_stays_invalid_and_valid_is_untouched() -> None:
    _, remaining = _fix({"type": "string", "pattern": "^[0-9]+$"}, "abc")
    assert remaining and remaining[0].startswith("pattern")
    _, remaining = _fix({"not": {"const": 1}}, 1)
    assert remaining
    value = {"a": [1, 2]}
    fixed, remaining = _fix({"type": "object"}, value)
    assert fixed is value and remaining == []


def test_required_in_an_any_of_branch_uses_the_enclosing_property_schema() -> None:
    schema = {"type": "object", "properties": {"start": {"type": "string", "default": "2024-01-01"},
                                               "sample": {"type": "string"}},
              "anyOf": [{"required": ["start"]}, {"required": ["sample"]}]}
    fixed, remaining = _fix(schema, {})
    assert remaining == [] and fixed == {"start": "2024-01-01"}
    _, remaining = _fix({**schema, "properties": {"start": {"type": "string"}, "sample": {"type": "string"}}}, {})
    assert remaining and remaining[0].startswith("anyOf")  # no made-up value, and no bogus null
