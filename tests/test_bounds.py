"""The schema keyword readers every step shares: numbers are never booleans, and bounds follow each draft."""

from __future__ import annotations

import pytest

from schema_specialist.bounds import first_number, int_keyword, is_number, number_bounds, within_bounds
from schema_specialist.generate.repair import _Minimal
from schema_specialist.schema import schema_from_dict


def test_booleans_are_not_numbers() -> None:
    assert is_number(3) and is_number(0.5) and not is_number(True) and not is_number("3")
    assert first_number({"minimum": True, "exclusiveMinimum": 2}, "minimum", "exclusiveMinimum") == 2
    assert first_number({}, "minimum") is None
    assert int_keyword({"maxLength": True}, "maxLength", 64) == 64 and int_keyword({"maxLength": 9}, "maxLength", 64) == 9


@pytest.mark.parametrize(("node", "bounds"), [
    ({"minimum": 0, "maximum": 1}, (0, 1, False, False)),
    ({"minimum": 0, "exclusiveMinimum": True, "maximum": 5}, (0, 5, True, False)),  # draft 4
    ({"exclusiveMinimum": False, "minimum": 2}, (2, None, False, False)),
    ({"exclusiveMinimum": 3, "minimum": 1}, (3, None, True, False)),  # draft 6+: the tighter bound wins
    ({"exclusiveMaximum": 10, "maximum": 8}, (None, 8, False, False)),
    ({"exclusiveMaximum": True}, (None, None, False, False)),  # a flag with no maximum bounds nothing
])
def test_number_bounds_by_draft(node: dict, bounds: tuple) -> None:
    assert number_bounds(node) == bounds


@pytest.mark.parametrize("node", [
    {"type": "integer", "minimum": 3, "exclusiveMinimum": True},
    {"type": "integer", "exclusiveMinimum": 3},
    {"type": "integer", "maximum": -2, "exclusiveMaximum": True},
    {"type": "number", "exclusiveMaximum": -0.5},
    {"type": "integer", "minimum": 5, "maximum": 5},
])
def test_an_invented_number_lies_inside_exclusive_bounds(node: dict) -> None:
    raw = {"type": "object", "properties": {"x": node}, "required": ["x"]}
    if True in (node.get("exclusiveMinimum"), node.get("exclusiveMaximum")):
        raw["$schema"] = "http://json-schema.org/draft-04/schema#"
    schema = schema_from_dict(raw)
    ok, value = _Minimal(schema, invent=True).value(schema.raw, 0)
    assert ok and schema.is_valid(value), value


def test_within_bounds_honours_exclusive_bounds_of_both_drafts() -> None:
    assert within_bounds(5, {"minimum": 5, "maximum": 5}) and within_bounds(-3.5, {})
    assert not within_bounds(5, {"exclusiveMinimum": 5}) and not within_bounds(5, {"maximum": 4.99})
    assert not within_bounds(1, {"maximum": 1, "exclusiveMaximum": True})  # draft 4's flag
    assert within_bounds(0.5, {"minimum": 0, "exclusiveMaximum": 1})
    assert not within_bounds(1, {"exclusiveMaximum": 1})
