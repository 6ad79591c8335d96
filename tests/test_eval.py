"""`schemagen eval`: metrics, intervals, failure kinds, the gate, inputs, reports, and the CLI end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from schema_specialist import evaluate as ev
from schema_specialist.cli import main
from schema_specialist.errors import SchemagenError
from schema_specialist.evaluate import Generation, Item, classify_failure, field_match, gate, n_needed, wilson
from schema_specialist.evaluate.metrics import parse_json
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


def test_hypothesis_items_ignore_the_literals_of_loaded_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis mixes the literals of loaded local modules into its draws: the same seed must give the same
    inputs from the CLI, a script or a test, and after a code change."""
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import _constants_from_source

    schema = schema_from_dict(ORDER_SCHEMA)
    before = [ev.hypothesis_instances(schema, 20, seed=s) for s in range(2)]
    words = ", ".join(f'"Zq{i}x"' for i in range(200))
    source = f"W = [{words}]\nN = [{', '.join(map(str, range(-40, 400)))}]\nF = [0.37, 12.5, 99.99]\n"
    literals = _constants_from_source(source, limit=False)  # what a newly imported module would add
    monkeypatch.setattr(providers, "_get_local_constants", lambda: literals)
    providers.CONSTANTS_CACHE.cache.clear()
    assert [ev.hypothesis_instances(schema, 20, seed=s) for s in range(2)] == before


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


def test_workers_answer_what_one_process_answers(tmp_path: Path, tiny_adapter: Path) -> None:
    """--workers 2: the same answers as one process (float32), every input answered once, no worker log left."""
    args = ["-n", "6", "--baseline-n", "2", "--grammar-n", "2", "--batch-size", "2", "--max-new-tokens", "6",
            "--dtype", "float32", "--progress", "none"]
    one = CliRunner().invoke(main, ["eval", str(tiny_adapter), *args, "-o", str(tmp_path / "one")])
    two = CliRunner().invoke(main, ["eval", str(tiny_adapter), *args, "--workers", "2", "-o", str(tmp_path / "two")])
    assert one.exit_code == two.exit_code == 0, (one.output, two.output)

    def answers(out: Path) -> dict[tuple[str, str], str]:
        lines = (out / "answers.jsonl").read_text().splitlines()[1:]
        records = [json.loads(line) for line in lines]
        assert len({(r["system"], r["id"]) for r in records}) == len(records)  # none answered twice
        return {(r["system"], r["id"]): r["text"] for r in records}

    assert answers(tmp_path / "two") == answers(tmp_path / "one")
    assert not (tmp_path / "two" / "workers").exists()
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("one", "two"))
    assert {k: v["n"] for k, v in a["systems"].items()} == {k: v["n"] for k, v in b["systems"].items()}


def test_workers_logs_left_by_a_kill_are_merged_not_redone(tmp_path: Path, tiny_adapter: Path) -> None:
    """A worker's log in the report directory (its run was killed before the merge) is merged on the rerun,
    with or without --workers, counted once and removed; nothing is decoded again."""
    from schema_specialist.evaluate.workers import deal

    out = tmp_path / "r"
    args = ["eval", str(tiny_adapter), "-n", "5", "--no-baselines", "--grammar-n", "0", "--no-guard",
            "--max-new-tokens", "4", "--progress", "none", "--workers", "2", "-o", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    header, *records = (out / "answers.jsonl").read_text().splitlines()
    assert len(records) == 5
    (out / "answers.jsonl").write_text("\n".join([header, *records[:3]]) + "\n")
    (out / "workers" / "1").mkdir(parents=True)
    (out / "workers" / "1" / "answers.jsonl").write_text("\n".join([header, *records[3:]]) + "\n")
    again = CliRunner().invoke(main, [a for a in args if a not in ("--workers", "2")])  # a plain rerun merges too
    assert again.exit_code == 0, again.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["resumed_answers"] == 3
    assert any("2 answers resumed from" in note and "workers" in note for note in report["notes"])
    assert sorted((out / "answers.jsonl").read_text().splitlines()[1:]) == sorted(records)  # none redone
    assert not (out / "workers").exists()

    items = [Item(f"q{i}", {}, "test") for i in range(5)]
    shares = deal([("adapter", items + items[:1])], lambda name, it: it.question == "q0", 2)
    assert [[it.question for it in share[0][1]] for share in shares] == [["q1", "q3"], ["q2", "q4"]]


def test_bench_eval_workers_script(tmp_path: Path, tiny_adapter: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "scripts" / "bench_eval_workers.py"), "--adapter",
                           str(tiny_adapter), "-n", "4", "--baseline-n", "1", "--grammar-n", "1", "--no-inputs", "--no-write"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "| 1 process, every core |" in done.stdout and "| --workers 2, 1 thread each |" in done.stdout
    assert "Of 4 free adapter answers" in done.stdout


def test_a_failed_worker_is_one_line(tmp_path: Path) -> None:
    from schema_specialist.evaluate.workers import Job, Pool

    job = Job(str(tmp_path / "missing"), None, None, {}, str(tmp_path / "w"), [], 8, 0.0, 0, 1, "auto",
              False, 2)
    pool = Pool([job], lambda n: None)
    with pytest.raises(SchemagenError, match="eval worker 1 failed: .*missing"):
        pool.wait()


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
    runner.stop_non_json = False  # whole answers: a random model seldom starts one with JSON
    items = [Item("Order A1, new, 3.", {}, "test"),
             Item("Record order: id is A009; status is new; total is 22.5 and it ships to Lima next week.", {}, "test"),
             Item("id A2 paid 10", {}, "test")]
    batched = runner.adapter_generator(items)
    alone = [runner.adapter_generator([it])[0] for it in items]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.prompt_tokens for g in batched] == [g.prompt_tokens for g in alone]
    assert len({g.prompt_tokens for g in batched}) == 3
    assert all(g.truncated == (g.completion_tokens == 6) for g in batched)


@given(st.text())
def test_an_answer_whose_first_character_starts_no_json_never_parses(text: str) -> None:
    from schema_specialist.evaluate.runner import JSON_STARTS, starts_no_json

    first = text.strip()[:1]
    assert starts_no_json(text) == (bool(first) and first not in JSON_STARTS)
    if starts_no_json(text):
        assert parse_json(text + " {}")[0] is False and parse_json(text)[0] is False


def test_every_json_start_begins_some_json_value() -> None:
    from schema_specialist.evaluate.runner import JSON_STARTS

    values = ["{}", "[]", '"a"', "-1", *"0123456789", "true", "false", "null", "NaN", "Infinity"]
    assert {v[0] for v in values} == set(JSON_STARTS)
    assert all(parse_json(v)[0] for v in values)


def test_free_answers_stop_at_a_first_character_no_json_starts_with(tiny_adapter: Path) -> None:
    """The prompted baseline's answers: cut where they could no longer parse, scored the same."""
    from schema_specialist.evaluate.runner import JSON_STARTS

    runner = ev.ModelRunner(ev.load_adapter_meta(tiny_adapter), max_new_tokens=12)
    items = [Item(q, {}, "test") for q in ("Order A1, new, 3.", "id A2 paid 10", "hello there", "B-7 shipped")]
    short = runner.prompted_generator(items)
    runner.stop_non_json = False
    whole = runner.prompted_generator(items)
    assert any(s.completion_tokens < w.completion_tokens for s, w in zip(short, whole, strict=True))
    for s, w in zip(short, whole, strict=True):
        assert w.text.startswith(s.text)
        if s.completion_tokens < w.completion_tokens:
            assert s.text.strip()[:1] not in JSON_STARTS and not s.truncated
            assert parse_json(w.text)[0] is False  # the whole answer would not have parsed either
        else:
            assert s.text == w.text


def test_stop_bench_scores_both_ways_the_same(tiny_adapter: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_stop", Path(__file__).parent.parent / "scripts" /
                                                  "bench_stop_non_json.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"question": "order A-9 paid 3"}\n{"question": "hello"}\n', encoding="utf-8")
    assert bench.main(["--adapter", str(tiny_adapter), "-n", "2", "--inputs", str(requests), "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "in both: **yes**" in out and "| stop at a first character" in out


# -- failures by field path -------------------------------------------------------------------------

NESTED_SCHEMA = schema_from_dict({
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "items": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            "required": ["name", "qty"], "additionalProperties": False}},
    },
    "required": ["id", "items"],
    "additionalProperties": False,
})


def test_error_sites_locate_each_field() -> None:
    value = {"items": [{"name": "a", "qty": 0}, {"qty": "x", "extra": 1}], "colour": "red"}
    sites = {path: (norm, kind) for norm, path, kind, _ in ev.error_sites(value, NESTED_SCHEMA)}
    assert sites == {
        "/id": ("/id", "missing_required"),  # a missing property is located at itself, not at its parent
        "/colour": ("/colour", "extra_property"),
        "/items/0/qty": ("/items/*/qty", "bounds"),
        "/items/1/qty": ("/items/*/qty", "wrong_type"),
        "/items/1/name": ("/items/*/name", "missing_required"),
        "/items/1/extra": ("/items/*/extra", "extra_property"),
    }
    assert ev.error_sites({"id": "x", "items": []}, NESTED_SCHEMA) == []


def test_error_sites_name_each_missing_property_in_its_detail() -> None:
    """Two properties missing from one object: each site's detail names its own, not the first one."""
    details = {path: detail for _, path, _, detail in ev.error_sites({"extra": 1, "more": 2}, NESTED_SCHEMA)}
    assert details["/id"] == "/id: 'id' is a required property [required]"
    assert details["/items"] == "/items: 'items' is a required property [required]"
    assert details["/more"] == "/more: 'more' is not allowed here [additionalProperties]"


def test_group_by_path_counts_answers_once_a_path() -> None:
    gold = {"id": "o1", "items": [{"name": "a", "qty": 2}, {"name": "b", "qty": 3}]}
    item = Item("order o1: 2 a, 3 b", gold, "test", style="prose")
    answers = ['{"id":"o1","items":[{"name":"a","qty":0},{"name":"b","qty":"3"}]}',  # qty breaks twice
               '{"id":"o1","items":[{"name":"a","qty":2}]}',  # valid, one leaf short
               '{"id":"o1","items":[{"name":"a","qty":2},{"name":"b","qty":3}]',  # cut off
               json.dumps(gold)]
    scored = [ev.score(item, Generation(a, truncated=i == 2), NESTED_SCHEMA) for i, a in enumerate(answers)]
    groups = ev.group_by_path(scored)
    assert list(groups) == ["(root)", "/items/*/qty"] or list(groups) == ["/items/*/qty", "(root)"]
    qty = groups["/items/*/qty"]
    assert qty["count"] == 1 and qty["kinds"] == {"bounds": 1, "wrong_type": 1}
    assert qty["sources"] == {"test": 1} and qty["styles"] == {"prose": 1}
    assert qty["examples"][0]["gold"] == 2 and qty["examples"][0]["answer"] == answers[0]
    assert groups["(root)"]["kinds"] == {"truncated": 1}
    fields = ev.fields_by_path(scored)
    # /items/*/qty wrong: both in answer 0 (0, "3"), b's in answer 1 (missing), both in answer 2 (not parsed)
    assert fields["/items/*/qty"] == {"wrong": 5, "total": 8} and fields["/id"] == {"wrong": 1, "total": 4}
    assert list(fields)[0] == "/items/*/qty"


# -- --inputs files ---------------------------------------------------------------------------------


REQUESTS = [
    {"question": "Order A1 came in, still new, 3 dollars.", "answer": {"id": "A1", "status": "new", "total": 3},
     "style": "prose"},
    {"question": "B7 paid 12.5", "answer": {"id": "B7", "status": "paid", "total": 12.5}, "style": "terse"},
    {"question": "Please ship C3, it cost 8.", "style": "prose"},  # no answer: validity only
    {"question": "D4 new 1", "answer": {"id": "D4", "status": "new", "total": 1}, "style": "terse", "note": "x"},
]
FREE = {"B7 paid 12.5": '{"id":"B7","status":"lost","total":12.5}',
        "Please ship C3, it cost 8.": '{"id":"C3","status":"shipped","total":8}'}
RETRY = {"B7 paid 12.5": '{"id":"B7","status":"paid","total":12}',
         "Please ship C3, it cost 8.": '{"id":"C3","status":"shipped","total":8}'}


def _write_requests(path: Path, records: Sequence[dict[str, Any]] = REQUESTS, bom: bool = True) -> Path:
    text = "\n".join(json.dumps(r) for r in records[:2]) + "\n\n" + "\n".join(json.dumps(r) for r in records[2:])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8") + b"\n")
    return path


def _table(answers: dict[str, str], seconds: float = 0.01, prompt: int = 20, completion: int = 10,
           calls: list[str] | None = None) -> Callable[[Sequence[Item]], list[Generation]]:
    """Answers from `answers` by question, the gold JSON otherwise; records each question asked in `calls`."""

    def generate(batch: Sequence[Item]) -> list[Generation]:
        if calls is not None:
            calls.extend(it.question for it in batch)
        return [Generation(answers.get(it.question, json.dumps(it.gold)), prompt, completion, seconds=seconds)
                for it in batch]

    return generate


def test_file_items_read_answers_styles_and_extras(tmp_path: Path) -> None:
    schema = schema_from_dict(ORDER_SCHEMA)
    items = ev.file_items(_write_requests(tmp_path / "requests.jsonl"), schema)
    assert [it.question for it in items] == [r["question"] for r in REQUESTS]
    assert [it.has_gold for it in items] == [True, True, False, True]
    assert [it.style for it in items] == ["prose", "terse", "prose", "terse"]
    assert {it.source for it in items} == {"requests"} and items[0].gold == REQUESTS[0]["answer"]
    assert len({it.key for it in items}) == 4 and items[0].key == Item(REQUESTS[0]["question"], None, "x").key


@pytest.mark.parametrize(("content", "line", "says"), [
    (b"", None, "empty"),
    (b"\n  \n", None, "empty"),
    (b'{"question": "A1 new 3"}\n{"question": "caf\xe9"}\n', 2, "not UTF-8"),
    (b'{"question": "A1 new 3"}\n{"question": "A2",\n', 2, "not valid JSON"),
    (b'["A1 new 3"]\n', 1, "JSON object"),
    (b'{"q": "A1 new 3"}\n', 1, "`question`"),
    (b'{"question": 7}\n', 1, "`question`"),
    (b'{"question": "A1"}\n{"question": "A2", "answer": {"id": "A2", "status": "lost", "total": 1}}\n', 2,
     "not valid for the schema"),
])
def test_cli_bad_inputs_file(tmp_path: Path, make_dataset: Any, order_pairs: Any, content: bytes, line: int | None,
                             says: str) -> None:
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    text = _one_line_error(CliRunner().invoke(main, ["eval", str(adapter), "--inputs", str(bad)]))
    assert str(bad) in text and says in text
    if line is not None:
        assert f"line {line}:" in text
    missing = CliRunner().invoke(main, ["eval", str(adapter), "--inputs", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2


def test_evaluate_inputs_sections_guard_and_gate_on(tmp_path: Path, make_dataset: Any, order_pairs: Any) -> None:
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    requests = _write_requests(tmp_path / "requests.jsonl")
    gens = {ev.ADAPTER: _table(FREE), ev.ADAPTER_GRAMMAR: _table(RETRY, seconds=0.5, prompt=30, completion=12),
            ev.PROMPTED: _table({})}
    report = ev.evaluate(adapter, n=4, target=0.8, baseline_n=2, inputs=[requests], out_dir=tmp_path / "rep",
                         generators=gens)
    assert report.inputs == {"test": 4, "hypothesis": 0} and report.adapter.validity.k == 4
    assert report.guard is not None and report.guard.invalid.k == 0 and report.gate.passed  # gate on main
    (sec,) = report.sections
    assert (sec.name, sec.n, sec.answered, sec.styles) == ("requests", 4, 3, {"prose": 2, "terse": 2})
    a, g = sec.systems[ev.ADAPTER], sec.systems[ev.ADAPTER_GRAMMAR]
    assert (a.validity.k, a.validity.n, a.answered) == (3, 4, 3)
    assert (a.fields.k, a.fields.n) == (8, 9) and (a.exact.k, a.exact.n) == (2, 3)  # the unanswered one: validity only
    assert a.by_style["prose"]["validity"]["k"] == 2 and a.by_style["terse"]["validity"]["k"] == 1
    assert a.by_style["terse"]["fields"] == {"k": 5, "n": 6, "rate": 5 / 6, "ci95": list(wilson(5, 6))}
    assert g.n == 4 and g.validity.k == 4 and (g.fields.k, g.fields.n) == (8, 9)
    assert sec.systems[ev.PROMPTED].n == 2 and report.systems[ev.PROMPTED].n == 2
    # the guard: 1 of 4 free answers invalid, its retry valid (total 12 instead of 12.5)
    gd = sec.guard
    assert gd is not None and (gd.invalid.k, gd.invalid.n, gd.fixed.k, gd.fixed.n) == (1, 4, 1, 1)
    assert (gd.validity.k, gd.fields.k, gd.fields.n) == (4, 8, 9)
    assert gd.retry_seconds == pytest.approx(0.5) and gd.added_seconds_per_request == pytest.approx(0.125)
    assert (gd.retry_prompt_tokens, gd.retry_completion_tokens) == (30, 12)
    assert gd.added_tokens_per_request == pytest.approx(42 / 4)
    # where the adapter breaks, pooled over every source
    assert list(report.failures_by_path) == ["/status"]
    status = report.failures_by_path["/status"]
    assert status["count"] == 1 and status["kinds"] == {"enum": 1} and status["sources"] == {"requests": 1}
    assert status["styles"] == {"terse": 1} and status["examples"][0]["gold"] == "paid"
    assert report.fields_by_path["/status"] == {"wrong": 1, "total": 7}

    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    (sj,) = saved["input_files"]
    assert sj["name"] == "requests" and sj["path"] == str(requests) and sj["answered"] == 3
    assert list(sj["systems"]) == ["adapter", "adapter+grammar", "base+schema-prompt"]
    assert sj["guard"]["fixed"]["k"] == 1 and sj["guard"]["added_seconds_per_request"] == pytest.approx(0.125)
    assert saved["guard"]["invalid"]["k"] == 0 and saved["failures_by_path"]["/status"]["count"] == 1
    retried = [x for x in saved["answers"] if "retry" in x]
    assert [x["question"] for x in retried] == ["B7 paid 12.5"] and retried[0]["retry"]["valid"]
    assert retried[0]["paths"] == ["/status"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Inputs: requests" in md and "| terse | 2 |" in md and "`/status`" in md
    text = report.text()
    assert "inputs requests" in text and "1/4 free answers invalid, the retry fixed 1/1" in text
    assert json.loads((adapter / "eval.json").read_text())["input_files"]["requests"]["validity"] == 0.75

    # the gate on the files: 3/4 < 0.8
    on_inputs = ev.evaluate(adapter, n=4, target=0.8, inputs=[requests], gate_on="inputs", write=False,
                            generators=gens)
    assert on_inputs.gate.passed is False and on_inputs.gate.value == 0.75 and "gate on inputs" in on_inputs.gate.message
    on_all = ev.evaluate(adapter, n=4, target=0.8, inputs=[requests], gate_on="all", write=False, generators=gens)
    assert on_all.gate.value == pytest.approx(7 / 8) and on_all.gate.passed
    with pytest.raises(SchemagenError, match="needs at least one --inputs"):
        ev.evaluate(adapter, n=4, gate_on="inputs", write=False, generators=gens)


def test_cli_inputs_and_gate_on(tmp_path: Path, make_dataset: Any, order_pairs: Any,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    requests = _write_requests(tmp_path / "requests.jsonl")
    other = _write_requests(tmp_path / "more.jsonl", REQUESTS[:2], bom=False)
    real = ev.evaluate
    seen: dict[str, Any] = {}

    def fake_evaluate(*args: Any, **kwargs: Any) -> ev.Report:
        seen.update(kwargs)
        return real(*args, **kwargs, generators={ev.ADAPTER: _table(FREE), ev.ADAPTER_GRAMMAR: _table(RETRY)})

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    out = str(tmp_path / "rep")
    args = ["eval", str(adapter), "-n", "4", "--inputs", str(requests), "--inputs", str(other), "-o", out]
    result = CliRunner().invoke(main, [*args, "--target", "0.8"])
    assert result.exit_code == 0, result.output
    assert seen["inputs"] == (str(requests), str(other)) and seen["gate_on"] == "main" and seen["guard"]
    assert "inputs requests" in result.output and "inputs more" in result.output
    gated = CliRunner().invoke(main, [*args, "--target", "0.8", "--gate-on", "inputs"])
    assert gated.exit_code == 1 and "gate on inputs: requests, more" in gated.output  # 4/6 valid
    assert "--gate-on" in CliRunner().invoke(main, ["eval", "--help"]).output


# -- resume -----------------------------------------------------------------------------------------


def _log_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()[1:] if x.strip()]


def test_resume_reuses_answers_and_restarts_on_other_settings(tmp_path: Path, make_dataset: Any,
                                                              order_pairs: Any) -> None:
    from schema_specialist.evaluate import AnswerLog

    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    out = tmp_path / "rep"
    calls: list[str] = []
    gens = {ev.ADAPTER: _table({}, calls=calls)}
    first = ev.evaluate(adapter, n=7, out_dir=out, batch_size=3, generators=gens)
    assert len(calls) == 7 and len(_log_lines(out)) == 7 and (out / "hypothesis-instances.json").exists()
    again = ev.evaluate(adapter, n=7, out_dir=out, batch_size=5, generators=gens)  # batch size is not a setting
    assert len(calls) == 7 and any("7 answers resumed" in note for note in again.notes)
    assert again.adapter.validity.k == first.adapter.validity.k == 7
    assert [a["question"] for a in again.answers] == [a["question"] for a in first.answers]
    more = ev.evaluate(adapter, n=9, out_dir=out, generators=gens)  # a bigger n answers only the new inputs
    assert len(calls) == 9 and more.n == 9 and len(_log_lines(out)) == 9
    other = ev.evaluate(adapter, n=7, out_dir=out, max_new_tokens=64, generators=gens)
    assert len(calls) == 16 and any("other settings (max_new_tokens 256 -> 64)" in n for n in other.notes)
    assert len(_log_lines(out)) == 7
    ev.evaluate(adapter, n=7, out_dir=out, max_new_tokens=64, fresh=True, generators=gens)
    assert len(calls) == 23 and len(_log_lines(out)) == 7
    plain = ev.evaluate(adapter, n=7, out_dir=out, max_new_tokens=64, grounded=False, generators=gens)
    assert len(calls) == 30 and any("grounded strings, numbers -> False" in n for n in plain.notes)  # another grammar
    with AnswerLog(out, {"other": 1}), pytest.raises(SchemagenError, match="another eval"):
        ev.evaluate(adapter, n=7, out_dir=out, generators=gens)


def kill_free(batch: Sequence[Item]) -> list[Generation]:
    """The kill -9 test's adapter: slow enough to be killed mid-run; a quarter of the answers not JSON."""
    import time

    time.sleep(0.15)
    return [Generation("not json" if int(it.key, 16) % 4 == 0 else json.dumps(it.gold), 20, 10, seconds=0.1)
            for it in batch]


def kill_grammar(batch: Sequence[Item]) -> list[Generation]:
    import time

    time.sleep(0.15)
    return [Generation(json.dumps(it.gold), 25, 12, seconds=0.2) for it in batch]


KILL_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from schema_specialist import evaluate as ev
from tests.test_eval import kill_free, kill_grammar

ev.evaluate(sys.argv[2], n=int(sys.argv[3]), out_dir=sys.argv[4], batch_size=2, grammar_n=4,
            generators={ev.ADAPTER: kill_free, ev.ADAPTER_GRAMMAR: kill_grammar}, progress="lines")
"""


def test_resume_after_kill_9_loses_nothing_and_counts_nothing_twice(tmp_path: Path, make_dataset: Any,
                                                                   order_pairs: Any) -> None:
    """A real `kill -9` of an eval in a subprocess mid-run; the rerun answers exactly what is missing."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    out, n = tmp_path / "rep", 24
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ROOT), str(adapter), str(n), str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "answers.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_bytes().splitlines()) >= 9:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
    before = _log_lines(out)
    assert 8 <= len(before) < n
    with log.open("a") as f:  # as if the kill had landed mid-write
        f.write('{"system":"adapter","id":"0123')

    asked: dict[str, list[str]] = {ev.ADAPTER: [], ev.ADAPTER_GRAMMAR: []}

    def recording(name: str, fn: Callable[[Sequence[Item]], list[Generation]]) -> Any:
        def generate(batch: Sequence[Item]) -> list[Generation]:
            asked[name].extend(it.key for it in batch)
            return fn(batch)

        return generate

    report = ev.evaluate(adapter, n=n, out_dir=out, batch_size=2, grammar_n=4, generators={
        ev.ADAPTER: recording(ev.ADAPTER, kill_free), ev.ADAPTER_GRAMMAR: recording(ev.ADAPTER_GRAMMAR, kill_grammar)})
    done_before = {(r["system"], r["id"]) for r in before}
    after = _log_lines(out)
    keys = [(r["system"], r["id"]) for r in after]
    assert len(keys) == len(set(keys)), "an answer logged twice"
    assert after[:len(before)] == before, "an answer written before the kill was lost or changed"
    for name, got in asked.items():  # nothing answered twice: the rerun asked only for what the log lacked
        assert not {(name, k) for k in got} & done_before
        assert len(got) == len(set(got))
    assert asked[ev.ADAPTER], "the kill should have left adapter answers to do"
    assert report.n == n and report.adapter.n == n

    clean = ev.evaluate(adapter, n=n, out_dir=tmp_path / "clean", batch_size=2, grammar_n=4,
                        generators={ev.ADAPTER: kill_free, ev.ADAPTER_GRAMMAR: kill_grammar})
    for key in ("validity", "fields", "exact"):
        assert getattr(report.adapter, key) == getattr(clean.adapter, key)
    assert report.guard == clean.guard and report.guard is not None and report.guard.invalid.k > 0
    assert report.failures_by_path == clean.failures_by_path
    assert sorted(keys) == sorted((r["system"], r["id"]) for r in _log_lines(tmp_path / "clean"))


def test_progress_lines_off_a_terminal() -> None:
    import io

    from schema_specialist.evaluate.progress import Progress

    stream = io.StringIO()
    bar = Progress("auto", stream=stream)
    assert bar.mode == "lines"
    bar.add_total(20)
    bar.stage("adapter", 20, resumed=5)
    for _ in range(20):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "eval: adapter: 20 to answer (5 more resumed from the answer log)"
    assert len(lines) == 11 and lines[-1].startswith("eval: adapter: 20/20 answers (100%)")
    silent = io.StringIO()
    quiet = Progress("none", stream=silent)
    quiet.add_total(3)
    quiet.stage("adapter", 3)
    quiet.update(3)
    quiet.message("x")
    assert silent.getvalue() == ""


def test_cli_prints_only_its_own_lines(tmp_path: Path, tiny_adapter: Path) -> None:
    """A real CLI process on the tiny model: no transformers bars, no library warnings on stderr."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    requests = _write_requests(tmp_path / "requests.jsonl")
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # show every warning that is not silenced at its source
    proc = subprocess.run(
        [sys.executable, "-m", "schema_specialist", "eval", str(tiny_adapter), "-n", "3", "--baseline-n", "1",
         "--grammar-n", "1", "--max-new-tokens", "4", "--batch-size", "4", "--inputs", str(requests),
         "-o", str(tmp_path / "rep")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip(), "progress lines expected off a terminal"
    for line in proc.stderr.splitlines():
        assert line.startswith("eval: "), proc.stderr
    assert "inputs requests" in proc.stdout and "adapter + schema grammar" in proc.stdout
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    (sec,) = report["input_files"]
    assert sec["systems"]["adapter"]["n"] == 4 and sec["systems"]["adapter+grammar"]["n"] >= 1
    assert sec["guard"]["invalid"]["k"] == 4 and sec["guard"]["fixed"]["n"] == 4


def _load_script(name: str) -> Any:
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_reliability_resumes_and_compares(tmp_path: Path, make_dataset: Any, order_pairs: Any,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load_script("bench_reliability")
    adapter = _adapter(tmp_path, make_dataset(ORDER_SCHEMA, order_pairs))
    real = bench.evaluate
    calls: list[str] = []

    def fake(*args: Any, **kwargs: Any) -> ev.Report:
        assert kwargs["baselines"] is False and kwargs["grammar_n"] == 0 and kwargs["guard"]
        return real(*args, **kwargs, generators={
            ev.ADAPTER: _table({it.question: "not json" for it in ev.test_items(adapter.parent / "ds")[:2]},
                               calls=calls),
            ev.ADAPTER_GRAMMAR: _table({})})

    monkeypatch.setattr(bench, "evaluate", fake)
    assert bench.main(["--adapter", str(adapter), "-n", "8", "--no-doc"]) == 0  # the gate fails; the bench reports it
    out = capsys.readouterr().out
    assert "free validity: **6/8 = 0.7500**, Wilson 95% [0.4093, 0.9285]" in out
    assert "2/8 free answers invalid, the retry fixed 2/2" in out and "| not_json | 2 |" in out
    assert "| `(root)` | 2 | not_json 2 | test 2 |" in out and len(calls) == 8
    saved = adapter / "reliability" / "report.json"
    assert ev.read_failures_by_path(saved)["(root)"]["count"] == 2
    assert ev.read_failures_by_path(saved.parent) == ev.read_failures_by_path(saved)
    assert bench.main(["--adapter", str(adapter), "-n", "8", "--no-doc", "--compare", str(saved)]) == 0
    out = capsys.readouterr().out
    assert len(calls) == 8 and "10 answers resumed" in out  # 8 free, 2 retries: the rerun decoded nothing
    assert "validity 0.7500 (2 failures of 8) -> 0.7500 (2 of 8); the same inputs." in out
    assert "| `(root)` | 2 | 2 |" in out
    assert bench.main(["--adapter", str(tmp_path / "missing"), "--no-doc"]) == 2
    with pytest.raises(SchemagenError, match="not an eval report"):
        ev.read_failures_by_path(adapter / "schemagen.json")


def test_adapter_grammar_decodes_under_the_schema_not_the_teacher_grammar(tiny_adapter: Path) -> None:
    """Eval's adapter + grammar (and the guard) must allow what a request says: an id in lowercase with
    digits first and a total with four decimals are valid order answers; the teacher's steering bans both."""
    from tests.test_decoding import assert_writable

    runner = ev.ModelRunner(ev.load_adapter_meta(tiny_adapter), max_new_tokens=6)
    _, _, rows = runner.constrained_processor()
    assert_writable(rows, runner.tokenizer, runner.hf_model.config.vocab_size,
                    {"id": "7b-x/9", "status": "paid", "total": 12.3456})
