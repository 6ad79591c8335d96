"""Strings grounded in the request (`generate.grounding`): the pattern, the schema walk, the engines, eval."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schema_specialist import evaluate as ev
from schema_specialist.generate.grammar import answer_schema
from schema_specialist.generate.grounding import ground, substring_pattern, words
from schema_specialist.generate.numbers import numbers_in
from schema_specialist.schema import load_schema
from tests.test_eval import _load_script, tiny_adapter  # noqa: F401  (tiny_adapter: a fixture)

ROOT = Path(__file__).resolve().parents[1]


def test_pattern_matches_every_run_of_words_and_nothing_invented() -> None:
    text = "agent-042 is still running the nightly invoice reconciliation, progress 0.4."
    pattern = re.compile(substring_pattern(text) or "")
    toks = words(text)
    for i in range(len(toks)):  # every run of consecutive tokens, with the spaces between them
        for j in range(i + 1, len(toks) + 1):
            run = toks[i][1] + "".join(s + t for s, t in toks[i + 1:j])
            assert pattern.match(run), run
    for ok in ("nightly invoice reconciliation", "Nightly invoice reconciliation", "agent-042", "0.4"):
        assert pattern.match(ok), ok
    for bad in ("nightly invoices reconciliation", "invoice nightly", "nightly  invoice", "task",
                "reconciliation of invoices", " nightly", "nightly ", ""):
        assert not pattern.match(bad), bad


def test_pattern_escapes_regex_syntax_and_caps_run_length() -> None:
    text = 'He said "hi" (twice) & left #3 ~ $5.00 [x] {y} a/b c-d e|f ^ 100% + 1*2? ok.\nnext line'
    pattern = re.compile(substring_pattern(text) or "")
    assert pattern.match('"hi" (twice)') and pattern.match("$5.00 [x] {y} a/b")
    assert pattern.match("ok.\nnext line") and not pattern.match("ok. next line")
    assert not pattern.match("hi (twice)")
    capped = re.compile(substring_pattern("one two three four five", max_words=3) or "")
    assert capped.match("two three four") and not capped.match("two three four five")
    assert substring_pattern("   ") is None


def test_ground_touches_free_strings_only() -> None:
    schema = {"type": "object", "properties": {
        "task": {"type": "string", "maxLength": 60},
        "id": {"type": "string", "pattern": "^agent-[0-9]{3}$"},
        "when": {"type": "string", "format": "date-time"},
        "state": {"type": "string", "enum": ["idle", "done"]},
        "long": {"type": "string", "minLength": 500},
        "tags": {"type": "array", "items": {"type": "string"}},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "n": {"type": "integer"}}}
    out = ground(schema, "tag alpha and beta")
    props = out["properties"]
    assert props["task"]["pattern"] == props["tags"]["items"]["pattern"] == props["either"]["anyOf"][0]["pattern"]
    assert props["task"]["maxLength"] == 60
    for name in ("id", "when", "state", "long", "n"):
        assert props[name] == schema["properties"][name], name
    assert schema["properties"]["task"] == {"type": "string", "maxLength": 60}  # the input is not changed
    no_strings = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert ground(no_strings, "some words") is no_strings
    assert ground(schema, "") is schema


def test_ground_narrows_numbers_to_the_ones_the_request_writes() -> None:
    schema = {"type": "object", "properties": {
        "tokens": {"type": "integer", "minimum": 0},
        "cost": {"type": "number", "minimum": 0, "description": "in dollars"},
        "share": {"type": "number", "minimum": 0, "maximum": 1},
        "rate": {"type": "number", "description": "Playback rate (1 is normal)"},
        "length": {"type": ["number", "null"], "minimum": 0},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "even": {"type": "integer", "multipleOf": 2, "maximum": 10}}}
    text = "used 15k tokens and fifty one cents, 40% done at double speed, no incidents, 3 of 7 steps"
    props = ground(schema, text, strings=False)["properties"]

    def values(node: dict[str, object]) -> list[object]:
        return [b.get("minimum", "null") for b in node["anyOf"]]  # type: ignore[attr-defined]

    # integers only; 0 from "no incidents", 1 from "fifty one", 2 from "double" (implied, not stated)
    assert values(props["tokens"]) == [0, 1, 2, 3, 7, 15, 40, 51, 15000]
    assert values(props["cost"]) == [0, 0.4, 0.51, 1, 2, 3, 7, 15, 40, 51, 15000]
    assert values(props["share"]) == [0, 0.4, 0.51, 1]  # within its bounds
    rate = {"type": "object", "properties": {"rate": schema["properties"]["rate"]}}
    assert values(ground(rate, "playing at 2x")["properties"]["rate"]) == [1, 2]  # 1: the field's description
    assert values(props["length"])[-1] == "null"  # nullable stays nullable
    assert values(props["even"]) == [0, 2]
    assert props["level"] == schema["properties"]["level"]  # an enum is already closed
    assert props["cost"]["description"] == "in dollars" and "type" not in props["cost"]
    assert all(b["minimum"] == b["maximum"] for b in props["tokens"]["anyOf"])
    # nothing fits: the field stays free
    assert ground({"type": "integer", "minimum": 100}, "3 of 7", strings=False) == {"type": "integer",
                                                                                  "minimum": 100}
    assert ground(schema, "used 15k tokens", numbers=False) is schema  # no free string either


def test_grounded_numbers_rule_out_a_count_the_request_never_gave() -> None:
    """Under llguidance, a grounded integer accepts "15000" for "15k tokens" and refuses 20 or 150."""
    import llguidance as llg
    import llguidance.hf
    from transformers import AutoTokenizer

    from schema_specialist.models import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m-instruct"))
    lt = llguidance.hf.from_tokenizer(tok)
    schema = {"type": "object", "properties": {"tokens": {"type": "integer", "minimum": 0},
                                               "cost": {"type": "number", "minimum": 0}},
              "required": ["tokens"], "additionalProperties": False}
    grounded = ground(schema, "done: summarize interviews, 15k tokens, $1.20, 18 calls, no incidents")

    def writable(text: str) -> bool:
        compiled = {**grounded, "x-guidance": {"whitespace_flexible": False}}
        matcher = llg.LLMatcher(lt, llg.grammar_from("json_schema", json.dumps(compiled)), log_level=0)
        return all(matcher.consume_token(t) for t in tok.encode(text, add_special_tokens=False)) \
            and matcher.is_accepting()

    assert writable('{"tokens":15000}') and writable('{"tokens":18}')
    assert not writable('{"tokens":20}') and not writable('{"tokens":150}') and not writable('{"tokens":1500}')
    assert not writable('{"tokens":18.0}')  # an integer has one spelling
    # a whole number in a number field keeps the spellings an adapter learnt ("0.0"), nothing near it
    assert writable('{"tokens":18,"cost":1.2}') and writable('{"tokens":18,"cost":0}')
    assert writable('{"tokens":18,"cost":0.0}') and writable('{"tokens":18,"cost":18.0}')
    assert not writable('{"tokens":18,"cost":0.5}') and not writable('{"tokens":18,"cost":12}')
    assert not writable('{"tokens":18,"cost":0.05}') and not writable('{"tokens":18,"cost":1.25}')


def _as_written(value: object, node: dict[str, Any]) -> object:
    """A JSON value as an engine writes it under `node`: properties in the schema's order, whole floats as
    integers (`1250.0` -> `1250`, a grounded number's shortest form)."""
    if isinstance(value, dict):
        props = node.get("properties") or {}
        order = [k for k in props if k in value] + [k for k in value if k not in props]
        return {k: _as_written(value[k], props.get(k, {})) for k in order}
    if isinstance(value, list):
        return [_as_written(v, node.get("items") or {}) for v in value]
    if isinstance(value, float) and value == int(value):
        return int(value)
    return value


SHIPPED_REQUESTS = sorted((ROOT / "schemas").glob("*.requests.jsonl")) + \
    sorted((ROOT / "tests" / "data" / "unseen").glob("*.requests.jsonl"))


@pytest.mark.parametrize("path", SHIPPED_REQUESTS, ids=lambda p: p.name.split(".")[0])
def test_grounded_grammar_keeps_every_hand_written_gold_answer_writable(path: Path) -> None:
    """Grounding must never rule out a right answer: every shipped hand-written request's gold answer
    stays writable, token by token, under llguidance with its strings and numbers grounded in its
    request."""
    import llguidance as llg
    import llguidance.hf
    from transformers import AutoTokenizer

    from schema_specialist.engines.llguidance import LLGuidanceEngine
    from schema_specialist.generate.grammar import simplify
    from schema_specialist.models import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m-instruct"))
    lt = llguidance.hf.from_tokenizer(tok)
    plain = answer_schema(load_schema(path.with_name(path.name.replace(".requests.jsonl", ".json"))))
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    assert len(rows) >= 50
    for row in rows:
        grounded = ground(plain, row["question"])
        assert grounded is not plain
        compiled = {**simplify(grounded, LLGuidanceEngine.rejects), "x-guidance": {"whitespace_flexible": False}}
        grammar = llg.grammar_from("json_schema", json.dumps(compiled))
        matcher = llg.LLMatcher(lt, grammar)
        text = json.dumps(_as_written(row["answer"], plain), ensure_ascii=False, separators=(",", ":"))
        assert all(matcher.consume_token(t) for t in tok.encode(text, add_special_tokens=False)), (text, row)
        assert matcher.is_accepting()


def test_eval_grammar_rows_are_grounded_in_each_request(tiny_adapter: Path) -> None:  # noqa: F811
    """Adapter + grammar with grounding: each row of one batch copies only its own request's words."""
    from tests.test_decoding import assert_writable

    runner = ev.ModelRunner(ev.load_adapter_meta(tiny_adapter), max_new_tokens=40, grounded=True)
    _, _, rows = runner.constrained_processor()
    vocab = runner.hf_model.config.vocab_size
    zebra = runner._grounded_rows("order zebra-7 paid 12", rows)
    assert_writable(zebra, runner.tokenizer, vocab, {"id": "zebra-7", "status": "paid", "total": 12})
    with pytest.raises(AssertionError):
        assert_writable(zebra, runner.tokenizer, vocab, {"id": "mango-7", "status": "paid", "total": 12})
    assert_writable(rows, runner.tokenizer, vocab, {"id": "mango-7", "status": "paid", "total": 12})
    items = [ev.Item("order zebra paid 12", None, "test", False), ev.Item("order mango paid 3", None, "test", False)]
    gens = runner.adapter_grammar_generator(items)  # one batch, a grammar a row
    for item, gen in zip(items, gens, strict=True):
        m = re.match(r'\{"id":"([^"]*)"', gen.text)
        assert m is not None, gen.text  # a random model: the grammar alone writes the id
        assert m.group(1) and m.group(1).lower() in item.question, (item.question, gen.text)


NOTE = {"type": "object", "properties": {"who": {"type": "string", "maxLength": 30},
                                         "n": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["who", "n"], "additionalProperties": False}


def test_router_grounds_the_grammar_in_each_request(tiny_mistral_dir: Path) -> None:
    """The server's constrained path (and strict retry) copies only the request's words; `grounded=False`
    gives the plain grammar back (a random model then writes words the request never had)."""
    from schema_specialist.serve.router import Router
    from tests.test_router import build_adapter

    registry = tiny_mistral_dir.parent / "grounding-registry"
    if not registry.exists():
        build_adapter(tiny_mistral_dir, registry, "color", {"type": "object", "properties": {"c": {"enum": ["r"]}},
                                                            "required": ["c"]}, seed=3)
    router = Router(registry, max_new_tokens=40, dtype="float32")
    try:
        for question in ("note from zebra: 3", "note from mango: 4"):
            ans = router.answer(question, schema=NOTE)
            assert ans.path == "constrained" and ans.valid is True, ans
            assert ans.value["who"] and ans.value["who"].lower() in question, (question, ans.json_text)
        router.grounded = False
        plain = router.plan("note from zebra: 3", NOTE).grammar
        assert plain is router.grammars.get(router.check_schema(NOTE))
    finally:
        router.close()


def test_local_teacher_labels_copy_the_request_words(tiny_mistral_dir: Path) -> None:
    """`generate --inputs` with a local teacher: a random model under the grounded grammar can still only
    write each request's own words into a free-text string; `complete` (synthesis) is not grounded."""
    from schema_specialist.prompts import label_messages
    from schema_specialist.teachers.local import LocalTeacher
    from tests.test_generate import SMALL

    teacher = LocalTeacher(str(tiny_mistral_dir), dtype="float32")
    teacher.prepare(SMALL)
    requests = ["Sensor zebra-12 reads 21.5 degrees, ok", "probe mango9 shows -3 celsius, not ok"]
    prompts = [label_messages(SMALL, "reading", r) for r in requests]
    for request, done in zip(requests, teacher.label(prompts, requests, max_new_tokens=40, seed=0), strict=True):
        m = re.match(r'\{"sensor":"([^"]*)"', done.text)
        assert m is not None and m.group(1) and m.group(1).lower() in request.lower(), (request, done.text)
        n = re.search(r'"celsius":(-?[0-9.]+)[,}]', done.text)  # only a number the request writes
        assert n is not None and float(n.group(1)) in numbers_in(request), (request, done.text)
    free = teacher.complete(prompts, temperature=0.0, max_new_tokens=40, seed=0)
    assert any(not (m := re.match(r'\{"sensor":"([^"]*)"', c.text)) or m.group(1).lower() not in r.lower()
               for c, r in zip(free, requests, strict=True))  # the plain grammar lets a random model invent


def test_pool_teacher_labels_are_grounded_in_each_workers_requests(tiny_mistral_dir: Path) -> None:
    """Two worker processes (the default `generate` teacher): each request keeps its own grounded grammar
    after the batch is split across them."""
    from schema_specialist.prompts import label_messages
    from schema_specialist.teachers.pool import PoolTeacher
    from tests.test_generate import SMALL

    teacher = PoolTeacher(str(tiny_mistral_dir), workers=2, dtype="float32")
    try:
        teacher.prepare(SMALL)
        requests = ["Sensor zebra-12 reads 21.5 degrees, ok", "probe mango9 shows -3 celsius, not ok",
                    "unit kiwi shows 4 celsius", "reading from lemon-1: 30 degrees"]
        prompts = [label_messages(SMALL, "reading", r) for r in requests]
        done = teacher.label(prompts, requests, max_new_tokens=40, seed=0)
        for request, c in zip(requests, done, strict=True):
            m = re.match(r'\{"sensor":"([^"]*)"', c.text)
            assert m is not None and m.group(1) and m.group(1).lower() in request.lower(), (request, c.text)
    finally:
        teacher.close()


def test_bench_grounding_script_on_tiny_adapter(tiny_adapter: Path, tmp_path: Path,  # noqa: F811
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load_script("bench_grounding")
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in (
        ("order zebra-7 paid, 12 dollars", {"id": "zebra-7", "status": "paid", "total": 12}),
        ("new order mango-1 for 3", {"id": "mango-1", "status": "new", "total": 3}))), encoding="utf-8")
    code = bench.main([f"{tiny_adapter}:{requests}", "--work", str(tmp_path / "work"), "--max-new-tokens", "24",
                       "--no-write"])
    out = capsys.readouterr().out
    assert code == 0
    for label in ("schema grammar", "strings grounded", "strings and numbers grounded"):
        assert f"| adapter + grammar, {label} |" in out, label
    assert "(n=2)" in out and (tmp_path / "work" / "order-grounded" / "report.json").is_file()
    engines = {mode: json.loads((tmp_path / "work" / f"order-{mode}" / "report.json").read_text())["input_files"][0]
               ["systems"]["adapter+grammar"]["engine"] for mode in ("plain", "strings", "grounded")}
    assert engines["grounded"].endswith(", strings and numbers grounded"), engines
    assert engines["strings"].endswith(", strings grounded") and "grounded" not in engines["plain"], engines
    logs = {mode: json.loads((tmp_path / "work" / f"order-{mode}" / "answers.jsonl").open().readline())["settings"]
            ["grounded"] for mode in ("plain", "strings", "grounded")}
    assert logs == {"plain": False, "strings": "strings", "grounded": "strings, numbers"}  # no resuming across them


def test_bench_label_script_on_tiny_model(tiny_mistral_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_generate import SMALL

    bench = _load_script("bench_label")
    schema = tmp_path / "reading.json"
    schema.write_text(json.dumps(SMALL), encoding="utf-8")
    (tmp_path / "reading.requests.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in (
        ("Sensor zebra-12 reads 21.5 degrees, ok", {"sensor": "zebra-12", "celsius": 21.5, "ok": True}),
        ("probe mango9 shows -3 celsius, not ok", {"sensor": "mango9", "celsius": -3, "ok": False}))),
        encoding="utf-8")
    code = bench.main([str(schema), "--teacher", str(tiny_mistral_dir), "--max-new-tokens", "32",
                       "--dtype", "float32", "--no-write"])
    out = capsys.readouterr().out
    assert code == 0 and "| `reading` | 2 | plain |" in out and "| `reading` | 2 | grounded |" in out
    assert "| `reading` | 2 | strings grounded |" in out
