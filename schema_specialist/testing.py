"""Property-based testing helpers for your own test suite: questions built from a schema, answer checks.

A pytest property test of a specialist (or any answer function) needs three lines:

    from hypothesis import given, settings
    from schema_specialist.testing import assert_matches, assert_valid_json, questions

    SCHEMA = "schemas/order.json"

    @settings(max_examples=25, deadline=None, database=None)
    @given(questions(SCHEMA))
    def test_answers_are_valid(pair):
        question, instance = pair
        text = my_model_answer(question)       # your code: the specialist's unconstrained answer
        value = assert_valid_json(text, SCHEMA)  # AssertionError with a readable reason
        assert_matches(value, instance)          # the question states every value: they must come back

`questions` draws schema instances with hypothesis-jsonschema (narrowed for realism: plain words for free
text, bounded numbers, well-formed dates; every instance still validates against the original schema)
and renders each as the natural-language request that `schemagen generate` would have written.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from .bounds import first_number
from .generate.questions import leaves, missing_facts, render_question
from .schema import Schema, load_schema, schema_from_dict

__all__ = ["questions", "instances", "assert_valid_json", "assert_matches", "realistic_schema", "as_schema"]

# Free text: short ASCII words (tokenizes like real text; a subset of any unconstrained string).
WORDS = r"^[A-Za-z][A-Za-z0-9]{1,10}( [A-Za-z0-9]{1,10}){0,5}$"
# Formats replaced by a pattern that only matches well-formed, ordinary values of the format.
FORMAT_PATTERNS = {
    "date-time": r"^20[0-3][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$",
    "date": r"^20[0-3][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
    "time": r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$",
    "email": r"^[a-z]{2,8}(\.[a-z]{2,8})?@[a-z]{3,8}\.(com|org|net|io)$",
}
NUMBER_SPAN = 1_000_000


def as_schema(schema: Schema | dict[str, Any] | str | Path) -> Schema:
    """A `Schema` from a loaded schema, a dict or a schema file path."""
    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, dict):
        return schema_from_dict(schema)
    return load_schema(schema)


def realistic_schema(schema: Schema) -> dict[str, Any]:
    """The decoding schema (refs inlined, sizes capped), narrowed further towards everyday values.

    Only narrows: free strings get a words pattern, known formats a well-formed pattern, unbounded
    numbers a +-1e6 range, an object with no required properties at least one of them. Callers still
    validate each instance against the original schema.
    """
    from .generate.grammar import PLAIN_TEXT, WORDS_TEXT, decoding_schema

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: (v if k in ("enum", "const", "required", "pattern", "format", "type") else walk(v))
               for k, v in node.items()}
        if "properties" in node and isinstance(node["properties"], dict):
            out["properties"] = {k: walk(v) for k, v in node["properties"].items()}
            if node["properties"] and not node.get("required") and "minProperties" not in node:
                out["minProperties"] = 1  # nobody asks for an empty object: "no instance id" means enabled=false
        kind = node.get("type")
        free = node.get("pattern") in (None, PLAIN_TEXT, WORDS_TEXT)  # the decoding schema's free-text pattern
        if kind == "string" and "enum" not in node and "const" not in node and free:
            fmt = node.get("format")
            if fmt is None and int(node.get("minLength") or 0) <= 40:
                out["pattern"] = WORDS
            elif isinstance(fmt, str) and fmt in FORMAT_PATTERNS:
                out.pop("format")
                out["pattern"] = FORMAT_PATTERNS[fmt]
        if kind in ("number", "integer"):
            lo, hi = first_number(node, "minimum", "exclusiveMinimum"), first_number(node, "maximum", "exclusiveMaximum")
            if hi is None:
                out["maximum"] = lo + NUMBER_SPAN if lo is not None else NUMBER_SPAN
            if lo is None:
                out["minimum"] = hi - NUMBER_SPAN if hi is not None else -NUMBER_SPAN
        return out

    narrowed = walk(decoding_schema(schema))
    return narrowed if isinstance(narrowed, dict) else schema.raw


def tidy(value: Any) -> Any:
    """Round floats to 2 decimals (hypothesis draws 1.5751613775139316e+308 and friends)."""
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    if isinstance(value, float):
        return round(value, 2)
    return value


def _tidied(value: Any, schema: Schema) -> Any:
    rounded = tidy(value)
    return rounded if schema.is_valid(rounded) else value


def instances(schema: Schema | dict[str, Any] | str | Path, *, realistic: bool = True) -> st.SearchStrategy[Any]:
    """A hypothesis strategy of instances that validate against `schema` (formats checked)."""
    from hypothesis_jsonschema import from_schema

    checked = as_schema(schema)
    target = realistic_schema(checked) if realistic else checked.raw
    strategy = from_schema(target)
    if realistic:
        strategy = strategy.map(lambda v: _tidied(v, checked))
    return strategy.filter(checked.is_valid)


def questions(schema: Schema | dict[str, Any] | str | Path, *, realistic: bool = True,
              shuffle: float = 0.0) -> st.SearchStrategy[tuple[str, Any]]:
    """A hypothesis strategy of (question, instance): the question states every value of the instance
    (top-level fields in the schema's order; in a random order for a `shuffle` share of questions)."""
    checked = as_schema(schema)

    def render(pair: tuple[Any, random.Random]) -> tuple[str, Any]:
        return render_question(pair[0], checked, pair[1], shuffle), pair[0]

    return (st.tuples(instances(checked, realistic=realistic), st.randoms(use_true_random=False))
            .map(render).filter(lambda qa: not missing_facts(qa[0], qa[1], checked)))


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def assert_valid_json(text: str, schema: Schema | dict[str, Any] | str | Path) -> Any:
    """Parse `text` as JSON and validate it; return the value, or raise AssertionError saying why."""
    checked = as_schema(schema)
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"not valid JSON ({exc}): {_clip(repr(text))}") from None
    errors = checked.errors(value)
    if errors:
        import jsonschema

        best = jsonschema.exceptions.best_match(errors)
        where = "/" + "/".join(str(p) for p in best.absolute_path) if best.absolute_path else "(root)"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AssertionError(f"does not validate against {checked.title!r} at {where}: "
                             f"{_clip(best.message)} [{best.validator}]{more}")
    return value


def assert_matches(value: Any, expected: Any) -> None:
    """Every scalar of `expected` is at the same path in `value` (AssertionError naming the first misses)."""
    got = dict(leaves(value))
    misses = [(path, want, got.get(path, _MISSING)) for path, want in leaves(expected)
              if not same_scalar(got.get(path, _MISSING), want)]
    if misses:
        shown = "; ".join(f"{p}: expected {json.dumps(w)}, got {json.dumps(g) if g is not _MISSING else 'nothing'}"
                          for p, w, g in misses[:3])
        raise AssertionError(f"{len(misses)} field(s) differ: {shown}")


_MISSING = object()


def same_scalar(got: Any, want: Any) -> bool:
    """JSON scalar equality: 1 == 1.0, but true != 1."""
    if isinstance(got, bool) or isinstance(want, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got == want
    if isinstance(got, int | float) and isinstance(want, int | float):
        return float(got) == float(want)
    return bool(type(got) is type(want) and got == want)
