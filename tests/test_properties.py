"""Property tests: narrowing, round-trip faithfulness, and 'every emitted pair validates'."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

from schema_specialist.generate import GenerateConfig, generate
from schema_specialist.generate.grammar import VALIDATION_ONLY, decoding_schema, simplify
from schema_specialist.generate.questions import missing_facts, render_pair, render_question
from schema_specialist.schema import load_schema, schema_from_dict
from schema_specialist.teachers import Completion, Prepared, Teacher

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schemas").glob("*.json"))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """hypothesis-jsonschema does not know `format` patterns we add; drop formats for drawing."""
    text = json.dumps(schema)
    return json.loads(text)


@FAST
@given(data=st.data())
def test_decoding_schema_only_narrows(data: st.DataObject) -> None:
    """Any instance of the decoding schema is an instance of the original, less `not`/`if`/`then`/`else`.

    Those keywords are the one loosening of `decoding_schema` (no engine enforces them; validation
    does); the engine-specific loosening is `grammar.simplify`, tested in tests/test_grammar.py.
    """
    path = data.draw(st.sampled_from([p for p in EXAMPLES if p.stem != "org_unit"]))
    schema = load_schema(path)
    narrowed = decoding_schema(schema)
    instance = data.draw(from_schema(narrowed))
    reference = schema_from_dict(simplify(schema.raw, VALIDATION_ONLY), path=path)
    assert reference.is_valid(instance), (path.name, instance)


@FAST
@given(data=st.data())
def test_questions_state_every_value(data: st.DataObject) -> None:
    """Round trip: the rendered question states every scalar of the instance."""
    schema, instance = _example(data)
    question = render_question(instance, schema, random.Random(data.draw(st.integers(0, 1000))))
    assert missing_facts(question, instance, schema) == []


@FAST
@given(data=st.data())
def test_answers_equal_the_instance_in_schema_key_order(data: st.DataObject) -> None:
    """render_pair: the answer is the instance, its keys in the schema's order whatever order the question
    states them in (list-style questions, prose_share=0, still name every field)."""
    schema, instance = _example(data)
    seed = data.draw(st.integers(0, 1000))
    question, answer = render_pair(instance, schema, random.Random(seed), shuffle=0.5)
    assert question == render_question(instance, schema, random.Random(seed), shuffle=0.5)
    value = json.loads(answer)
    assert value == instance and schema.is_valid(value)
    if isinstance(value, dict):
        props = list((schema.raw.get("properties") or {}).keys())
        assert list(value) == [k for k in props if k in value] + sorted(k for k in value if k not in props)
    assert not missing_facts(question, instance, schema)


def _example(data: st.DataObject) -> tuple[Any, Any]:
    """An example schema and an instance of its decoding schema."""
    schema = load_schema(data.draw(st.sampled_from(EXAMPLES)))
    return schema, data.draw(from_schema(decoding_schema(schema)))


def _spot(question: str, label: str) -> int:
    """Where the question states a field: `label: `, `the label is ` or `label = ` (as render_question writes)."""
    import re

    depth, quoted, escaped, top = 0, False, False, []  # top[i]: question[i] is outside (), [] and quotes
    plain = re.sub(r"(?:(?<=\[)|(?<=; ))\d+\)", lambda m: "#" * len(m.group()), question)  # "[1) (..); 2) .."
    for ch in plain:
        top.append(depth == 0 and not quoted)
        if quoted:
            quoted, escaped = (ch != '"' or escaped), (ch == "\\" and not escaped)
        elif ch == '"':
            quoted = True
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
    for m in re.finditer(rf"(?:^|(?<=[\s;,(]))(?:the )?{re.escape(label)}(?:: | is | = )", question):
        if top[m.start()]:
            return m.start()
    return -1


def _label(schema: Any, key: str) -> str:
    from schema_specialist.generate.questions import SchemaNav

    nav = SchemaNav(schema)
    return nav.label(key, nav.child(schema.raw, key))


@st.composite
def object_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """Small object schemas with enums, bounds, lengths, arrays and nesting."""
    leaf = st.one_of(
        st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
                  st.integers(-50, 50), st.integers(0, 100)),
        st.builds(lambda lo: {"type": "number", "exclusiveMinimum": lo}, st.integers(-5, 5)),
        st.builds(lambda k: {"type": "string", "minLength": 1, "maxLength": k}, st.integers(1, 10)),
        st.builds(lambda vals: {"enum": vals}, st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1,
                                                       max_size=3, unique=True)),
        st.just({"type": "boolean"}),
        st.builds(lambda k: {"type": "array", "items": {"type": "integer", "multipleOf": 5},
                             "maxItems": k, "uniqueItems": True}, st.integers(0, 3)),
    )
    names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "eps"]), min_size=1,
                          max_size=4, unique=True))
    props = {n: draw(leaf) for n in names}
    if draw(st.booleans()):
        props["inner"] = {"type": "object", "properties": {"x": draw(leaf)}, "required": ["x"],
                          "additionalProperties": False}
    required = draw(st.lists(st.sampled_from(sorted(props)), unique=True))
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _loosen(node: Any) -> Any:
    """Drop bounds so that drawn candidates are often invalid (like an engine that ignores them)."""
    if isinstance(node, dict):
        return {k: _loosen(v) for k, v in node.items()
                if k not in ("minimum", "maximum", "exclusiveMinimum", "multipleOf", "uniqueItems",
                             "maxLength", "maxItems", "additionalProperties")}
    if isinstance(node, list):
        return [_loosen(v) for v in node]
    return node


class ListTeacher(Teacher):
    kind = "list"

    def __init__(self, texts: list[str]) -> None:
        super().__init__("list")
        self.texts = texts
        self.i = 0

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        return Prepared("list")

    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        out = [Completion(self.texts[(self.i + k) % len(self.texts)]) for k in range(len(prompts))]
        self.i += len(prompts)
        return out


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(schema=object_schemas(), data=st.data())
def test_every_emitted_pair_validates(tmp_path_factory: Any, schema: dict[str, Any], data: st.DataObject) -> None:
    """Whatever the teacher writes (valid, out of bounds, broken), only valid pairs are emitted."""
    candidates = data.draw(st.lists(from_schema(_loosen(schema)), min_size=1, max_size=8))
    texts = [json.dumps(c) for c in candidates] + ["{", "[1,2]"]
    tmp = tmp_path_factory.mktemp("prop")
    path = tmp / "s.json"
    path.write_text(json.dumps(schema))
    generate(path, tmp / "out", GenerateConfig(n=len(texts), max_candidates=len(texts), progress=False),
             teacher=ListTeacher(texts))
    checked = schema_from_dict(schema)
    for split in ("train", "val", "test"):
        for line in (tmp / "out" / f"{split}.jsonl").read_text().splitlines():
            rec = json.loads(line)
            value = json.loads(rec["messages"][-1]["content"])
            assert checked.is_valid(value), value
            assert missing_facts(rec["messages"][1]["content"], value) == []
