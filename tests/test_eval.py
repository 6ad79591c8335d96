"""`schemagen eval`: metrics, intervals, failure kinds, the gate, inputs, reports, and the CLI end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist import evaluate as ev
from schema_specialist.cli import main
from schema_specialist.errors import SchemagenError
from schema_specialist.evaluate import Generation, Item, classify_failure, field_match, gate, n_needed, wilson
from schema_specialist.registry import write_meta
from schema_specialist.schema import schema_from_dict
from tests.conftest import ORDER_SCHEMA

KINDS_SCHEMA = schema_from_dict({
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^A[0-9]+$"},
        "email": {"type": "string", "format": "email"},
        "status": {"enum": ["new", "paid"]},
        "total": {"type": "number", "minimum": 0, "maximum": 100},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "count": {"type": "integer"},
    },
    "required": ["id", "status"],
    "additionalProperties": False,
})


# -- pure functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    (7, 10, 0.3968, 0.8922),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (81, 100, 0.7222, 0.8749),
    (299, 300, 0.9814, 0.9994),
])
def test_wilson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-4)


def test_wilson_edges() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        wilson(3, 2)


@pytest.mark.parametrize(("text", "truncated", "kind"), [
    ("Sure! Here is the JSON.", False, "not_json"),
    ("```json\n{\"id\":\"A1\",\"status\":\"new\"}\n```", False, "not_json"),
    ("the order is new and " * 3, True, "not_json"),  # rambling prose that hit the limit is not JSON
    ('{"id":"A1","status":"ne', True, "truncated"),
    ('{"id":"A1","tags":["x",', False, "truncated"),  # unterminated even without the flag
    ('{"id":"A1"}', False, "missing_required"),
    ('{"id":"A1","status":"new","count":"3"}', False, "wrong_type"),
    ('{"id":"A1","status":"old"}', False, "enum"),
    ('{"id":"A1","status":"new","total":500}', False, "bounds"),
    ('{"id":"A1","status":"new","tags":["a","b","c"]}', False, "bounds"),
    ('{"id":"B1","status":"new"}', False, "pattern_format"),
    ('{"id":"A1","status":"new","email":"not an email"}', False, "pattern_format"),
    ('{"id":"A1","status":"new","colour":"red"}', False, "extra_property"),
])
def test_classify_failure_kinds(text: str, truncated: bool, kind: str) -> None:
    got = classify_failure(text, KINDS_SCHEMA, truncated)
    assert got is not None and got[0] == kind, got
    assert got[1]


def test_classify_other_and_valid() -> None:
    other = schema_from_dict({"not": {"type": "null"}})
    assert classify_failure("null", other) is not None
    assert classify_failure("null", other)[0] == "other"  # type: ignore[index]
    assert classify_failure('{"id":"A1","status":"paid","total":3.5}', KINDS_SCHEMA) is None
    assert classify_failure(' {"id":"A1","status":"paid"}\n', KINDS_SCHEMA, truncated=True) is None


def test_field_match() -> None:
    gold = {"a": 1, "b": {"c": "x", "d": [True, 2]}}
    assert field_match(gold, gold) == (4, 4)
    assert field_match({"a": 1.0, "b": {"c": "y", "d": [1, 2]}}, gold) == (2, 4)  # 1 == 1.0, true != 1
    assert field_match(None, gold, parsed=False) == (0, 4)
    assert field_match({"b": {"d": [True]}}, gold) == (1, 4)


def test_gate_and_rule_of_three() -> None:
    lo = wilson(7, 10)[0]
    fail = gate(0.7, lo, 10, 0.8)
    assert fail.passed is False and fail.exit_code == 1
    assert "n >= 15" in fail.message and not fail.meaningful
    ok = gate(0.7, lo, 10, 0.6)
    assert ok.passed is True and ok.exit_code == 0
    strict = gate(0.7, lo, 10, 0.6, strict=True)  # lower bound 0.397 < 0.6
    assert strict.passed is False and strict.value == pytest.approx(lo)
    assert gate(1.0, 0.99, 3000, 0.999).meaningful
    assert n_needed(0.999) == 3000 and n_needed(0.99) == 300 and n_needed(0.9) == 30
    perfect = gate(1.0, 0.99, 10_000, 1.0)
    assert perfect.passed and perfect.needed_n is None and "no finite n" in perfect.message
    none = gate(0.5, 0.4, 10, None)
    assert none.passed is None and none.exit_code == 0
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(SchemagenError, match=r"\(0, 1\]"):
            gate(0.5, 0.4, 10, bad)


# -- inputs ----------------------------------------------------------------------------------------


def test_hypothesis_items_are_seeded_valid_and_faithful() -> None:
    from schema_specialist.generate.questions import missing_facts

    schema = schema_from_dict(ORDER_SCHEMA)
    a = ev.hypothesis_items(schema, 6, seed=3)
    b = ev.hypothesis_items(schema, 6, seed=3)
    c = ev.hypothesis_items(schema, 6, seed=4)
    assert len(a) == 6
    assert [(i.question, i.gold) for i in a] == [(i.question, i.gold) for i in b]
    assert [i.gold for i in a] != [i.gold for i in c]
    for item in a:
        assert schema.is_valid(item.gold) and not missing_facts(item.question, item.gold)
        assert item.source == "hypothesis"


# -- evaluate() with injected answers ---------------------------------------------------------------


def _adapter(tmp_path: Path, dataset: Path, schema: dict[str, Any] = ORDER_SCHEMA, name: str = "ad") -> Path:
    path = tmp_path / name
    path.mkdir()
    write_meta(path, "order", schema, "smollm2", "smollm2",
               dataset={"path": str(dataset), "manifest": str(dataset / "manifest.json")})
    return path


def _fake(invalid_every: int = 0, bad: Sequence[str] = ()) -> Callable[[Sequence[Item]], list[Generation]]:
    """Answers the gold JSON, except answers number 0, k, 2k... which come from `bad` in turn."""
    count = [0]

    def generate(batch: Sequence[Item]) -> list[Generation]:
        out = []
        for item in batch:
            i = count[0]
            count[0] += 1
            if invalid_every and i % invalid_every == 0 and i // invalid_every < len(bad):
                text = bad[i // invalid_every]
            else:
                text = json.dumps(item.gold)
            out.append(Generation(text, prompt_tokens=20, completion_tokens=10, seconds=0.01))
        return out

    return generate


BAD = ["not json at all", '{"id":"A1","status":"new"}', '{"id":"A1","status":"lost","total":1}']


def test_evaluate_exact_rate_interval_and_failures(tmp_path: Path, make_dataset: Any, order_pairs: Any) -> None:
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    report = ev.evaluate(adapter, n=10, target=0.8, seed=1, batch_size=4, out_dir=tmp_path / "rep",
                         generators={ev.ADAPTER: _fake(3, BAD), ev.PROMPTED: _fake()})
    a = report.adapter
    assert (a.validity.k, a.validity.n) == (7, 10) and a.validity.rate == pytest.approx(0.7)
    assert a.validity.ci95 == pytest.approx(wilson(7, 10))
    assert a.parse.k == 9
    assert {k: g["count"] for k, g in a.failures.items()} == {"not_json": 1, "missing_required": 1, "enum": 1}
    assert a.failures["enum"]["example"]["answer"] == BAD[2]
    assert report.inputs == {"test": 4, "hypothesis": 6}
    assert [x["source"] for x in report.answers] == ["test"] * 4 + ["hypothesis"] * 6
    # field accuracy over 30 gold leaves: 7 right answers (21), answer 0 none, answer 3 (gold A039/new/97.5)
    # only `status`, answer 6 (a hypothesis instance) `id`/`total` only if they happen to be "A1"/1
    g6 = report.answers[6]["gold"]
    assert report.answers[3]["gold"] == {"id": "A039", "status": "new", "total": 97.5}
    assert a.fields.n == 30 and a.fields.k == 21 + 0 + 1 + (g6["id"] == "A1") + (g6["total"] == 1)
    assert report.gate.passed is False and report.exit_code == 1
    assert "n >= 15" in report.gate.message
    assert report.systems[ev.PROMPTED].n == 10 and report.systems[ev.PROMPTED].validity.rate == 1.0
    assert ev.CONSTRAINED not in report.systems  # no generator given for it

    saved = json.loads((adapter / "eval.json").read_text())
    assert saved["validity"] == pytest.approx(0.7) and saved["n"] == 10 and saved["passed"] is False
    assert saved["ci95"] == pytest.approx(list(wilson(7, 10))) and saved["target"] == 0.8
    assert Path(saved["report"]) == tmp_path / "rep" / "report.json"
    for f in ("report.json", "report.md", "report.png"):
        assert (tmp_path / "rep" / f).stat().st_size > 0
    full = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert full["systems"]["adapter"]["validity"]["k"] == 7 and full["gate"]["passed"] is False
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "missing_required" in md and "FAIL" in md


def test_evaluate_share_baseline_subset_and_default_outdir(tmp_path: Path, make_dataset: Any,
                                                           order_pairs: Any) -> None:
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    report = ev.evaluate(adapter, n=8, hypothesis_share=0.75, baseline_n=3, seed=0,
                         generators={ev.ADAPTER: _fake(), ev.PROMPTED: _fake(), ev.CONSTRAINED: _fake()})
    assert report.inputs == {"test": 2, "hypothesis": 6}
    assert report.adapter.validity.rate == 1.0 and report.gate.passed is None and report.exit_code == 0
    assert report.systems[ev.CONSTRAINED].n == 3 and report.settings["baseline_n"] == 3
    assert (adapter / "report" / "report.md").exists() and (adapter / "eval.json").exists()
    no_base = ev.evaluate(adapter, n=4, baselines=False, write=False, generators={ev.ADAPTER: _fake()})
    assert list(no_base.systems) == [ev.ADAPTER] and no_base.inputs == {"test": 4, "hypothesis": 0}


def test_hypothesis_fallback_to_held_out(tmp_path: Path, make_dataset: Any, monkeypatch: Any) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}},
              "dependentSchemas": {"a": {"required": ["b"]}}, "required": ["a"]}
    pairs = [(f"a is {i}, b is {i}", {"a": i, "b": i}) for i in range(20)]
    adapter = _adapter(tmp_path, make_dataset(schema, pairs), schema)

    def refuse(*args: Any, **kwargs: Any) -> Any:  # what hypothesis-jsonschema does with a schema it cannot model
        raise ValueError("unsupported keyword")

    monkeypatch.setattr(ev.inputs, "hypothesis_items", refuse)
    report = ev.evaluate(adapter, n=6, write=False, generators={ev.ADAPTER: _fake()})
    assert report.inputs == {"test": 2, "hypothesis": 0} and report.n == 2
    assert any("hypothesis-jsonschema cannot" in note and "held-out" in note for note in report.notes)


# -- the CLI ---------------------------------------------------------------------------------------


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("schemagen: error: ")
    return text


def test_cli_gate_exit_codes(tmp_path: Path, make_dataset: Any, order_pairs: Any,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    real = ev.evaluate

    def fake_evaluate(*args: Any, **kwargs: Any) -> ev.Report:
        return real(*args, **kwargs, generators={ev.ADAPTER: _fake(3, BAD)})

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    runner = CliRunner()
    out = str(tmp_path / "rep")
    below = runner.invoke(main, ["eval", str(adapter), "-n", "10", "--target", "0.8", "-o", out])
    assert below.exit_code == 1, below.output
    assert "0.700 [0.397, 0.892]" in below.output and "FAIL" in below.output and "n >= 15" in below.output
    above = runner.invoke(main, ["eval", str(adapter), "-n", "10", "--target", "0.6", "-o", out])
    assert above.exit_code == 0, above.output
    assert "PASS" in above.output
    strict = runner.invoke(main, ["eval", str(adapter), "-n", "10", "--target", "0.6", "--strict", "-o", out])
    assert strict.exit_code == 1, strict.output
    huge = runner.invoke(main, ["eval", str(adapter), "-n", "10", "--target", "1", "-o", out])
    assert huge.exit_code == 1 and "no finite n" in huge.output
    for bad in ("0", "1.5", "-1"):
        assert "(0, 1]" in _one_line_error(runner.invoke(main, ["eval", str(adapter), "--target", bad]))


def test_cli_bad_inputs(tmp_path: Path, make_dataset: Any, order_pairs: Any) -> None:
    runner = CliRunner()
    assert "no such adapter" in _one_line_error(runner.invoke(main, ["eval", str(tmp_path / "nope")]))
    (tmp_path / "empty").mkdir()
    assert "schemagen.json" in _one_line_error(runner.invoke(main, ["eval", str(tmp_path / "empty")]))
    other = dict(ORDER_SCHEMA, title="other order")
    wrong = _adapter(tmp_path, make_dataset(other, order_pairs, name="other"), name="wrong")
    assert "does not match" in _one_line_error(runner.invoke(main, ["eval", str(wrong)]))
    ds = make_dataset(ORDER_SCHEMA, order_pairs, name="no-test")
    (ds / "test.jsonl").unlink()
    no_test = _adapter(tmp_path, ds, name="notest")
    assert "test split" in _one_line_error(runner.invoke(main, ["eval", str(no_test)]))
    ok = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs, name="ok"), name="noweights")
    assert "adapter_config.json" in _one_line_error(runner.invoke(main, ["eval", str(ok), "-n", "2"]))


@pytest.fixture
def tiny_adapter(tmp_path: Path, tiny_mistral_dir: Path, make_dataset: Any, order_pairs: Any) -> Path:
    """A real (random, untrained) LoRA adapter on the tiny Mistral, with its dataset."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dataset = make_dataset(ORDER_SCHEMA, order_pairs)
    adapter = tmp_path / "order"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_mistral_dir)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(
        str(adapter), safe_serialization=True)
    write_meta(adapter, "order", ORDER_SCHEMA, str(tiny_mistral_dir), str(tiny_mistral_dir),
               dataset={"path": str(dataset), "manifest": str(dataset / "manifest.json")})
    return adapter


def test_cli_end_to_end_tiny_mistral(tmp_path: Path, tiny_adapter: Path) -> None:
    """Adapter + both baselines through the real models, every file written."""
    adapter = tiny_adapter
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["eval", str(adapter), "-n", "6", "--baseline-n", "2", "--batch-size", "4",
                                       "--max-new-tokens", "8", "--target", "0.5", "-o", str(out)])
    assert result.exit_code == 1, result.output  # a random model writes no valid JSON
    assert "% shorter" in result.output
    report = json.loads((out / "report.json").read_text())
    assert list(report["systems"]) == ["adapter", "adapter+grammar", "base+schema-prompt", "constrained"]
    assert report["inputs"] == {"test": 4, "hypothesis": 2}
    adapter_sys, prompted, constrained = (report["systems"][k] for k in ("adapter", "base+schema-prompt",
                                                                           "constrained"))
    grammar = report["systems"]["adapter+grammar"]
    assert adapter_sys["n"] == 6 and prompted["n"] == 2 and constrained["n"] == 2
    assert constrained["engine"] and grammar["engine"] == constrained["engine"]
    # the adapter's short prompt under the grammar: every failure a cut-off, never a schema violation
    assert grammar["n"] == 6 and set(grammar["failures"]) <= {"truncated"}
    assert grammar["prompt_tokens_mean"] == adapter_sys["prompt_tokens_mean"]
    # every free answer is invalid, so the guard retried all six (all under the grammar: the same answers)
    guard = report["guard"]
    assert guard["invalid"]["k"] == 6 and guard["fixed"]["n"] == 6 and guard["retry_prompt_tokens_mean"] > 0
    assert guard["added_tokens_per_request"] == pytest.approx(
        guard["retry_prompt_tokens_mean"] + guard["retry_completion_tokens_mean"])
    assert "guard (free answer" in result.output
    assert 0 < adapter_sys["prompt_tokens_mean"] < prompted["prompt_tokens_mean"]
    assert report["prompt_reduction"]["percent_shorter"] > 0
    # Beyond the question: the adapter pays its chat template and one short instruction; the baseline the schema.
    over = report["overhead_reduction"]
    assert 0 < adapter_sys["overhead_tokens_mean"] < 40 < prompted["overhead_tokens_mean"]
    assert over["percent_shorter"] > report["prompt_reduction"]["percent_shorter"]
    assert "beyond the question itself" in result.output
    assert adapter_sys["validity"]["k"] == 0 and sum(g["count"] for g in adapter_sys["failures"].values()) == 6
    # constrained decoding never leaves the grammar: any failure is a cut-off, never a schema violation
    assert set(constrained["failures"]) <= {"truncated"}
    assert all(len(a["answer"]) > 0 for a in report["answers"])
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "report.md").exists()
    saved = json.loads((adapter / "eval.json").read_text())
    assert set(saved) >= {"validity", "n", "ci95", "target", "passed", "report", "created"}
    assert saved["n"] == 6 and saved["passed"] is False and saved["target"] == 0.5


def test_report_api_reads_back(tmp_path: Path, make_dataset: Any, order_pairs: Any) -> None:
    """The registry reads the summary that eval writes."""
    from schema_specialist.registry import read_adapter

    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    ev.evaluate(adapter, n=4, generators={ev.ADAPTER: _fake(2, BAD[:1])})
    info = read_adapter(tmp_path, adapter.name)
    assert info.validity == pytest.approx(0.75) and "n=4" in info.validity_text()



def test_bench_script_on_tiny_adapter(tiny_adapter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench_eval", ROOT / "scripts" / "bench_eval.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    code = bench.main(["--adapter", str(tiny_adapter), "-n", "3", "--baseline-n", "1", "--max-new-tokens", "4",
                       "--no-doc"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| adapter (no schema in prompt) | 3 |" in out and "| base, schema in prompt | 1 |" in out
    assert "constrained" in out and "% shorter" in out
    assert bench.main(["--adapter", str(tiny_adapter.parent / "missing"), "--no-doc"]) == 2


def test_batched_generation_matches_one_by_one(tiny_adapter: Path) -> None:
    """Left padding: a prompt's greedy answer and token count do not depend on its batch mates."""
    runner = ev.ModelRunner(ev.load_adapter_meta(tiny_adapter), max_new_tokens=6)
    items = [Item("Order A1, new, 3.", {}, "test"),
             Item("Record order: id is A009; status is new; total is 22.5 and it ships to Lima next week.", {}, "test"),
             Item("id A2 paid 10", {}, "test")]
    batched = runner.adapter_generator(items)
    alone = [runner.adapter_generator([it])[0] for it in items]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.prompt_tokens for g in batched] == [g.prompt_tokens for g in alone]
    assert len({g.prompt_tokens for g in batched}) == 3
    assert all(g.truncated == (g.completion_tokens == 6) for g in batched)
