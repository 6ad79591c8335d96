"""The batched decoder: same tokens as transformers' greedy search, rows dropped as they finish, grammars."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schema_specialist.generate.balance import rebalance
from schema_specialist.generate.decoding import apply_bitmask, chat_ids, decode, stop_ids_of
from schema_specialist.schema import schema_from_dict
from tests.conftest import ORDER_SCHEMA


@pytest.fixture(scope="module")
def tiny(tiny_mistral_dir: Path) -> Any:
    from schema_specialist.models import load_model

    return load_model(str(tiny_mistral_dir), dtype="float32")


def _prompts(tok: Any) -> list[list[int]]:
    questions = ["Order A-1, paid, 12 dollars.", "hi", "A much longer request that pads the others: order "
                 "B-22 was shipped yesterday and came to 99.5 dollars in total, please record it."]
    return [chat_ids(tok, [{"role": "user", "content": q}]) for q in questions]


def test_apply_bitmask_bans_every_token_whose_bit_is_clear() -> None:
    import torch

    logits = torch.zeros(2, 40)
    mask = torch.zeros(2, 2, dtype=torch.int32)
    mask[0, 0] = 0b101  # tokens 0 and 2
    mask[1, 1] = 1 << 3  # token 35
    apply_bitmask(logits, mask)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 2]
    assert torch.isfinite(logits[1]).nonzero().flatten().tolist() == [35]


def test_greedy_batch_matches_transformers_generate_row_by_row(tiny: Any) -> None:
    import torch

    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)
    stop = stop_ids_of(model, tok)
    got = decode(model, prompts, stop_ids=stop, pad_id=int(tok.pad_token_id or 0), max_new_tokens=12)
    assert [d.prompt_tokens for d in got] == [len(p) for p in prompts]  # results come back in prompt order
    for p, d in zip(prompts, got, strict=True):
        with torch.inference_mode():
            ref = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                 max_new_tokens=12, do_sample=False, pad_token_id=int(tok.pad_token_id or 0))
        want = [t for t in ref[0, len(p):].tolist()]
        cut = next((i for i, t in enumerate(want) if t in stop), None)
        assert d.tokens == (want if cut is None else want[:cut])
        assert d.truncated == (cut is None and len(want) == 12)


def test_rows_finish_at_their_stop_token_and_leave_the_batch(tiny: Any) -> None:
    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)
    first = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=6)
    # Make the 3rd token each row writes its stop token: rows end at different steps.
    stops = {d.tokens[2] for d in first}
    got = decode(model, prompts, stop_ids=stops, pad_id=0, max_new_tokens=6)
    for full, d in zip(first, got, strict=True):
        k = next(i for i, t in enumerate(full.tokens) if t in stops)
        assert d.tokens == full.tokens[:k] and not d.truncated


def test_a_row_its_check_calls_hopeless_leaves_the_batch(tiny: Any) -> None:
    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)
    full = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=8)

    class AfterThree:
        def hopeless(self, tokens: list[int]) -> bool:
            return len(tokens) >= 3

    class Never:
        def hopeless(self, tokens: list[int]) -> bool:
            return False

    cut = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=8, give_up=AfterThree)
    for whole, d in zip(full, cut, strict=True):
        assert d.tokens == whole.tokens[:3] and d.abandoned and not d.truncated
    kept = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=8, give_up=Never)
    assert [d.tokens for d in kept] == [d.tokens for d in full] and not any(d.abandoned for d in kept)


def test_sampling_is_reproducible_with_a_seed(tiny: Any) -> None:
    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)
    a = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=8, temperature=1.0, top_p=0.9, seed=3)
    b = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=8, temperature=1.0, top_p=0.9, seed=3)
    assert [d.tokens for d in a] == [d.tokens for d in b]


def order_matcher(loaded: Any, engine: str) -> Any:
    """`engine`'s per-row matcher factory for ORDER_SCHEMA on a loaded model."""
    import outlines

    from schema_specialist.engines import EngineSet

    engines = EngineSet(outlines.from_transformers(loaded.model, loaded.tokenizer))
    name, processor, _ = engines.pick(ORDER_SCHEMA, engine)
    rows = engines.get(name).row_constraint(processor)
    assert rows is not None
    return rows


@pytest.mark.parametrize("engine", ["llguidance", "xgrammar"])
def test_grammar_rows_write_valid_json_even_from_a_random_model(tiny: Any, engine: str) -> None:
    model, tok = tiny.model, tiny.tokenizer
    rows = order_matcher(tiny, engine)
    got = decode(model, _prompts(tok) * 2, stop_ids=stop_ids_of(model, tok), pad_id=0, max_new_tokens=200,
                 temperature=1.0, seed=1, constraint=rows, batch_size=4)
    for d in got:
        assert not d.error and not d.truncated
        value = json.loads(tok.decode(d.tokens, skip_special_tokens=True))
        assert set(value) <= set(ORDER_SCHEMA["properties"])
        assert value["status"] in ORDER_SCHEMA["properties"]["status"]["enum"]


def test_rebalance_draws_enums_and_booleans_and_keeps_the_instance_valid() -> None:
    schema = schema_from_dict({
        "type": "object", "properties": {
            "s": {"enum": ["a", "b", "c", "d"]}, "f": {"type": "boolean"}, "n": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/i"}}},
        "$defs": {"i": {"type": "object", "properties": {"k": {"enum": ["x", "y"]}}}}})
    seen_s, seen_f, seen_k = set(), set(), set()
    for i in range(40):
        out = rebalance({"s": "a", "f": True, "n": 7, "items": [{"k": "x"}]}, schema, random.Random(i))
        jsonschema.validate(out, schema.raw)
        assert out["n"] == 7
        seen_s.add(out["s"])
        seen_f.add(out["f"])
        seen_k.add(out["items"][0]["k"])
    assert seen_s == {"a", "b", "c", "d"} and seen_f == {True, False} and seen_k == {"x", "y"}


def test_rebalance_undoes_a_draw_that_breaks_a_cross_field_rule() -> None:
    schema = schema_from_dict({"type": "object", "properties": {"s": {"enum": ["a", "b"]}},
                               "not": {"properties": {"s": {"const": "b"}}}})
    for i in range(20):
        assert rebalance({"s": "a"}, schema, random.Random(i)) == {"s": "a"}



INCIDENT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["task", "incidents", "id"], "additionalProperties": False,
    "properties": {
        "task": {"type": "string", "minLength": 3, "maxLength": 40},
        "id": {"type": "string", "pattern": "^[A-Z]-[0-9]$"},
        "incidents": {"type": "array", "maxItems": 5, "uniqueItems": True, "items": {
            "type": "object", "required": ["summary", "level"], "additionalProperties": False,
            "properties": {"summary": {"type": "string", "maxLength": 30}, "level": {"enum": ["low", "high"]}}}}}}


def test_vary_shape_spreads_list_lengths_and_the_case_and_length_of_free_text() -> None:
    from schema_specialist.generate.balance import ShapePool, vary_shape

    schema = schema_from_dict(INCIDENT_SCHEMA)
    pool = ShapePool(schema)
    teacher = [{"task": f"Task number {w}", "id": "A-1", "incidents": [{"summary": f"Disk {w} full", "level": "low"}]}
               for w in ("one", "two", "three", "four", "five", "six")]
    for v in teacher:
        pool.add(v)
    lengths, lower, longer = set(), 0, 0
    for i in range(200):
        v = teacher[i % len(teacher)]
        out = vary_shape(v, schema, random.Random(i), pool, max_items=4, extend=0.3)
        jsonschema.validate(out, schema.raw)
        assert out["id"] == "A-1"  # a patterned string is never touched
        lengths.add(len(out["incidents"]))
        lower += out["task"][0].islower()
        longer += len(out["task"].split()) > 3
        assert all(x["summary"].lower().startswith("disk ") for x in out["incidents"])  # items from the pool
    assert lengths == {0, 1, 2, 3, 4}  # the teacher wrote one incident every time
    assert 60 < lower < 140 and 30 < longer < 100


def test_vary_shape_keeps_the_schema_bounds_and_undoes_an_invalid_draw() -> None:
    from schema_specialist.generate.balance import ShapePool, vary_shape

    tight = {**INCIDENT_SCHEMA, "properties": {**INCIDENT_SCHEMA["properties"], "incidents": {
        **INCIDENT_SCHEMA["properties"]["incidents"], "minItems": 1, "maxItems": 2}}}
    schema = schema_from_dict(tight)
    pool = ShapePool(schema)
    v = {"task": "Check the logs", "id": "B-2", "incidents": [{"summary": "Full", "level": "low"}]}
    for s in ("Disk full on the primary node", "Timeout"):
        pool.add({**v, "task": s, "incidents": [{"summary": s[:30], "level": "high"}]})
    for i in range(50):
        out = vary_shape(v, schema, random.Random(i), pool)
        jsonschema.validate(out, schema.raw)
        assert 1 <= len(out["incidents"]) <= 2 and len(out["task"]) <= 40
    # no pool: nothing to add, so lists only get shorter, never invalid
    out = vary_shape(v, schema, random.Random(0), ShapePool(schema))
    assert len(out["incidents"]) == 1



NUMBERS_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["tokens", "cost_usd", "progress", "calls", "ratio"],
    "properties": {
        "tokens": {"type": "integer", "minimum": 0, "description": "tokens consumed"},
        "cost_usd": {"type": "number", "minimum": 0, "description": "spend in dollars"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1, "description": "fraction done"},
        "calls": {"type": "integer", "minimum": 1, "exclusiveMaximum": 50},
        "ratio": {"type": "number", "multipleOf": 0.5},
        "level": {"type": "integer", "enum": [1, 2, 3]}}}


def test_vary_numbers_flattens_a_teachers_favourite_numbers_within_the_bounds() -> None:
    from schema_specialist.generate.balance import NumberPool, vary_numbers

    schema = schema_from_dict(NUMBERS_SCHEMA)
    pool = NumberPool()
    outs = []
    for i in range(400):  # the teacher: 0 tokens, no cost, progress 1 nearly every time; varied calls
        teacher = {"tokens": 0 if i % 10 else 4000 + i, "cost_usd": 0.0, "progress": 1, "calls": 1 + i % 49,
                   "ratio": 1.5, "level": 2}
        outs.append(vary_numbers(teacher, schema, random.Random(i), pool))
    for out in outs:
        jsonschema.validate(out, schema.raw)
        assert out["ratio"] == 1.5 and out["level"] == 2  # pinned by multipleOf / enum: never drawn
        assert isinstance(out["tokens"], int) and isinstance(out["calls"], int)
        assert round(out["cost_usd"], 2) == out["cost_usd"]  # money keeps cents, no more
        assert round(out["progress"], 2) == out["progress"]
    late = outs[100:]
    tokens = [o["tokens"] for o in late]
    assert sum(t == 0 for t in tokens) < 0.3 * len(late)  # was 90%
    assert sum(t >= 1000 for t in tokens) > 60 and sum(t >= 100_000 for t in tokens) > 10  # up to millions
    assert len({o["progress"] for o in late}) > 30
    assert [o["calls"] for o in outs] == [1 + i % 49 for i in range(400)]  # varied by the teacher: kept
    assert all(o["tokens"] == 0 for o in outs[:19] if o["tokens"] < 4000)  # too few seen yet to judge
    # a draw that breaks a rule the walk cannot see is undone
    strict = schema_from_dict({**NUMBERS_SCHEMA, "not": {"properties": {"tokens": {"minimum": 1}}}})
    pool = NumberPool(min_seen=1)
    teacher = {"tokens": 0, "cost_usd": 0.0, "progress": 1, "calls": 1, "ratio": 1.5}
    assert all(vary_numbers(teacher, strict, random.Random(i), pool)["tokens"] == 0 for i in range(30))


def assert_writable(rows: Any, tokenizer: Any, vocab: int, value: Any) -> None:
    """Every token of `value`'s compact JSON is allowed, in turn, by a fresh matcher from `rows`."""
    import torch

    row = rows()
    for token in tokenizer(json.dumps(value, ensure_ascii=False, separators=(",", ":")),
                           add_special_tokens=False)["input_ids"]:
        mask = torch.zeros((1, (vocab + 31) // 32), dtype=torch.int32)
        row.fill(mask, 0)
        assert (int(mask[0, token // 32]) >> (token % 32)) & 1, tokenizer.decode([token])
        assert row.accept(token)


def test_the_served_grammar_accepts_values_the_teacher_grammar_would_not(tiny: Any) -> None:
    """The server's strict and fallback paths decode under the schema itself: an accented name, day 30,
    five tags and four decimals stay writable, token by token."""
    from schema_specialist.serve.grammars import Grammars
    from tests.test_grammar import PERSON_SCHEMA, REAL_ANSWER

    raw = {**PERSON_SCHEMA, "properties": {k: v for k, v in PERSON_SCHEMA["properties"].items() if k != "extra"}}
    grammar = Grammars(tiny.model, tiny.tokenizer).get(schema_from_dict(raw))
    assert_writable(grammar.rows, tiny.tokenizer, tiny.model.config.vocab_size,
                    {k: v for k, v in REAL_ANSWER.items() if k != "extra"})


def test_output_head_gets_plain_strides_for_frozen_weights(tiny_mistral_dir: Path) -> None:
    """A frozen model (as PEFT leaves it) with `logits_to_keep=1` hands its head a strided slice; torch then
    copies the head's weight once a row. `fold_output_head` gives the head a plain copy of the slice."""
    import torch

    from schema_specialist.generate.decoding import fold_output_head
    from schema_specialist.models import load_model

    model = load_model(str(tiny_mistral_dir), dtype="float32").model
    model.requires_grad_(False)
    head = model.get_output_embeddings()
    ids = torch.randint(5, 100, (3, 7))
    with torch.inference_mode():
        want = model(input_ids=ids, logits_to_keep=1).logits
    seen: list[tuple[int, ...]] = []
    fold_output_head(model)
    fold_output_head(model)  # once per head
    head.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].stride())))
    with torch.inference_mode():
        got = model(input_ids=ids, logits_to_keep=1).logits
    hidden = model.config.hidden_size
    assert seen == [(hidden, hidden, 1)]
    assert len(head._forward_pre_hooks) == 2
    assert torch.allclose(got, want, atol=1e-5)  # mm and bmm round differently
