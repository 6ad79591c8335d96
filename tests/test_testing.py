"""`schema_specialist.testing`: the public helpers users put in their own property tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from schema_specialist.generate.questions import answer_text, missing_facts
from schema_specialist.schema import schema_from_dict
from schema_specialist.testing import (
    WORDS,
    as_schema,
    assert_matches,
    assert_valid_json,
    instances,
    questions,
    realistic_schema,
)
from tests.conftest import ORDER_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "schemas" / "agent_status.json"
ORDER = schema_from_dict(ORDER_SCHEMA)
FAST = settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))


ANSWERS: dict[str, str] = {}


def perfect_model(question: str) -> str:
    """Stands in for a specialist: the test registers the answer it should give."""
    return ANSWERS[question]


@FAST
@given(questions(ORDER_SCHEMA))
def test_doc_example_property(pair: tuple[str, Any]) -> None:
    """The module docstring's example, with a perfect stand-in model."""
    question, instance = pair
    ANSWERS[question] = answer_text(instance, ORDER)
    value = assert_valid_json(perfect_model(question), ORDER_SCHEMA)
    assert_matches(value, instance)


@FAST
@given(questions(AGENT))
def test_questions_are_faithful_and_valid(pair: tuple[str, Any]) -> None:
    question, instance = pair
    schema = as_schema(AGENT)
    assert schema.is_valid(instance)
    assert not missing_facts(question, instance, schema)
    assert isinstance(question, str) and question


@FAST
@given(instances(AGENT))
def test_realistic_instances_are_ordinary(instance: dict[str, Any]) -> None:
    assert re.fullmatch(WORDS[1:-1], instance["task"])
    assert all(isinstance(v, int) and 0 <= v <= 1_000_000 for k, v in instance["metrics"].items()
               if k == "tokens_used")
    for inc in instance["incidents"]:
        assert inc["summary"].isascii()


def test_realistic_schema_only_narrows() -> None:
    schema = as_schema(AGENT)
    narrowed = realistic_schema(schema)
    assert "$ref" not in json.dumps(narrowed)  # refs inlined
    metrics = narrowed["properties"]["metrics"]["properties"]
    assert metrics["tokens_used"]["minimum"] == 0 and metrics["tokens_used"]["maximum"] == 1_000_000
    assert metrics["tool_calls"]["maximum"] == 10000  # the schema's own bound wins
    assert narrowed["properties"]["agent_id"]["pattern"] == "^agent-[0-9]{3}$"  # its own pattern is kept
    assert narrowed["properties"]["task"]["pattern"] == WORDS
    assert narrowed["properties"]["state"] == schema.raw["properties"]["state"]


def test_assert_valid_json_reasons() -> None:
    ok = '{"id":"A1","status":"paid","total":3}'
    assert assert_valid_json(ok, ORDER_SCHEMA) == {"id": "A1", "status": "paid", "total": 3}
    with pytest.raises(AssertionError, match=r"not valid JSON .*Here you go"):
        assert_valid_json("Here you go: {}", ORDER_SCHEMA)
    with pytest.raises(AssertionError, match=r"at /total: .*maximum.*\[maximum\]"):
        assert_valid_json('{"id":"A1","status":"paid","total":1e9}', ORDER)
    with pytest.raises(AssertionError, match=r"'status' is a required property.*\[required\]"):
        assert_valid_json('{"id":"A1","total":1}', ORDER)


def test_assert_matches() -> None:
    assert_matches({"a": 1.0, "b": [True]}, {"a": 1, "b": [True]})
    with pytest.raises(AssertionError, match=r"2 field\(s\) differ: /a: expected 1, got 2; /b/0: expected true, got nothing"):
        assert_matches({"a": 2, "b": []}, {"a": 1, "b": [True]})
    with pytest.raises(AssertionError, match="expected true, got 1"):
        assert_matches({"x": 1}, {"x": True})


def test_realistic_instances_never_hold_an_empty_optional_object() -> None:
    """`{"retry": {}}` validates, but no request asks for it; an object with required fields is left alone."""
    raw = {"type": "object", "properties": {
        "retry": {"type": "object", "properties": {"count": {"type": "integer"}, "on": {"type": "boolean"}}},
        "owner": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}
    schema = schema_from_dict(raw)
    narrowed = realistic_schema(schema)
    assert narrowed["properties"]["retry"]["minProperties"] == 1
    assert "minProperties" not in narrowed["properties"]["owner"]
    seen: list[Any] = []

    @settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(instances(schema))
    def draw(v: Any) -> None:
        seen.append(v)

    draw()
    assert seen and all(v != {} and v.get("retry") != {} for v in seen)
