"""The decoding schema (narrowing, size budget, draft-4 forms) and the per-engine loosening (`simplify`)."""

from __future__ import annotations

import json
import re
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

from schema_specialist.engines import ENGINES, loosening_ladder, rank_engines
from schema_specialist.generate.grammar import (
    VALIDATION_ONLY,
    Limits,
    anchor_regex,
    bound_regex,
    decoding_schema,
    estimate_tokens,
    keywords,
    merge,
    simplify,
)
from schema_specialist.schema import refs_in, schema_from_dict

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _dec(raw: dict[str, Any], **limits: Any) -> dict[str, Any]:
    return decoding_schema(schema_from_dict(raw), Limits(**limits))


def test_draft4_forms_become_modern_equivalents() -> None:
    raw = {"$schema": "http://json-schema.org/draft-04/schema#", "id": "http://x/y", "type": "object",
           "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 9},
                          "pair": {"type": "array", "items": [{"type": "integer", "maximum": 3, "minimum": 0},
                                                              {"type": "boolean"}],
                                   "additionalItems": False}},
           "required": ["n"]}
    d = _dec(raw)
    assert "id" not in d
    assert d["properties"]["n"] == {"type": "integer", "exclusiveMinimum": 0, "maximum": 9}
    pair = d["properties"]["pair"]
    assert pair["prefixItems"][1] == {"type": "boolean"} and "items" not in pair and pair["maxItems"] == 2


def test_refs_are_inlined_with_bounded_recursion_and_no_ref_dangles() -> None:
    raw = {"definitions": {"node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
        "required": ["name"]}}, "$ref": "#/definitions/node"}
    d = _dec(raw)
    assert refs_in(d) == [] and "definitions" not in d
    depth, node = 0, d
    while node.get("properties", {}).get("children", {}).get("maxItems"):
        node = node["properties"]["children"]["items"]
        depth += 1
    assert 1 <= depth <= 3
    assert node["properties"]["children"]["maxItems"] == 0  # the cut: an empty list ends the recursion


def test_big_schemas_drop_optional_content_to_fit_the_budget() -> None:
    leaf = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(30)}, "required": ["p0"]}
    raw = {"type": "object", "properties": {f"o{i}": leaf for i in range(30)}, "required": ["o0", "o1"]}
    d = _dec(raw)
    assert estimate_tokens(d) <= Limits().max_tokens
    assert {"o0", "o1"} <= set(d["properties"]) and d["additionalProperties"] is False
    assert "p0" in d["properties"]["o0"]["properties"]
    small = _dec({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(8)}})
    assert len(small["properties"]) == 8  # a small schema keeps every property


def test_all_of_is_merged_when_exact_and_objects_are_closed() -> None:
    raw = {"allOf": [{"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}, "required": ["a"]},
                     {"properties": {"b": {"enum": ["x", "y"]}, "a": {"maximum": 5}}}]}
    d = _dec(raw)
    assert "allOf" not in d and d["additionalProperties"] is False
    assert d["properties"]["a"] == {"type": "integer", "minimum": 0, "maximum": 5}
    assert d["required"] == ["a"]


def test_all_of_branches_stay_open_when_the_merge_is_not_exact() -> None:
    raw = {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
                     {"properties": {"b": {"type": "string"}}}]}
    d = _dec(raw)
    assert len(d["allOf"]) == 2 and "additionalProperties" not in d["allOf"][1]
    merged, exact = merge(raw["allOf"][0], raw["allOf"][1])
    assert not exact and set(merged["properties"]) == {"a", "b"}


def test_not_and_conditionals_are_left_to_validation() -> None:
    raw = {"type": "object", "properties": {"a": {"type": "integer", "not": {"const": 3}}},
           "if": {"required": ["a"]}, "then": {"required": ["a"]}}
    d = _dec(raw)
    assert not keywords(d) & VALIDATION_ONLY


def test_strings_are_bounded_patterns_anchored_formats_made_patterns() -> None:
    raw = {"type": "object", "properties": {
        "free": {"type": "string"},
        "code": {"type": "string", "pattern": "[A-Z]+-\\d+"},
        "mail": {"type": "string", "format": "email", "maxLength": 40},
        "odd": {"type": "string", "format": "uri-reference"},
        "num": {"type": "number"}}}
    p = _dec(raw)["properties"]
    assert p["free"]["maxLength"] == 48 and p["odd"]["maxLength"] == 48
    assert p["code"]["pattern"] == "^[A-Z]{1,16}-\\d{1,16}$"
    assert p["mail"]["pattern"].startswith("^") and p["mail"]["maxLength"] == 40 and "format" not in p["mail"]
    assert p["num"]["multipleOf"] == 0.001 and p["num"]["maximum"] == 1_000_000


def test_maps_get_an_entry_cap() -> None:
    d = _dec({"type": "object", "additionalProperties": {"type": "integer"}})
    assert d["maxProperties"] == 3


@pytest.mark.parametrize("pattern,expect", [
    ("^[a-z]+$", "^[a-z]{1,16}$"), ("a*b", "^a{0,16}b$"), ("^x{2,}$", "^x{2,18}$"),
    ("[+*]+", "^[+*]{1,16}$"), ("^\\d+\\+$", "^\\d{1,16}\\+$"),
])
def test_bounded_regex_matches_a_subset(pattern: str, expect: str) -> None:
    out = bound_regex(anchor_regex(pattern))
    assert out == expect
    for text in ("abc", "aab", "xx", "xxx", "+*", "12+", "zzz"):
        if re.fullmatch(out, text):
            assert re.search(pattern, text)


# ---- loosening ------------------------------------------------------------------------------------

LOOSE = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "uniqueItems": True, "maxItems": 3},
        "kind": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"enum": ["x", "y"]}]},
        "code": {"type": "string", "pattern": "^(?!zz)[a-z]{2}$"},
        "when": {"type": "string", "format": "uri-reference", "maxLength": 20},
    },
    "required": ["kind"],
    "additionalProperties": False,
}


@FAST
@given(data=st.data())
def test_simplify_only_loosens(data: st.DataObject) -> None:
    """Every instance of the schema is an instance of the simplified schema."""
    drop = data.draw(st.sets(st.sampled_from(["uniqueItems", "oneOf", "pattern:lookaround", "format",
                                              "format:uri-reference", "pattern", "minimum", "maximum"])))
    loose = simplify(LOOSE, drop)
    checked = schema_from_dict(loose)
    instance = data.draw(from_schema(LOOSE))
    assert checked.is_valid(instance), (drop, instance)


def test_simplify_takes_out_exactly_what_is_named() -> None:
    loose = simplify(LOOSE, {"uniqueItems", "oneOf", "pattern:lookaround", "format:uri-reference"})
    p = loose["properties"]
    assert "uniqueItems" not in p["tags"] and "anyOf" in p["kind"] and "oneOf" not in p["kind"]
    assert "pattern" not in p["code"] and p["code"]["maxLength"] == 48
    assert "format" not in p["when"] and p["when"]["maxLength"] == 20
    assert simplify(LOOSE, set()) is LOOSE


def test_simplify_merges_all_of_and_folds_pattern_properties() -> None:
    raw = {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                     {"properties": {"b": {"type": "string"}}, "required": ["b"]}],
           "patternProperties": {"^x-": {"type": "string"}}}
    loose = simplify(raw, {"allOf", "patternProperties"})
    assert set(loose["properties"]) == {"a", "b"} and loose["required"] == ["b"]
    assert loose["additionalProperties"] == {"type": "string"} and "patternProperties" not in loose


def test_each_engine_names_what_it_rejects_and_ranking_avoids_it() -> None:
    schema = {"type": "object", "properties": {"t": {"type": "array", "uniqueItems": True},
                                               "c": {"type": "string", "format": "iri"}}}
    _, _, llg = ENGINES["llguidance"].coverage(schema)
    assert {"uniqueItems", "format:iri"} <= llg
    _, _, xgr = ENGINES["xgrammar"].coverage(schema)
    assert not xgr
    assert rank_engines(schema) == ["llguidance", "xgrammar", "outlines_core"]  # faithful first, slow last
    assert rank_engines(schema, ["xgrammar", "outlines_core"]) == ["xgrammar", "outlines_core"]
    ladder = loosening_ladder(schema, ENGINES["llguidance"])
    assert ladder[0] == frozenset({"uniqueItems", "format:iri"}) and ladder[-1] >= ladder[0]
    assert "pattern:lookaround" in keywords({"pattern": "^(?=a)"})


@pytest.mark.slow
def test_pick_compiles_a_rejected_keyword_by_taking_it_out() -> None:
    from schema_specialist.checks.compile import engine_set

    engines = engine_set()
    schema = {"type": "object", "properties": {"t": {"type": "array", "items": {"type": "integer"},
                                                     "uniqueItems": True, "maxItems": 3},
                                               "d": {"type": "object", "properties": {"a": {"type": "integer"}},
                                                     "dependentRequired": {"a": ["a"]}}},
              "required": ["t"]}
    name, _, _ = engines.pick(schema, "llguidance")
    assert name == "llguidance" and engines.last is not None
    assert engines.last.dropped == ["dependentRequired", "uniqueItems"]
    with pytest.raises(Exception, match="llguidance"):
        engines.pick(schema, "llguidance", loosen=False)


def test_bench_like_schema_round_trip_is_json() -> None:
    """Decoding schemas stay plain JSON (engines read them as text)."""
    raw = {"type": "object", "properties": {"x": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "number"}}}
    assert json.loads(json.dumps(_dec(raw)))["properties"]["x"]["type"] == "number"


class _Texts:
    """A teacher that writes given texts: instances of a loosened grammar, as an engine would."""

    def __init__(self, texts: list[str]) -> None:
        from schema_specialist.teachers import Completion, Prepared

        self.texts, self.i, self._c, self._p = texts, 0, Completion, Prepared

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Any:
        return self._p("texts")

    def complete(self, prompts: list[Any], **_: Any) -> list[Any]:
        out = [self._c(self.texts[(self.i + k) % len(self.texts)]) for k in range(len(prompts))]
        self.i += len(prompts)
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "texts", "spec": "texts"}


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_loosened_grammar_output_still_yields_only_valid_pairs(tmp_path_factory: Any, data: st.DataObject) -> None:
    """Candidates drawn from the loosened grammar: validation (and repair) keep every emitted pair valid."""
    from schema_specialist.generate import GenerateConfig, generate

    loose = simplify(LOOSE, {"uniqueItems", "oneOf", "pattern:lookaround", "format:uri-reference", "minimum"})
    texts = [json.dumps(c) for c in data.draw(st.lists(from_schema(loose), min_size=1, max_size=6))]
    tmp = tmp_path_factory.mktemp("loose")
    (tmp / "s.json").write_text(json.dumps(LOOSE))
    generate(tmp / "s.json", tmp / "out", GenerateConfig(n=len(texts), max_candidates=len(texts), progress=False),
             teacher=_Texts(texts))  # type: ignore[arg-type]
    checked = schema_from_dict(LOOSE)
    for split in ("train", "val", "test"):
        for line in (tmp / "out" / f"{split}.jsonl").read_text().splitlines():
            assert checked.is_valid(json.loads(json.loads(line)["messages"][-1]["content"]))


def test_unconstrained_values_and_free_objects_become_small_shapes() -> None:
    raw = {"type": "object", "properties": {
        "any": {"description": "anything"}, "bag": {"type": "object"},
        "part": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"description": "x"}]}},
        "required": ["any", "bag"]}
    p = _dec(raw)["properties"]
    assert p["any"] == {"description": "anything", "type": "string", "maxLength": 48}
    assert p["bag"]["additionalProperties"] == {"type": "string", "maxLength": 48} and p["bag"]["maxProperties"] == 3
    assert p["part"]["properties"]["a"]["type"] == "integer"  # an allOf branch is not narrowed to a string


def test_schema_dependencies_become_unconditional() -> None:
    raw = {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}},
           "dependencies": {"kind": {"oneOf": [
               {"properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["x"],
                "additionalProperties": False},
               {"properties": {"kind": {"const": "b"}}, "additionalProperties": False}]}}}
    d = _dec(raw)
    assert "dependencies" not in d and len(d["oneOf"]) == 2 and "additionalProperties" not in d


# ---- the grammar an answer is decoded under -------------------------------------------------------

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["name", "opened", "tags", "score"],
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 60},
        "opened": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
        "score": {"type": "number", "minimum": 0},
        "extra": {"type": "object"},
    },
}
# Values people write that the teacher's steering (caps, word patterns, day <= 28, 3 items, 1e6, 3
# decimals) excludes: the answer grammar must allow every one of them.
REAL_ANSWER = {"name": "Lucía O'Brien-Smith, the accounts lead at ACME (EMEA)", "opened": "2026-01-30",
               "tags": ["sso", "okta", "p1", "login", "regression"], "score": 5000000.1234,
               "extra": {"nested": [1, {"a": None}]}}


def test_answer_schema_keeps_every_value_the_schema_allows() -> None:
    from jsonschema import Draft202012Validator

    from schema_specialist.generate.grammar import answer_schema

    schema = schema_from_dict(PERSON_SCHEMA)
    assert schema.is_valid(REAL_ANSWER)
    steered = decoding_schema(schema)
    assert not Draft202012Validator(steered).is_valid(REAL_ANSWER)  # the teacher's grammar narrows
    answer = answer_schema(schema)
    assert Draft202012Validator(answer).is_valid(REAL_ANSWER), list(Draft202012Validator(answer).iter_errors(
        REAL_ANSWER))
    assert answer["properties"]["name"] == PERSON_SCHEMA["properties"]["name"]
    assert answer["properties"]["opened"] == {"type": "string", "format": "date"}
    assert answer["properties"]["tags"]["maxItems"] == 8
    assert answer["additionalProperties"] is False  # keys still come from the schema


@given(st.data())
@FAST
def test_answer_schema_only_narrows_by_closing_objects(data: st.DataObject) -> None:
    """An instance of the original (objects closed) is an instance of the answer schema."""
    from jsonschema import Draft202012Validator, FormatChecker

    from schema_specialist.generate.grammar import answer_schema

    raw = {**PERSON_SCHEMA, "properties": {k: v for k, v in PERSON_SCHEMA["properties"].items() if k != "extra"}}
    value = data.draw(from_schema(raw))
    answer = answer_schema(schema_from_dict(raw))
    assert Draft202012Validator(answer, format_checker=FormatChecker()).is_valid(value)
