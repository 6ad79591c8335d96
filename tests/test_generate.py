"""`schemagen generate`: the pipeline with scripted and tiny-model teachers, resume, bad input."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.cli import main
from schema_specialist.dataset import SPLITS, read_jsonl
from schema_specialist.generate import GenerateConfig, generate
from schema_specialist.schema import load_schema
from schema_specialist.teachers import Completion, Prepared, Teacher

ROOT = Path(__file__).resolve().parent.parent

SMALL = {
    "title": "reading",
    "type": "object",
    "properties": {
        "sensor": {"type": "string", "maxLength": 12},
        "celsius": {"type": "number", "minimum": -40, "maximum": 60},
        "ok": {"type": "boolean"},
    },
    "required": ["sensor", "celsius", "ok"],
    "additionalProperties": False,
}


class ScriptedTeacher(Teacher):
    """Returns the given texts in order (cycling), as a teacher would."""

    kind = "scripted"

    def __init__(self, texts: list[str]) -> None:
        super().__init__("scripted")
        self.texts = texts
        self.calls = 0
        self.schemas: list[dict[str, Any]] = []

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        self.schemas.append(schema)
        return Prepared("scripted")

    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        out = []
        for _ in prompts:
            out.append(Completion(self.texts[self.calls % len(self.texts)], 10, 5))
            self.calls += 1
        return out


def _schema_file(tmp_path: Path, schema: dict[str, Any] = SMALL, name: str = "reading.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(schema), encoding="utf-8")
    return p


def _records(out: Path) -> list[dict[str, Any]]:
    return [rec for s in SPLITS for _, rec in read_jsonl(out / f"{s}.jsonl")]


def _cfg(**kw: Any) -> GenerateConfig:
    kw.setdefault("balance", False)  # scripted teachers check exact values; test_decoding covers rebalance
    kw.setdefault("plausible", False)  # scripted values such as "s1"; test_prose covers the filter
    kw.setdefault("drop_optional", 0.0)
    kw.setdefault("phrases", 0.0)  # exact strings too; test_phrases covers the phrase step
    kw.setdefault("widen", 0.0)  # and exact dates; test_widen covers the step, the test below the wiring
    kw.setdefault("widen_dates", 0.0)
    return GenerateConfig(progress=False, **kw)


def test_judging_rejects_with_reasons_and_repairs_bounds(tmp_path: Path) -> None:
    texts = [
        '{"sensor":"s1","celsius":21.5,"ok":true}',  # valid
        '{"sensor":"s2","celsius":99,"ok":false}',  # above maximum: repaired to 60
        '{"sensor":"s3","celsius":',  # truncated
        '{"sensor":"s1","celsius":21.5,"ok":true}',  # duplicate instance
        '{"sensor":"s4","ok":true}',  # missing required: not repairable
        '{"sensor":"s5","celsius":-3,"ok":true,"extra":1}',  # extra key: repaired by dropping it
    ]
    out = tmp_path / "out"
    m = generate(_schema_file(tmp_path), out, _cfg(n=3, batch_size=6), teacher=ScriptedTeacher(texts))
    recs = _records(out)
    answers = [json.loads(r["messages"][-1]["content"]) for r in recs]
    assert answers == [{"sensor": "s1", "celsius": 21.5, "ok": True},
                       {"sensor": "s2", "celsius": 60, "ok": False},
                       {"sensor": "s5", "celsius": -3, "ok": True}]
    reasons = [r["reason"] for _, r in read_jsonl(out / "rejected.jsonl")]
    assert reasons[0].startswith("not JSON") and reasons[1].startswith("duplicate")
    assert reasons[2].startswith("invalid: required")
    assert m["counts"]["repaired"] == 2 and m["counts"]["accepted"] == 3 and m["counts"]["rejected"] == 3
    assert m["acceptance_rate"] == 0.5
    assert m["faithfulness"]["rate"] == 1.0
    assert (out / "card.md").read_text().count("**Q:**") == 3


def test_widen_spreads_the_teachers_years_and_codes_its_strings(tmp_path: Path) -> None:
    """A teacher that dates everything 2022 and writes plain words: `--widen` spreads the years over the
    grammar's range and puts codes among the words; every pair stays valid and faithful."""
    schema = {"title": "visit", "type": "object", "additionalProperties": False,
              "required": ["note", "on"],
              "properties": {"note": {"type": "string", "maxLength": 40}, "on": {"type": "string", "format": "date"}}}
    texts = [json.dumps({"note": f"routine check {w}", "on": f"2022-0{1 + i % 9}-1{i % 10}"})
             for i, w in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"] * 10)]
    out = tmp_path / "out"
    cfg = _cfg(n=40, batch_size=8, widen=0.5, widen_dates=0.5)
    m = generate(_schema_file(tmp_path, schema, "visit.json"), out, cfg, teacher=ScriptedTeacher(texts))
    assert m["settings"]["widen"] == 0.5 and m["settings"]["widen_dates"] == 0.5
    answers = [json.loads(r["messages"][-1]["content"]) for r in _records(out)]
    years = Counter(a["on"][:4] for a in answers)
    assert years["2022"] < len(answers) * 0.8 and len(years) > 5
    assert any(any(ch.isdigit() for ch in a["note"]) for a in answers)
    assert m["faithfulness"]["rate"] == 1.0


def test_records_are_chat_messages_without_schema_and_questions_state_values(tmp_path: Path) -> None:
    texts = [json.dumps({"sensor": f"s{i}", "celsius": i - 5, "ok": i % 2 == 0}) for i in range(20)]
    out = tmp_path / "out"
    generate(_schema_file(tmp_path), out, _cfg(n=20, batch_size=7), teacher=ScriptedTeacher(texts))
    recs = _records(out)
    assert [len(list(read_jsonl(out / f"{s}.jsonl"))) for s in SPLITS] == [16, 2, 2]
    schema = load_schema(_schema_file(tmp_path))
    for rec in recs:
        roles = [m["role"] for m in rec["messages"]]
        assert roles == ["system", "user", "assistant"]
        question, answer = rec["messages"][1]["content"], rec["messages"][2]["content"]
        assert "celsius" in question and '"properties"' not in question
        value = json.loads(answer)
        assert schema.is_valid(value)
        assert answer == json.dumps(value, separators=(",", ":"))  # compact
        assert list(value) == ["sensor", "celsius", "ok"]  # schema order
        assert value["sensor"] in question


def test_resume_continues_without_loss_or_duplicates(tmp_path: Path) -> None:
    texts = [json.dumps({"sensor": f"s{i}", "celsius": i, "ok": True}) for i in range(40)]
    schema = _schema_file(tmp_path)
    out = tmp_path / "out"
    generate(schema, out, _cfg(n=6, batch_size=4), teacher=ScriptedTeacher(texts))
    first = _records(out)
    # a kill -9 mid-write leaves a partial line: the rerun heals it and goes on
    with (out / "train.jsonl").open("a") as f:
        f.write('{"messages": [{"role": "sys')
    teacher = ScriptedTeacher(texts)
    teacher.calls = 6
    m = generate(schema, out, _cfg(n=12, batch_size=4), teacher=teacher)
    recs = _records(out)
    ids = [r["schemagen"]["candidate"] for r in recs]
    assert len(recs) == 12 and len(set(ids)) == 12 and sorted(ids) == list(range(12))
    assert all(r in recs for r in first)
    # question styles are counted over the whole dataset, the resumed part included
    assert sum(m["question_styles"].values()) == 12
    assert m["question_styles"] == dict(Counter(r["schemagen"]["style"] for r in recs))
    assert m["counts"]["accepted"] == 12 and m["complete"]
    # nothing more to do: a rerun with the same -n writes nothing new
    generate(schema, out, _cfg(n=12), teacher=ScriptedTeacher(texts))
    assert len(_records(out)) == 12
    # --overwrite starts again
    generate(schema, out, _cfg(n=3, overwrite=True), teacher=ScriptedTeacher(texts))
    assert len(_records(out)) == 3


def test_complete_dataset_rerun_loads_no_model(tmp_path: Path) -> None:
    texts = [json.dumps({"sensor": f"s{i}", "celsius": i, "ok": True}) for i in range(10)]
    schema = _schema_file(tmp_path)
    out = tmp_path / "out"
    generate(schema, out, _cfg(n=3), teacher=ScriptedTeacher(texts))
    # a model that does not exist is never opened when there is nothing left to generate
    m = generate(schema, out, _cfg(n=3, teacher="/nonexistent/model"))
    assert m["complete"] and m["counts"]["accepted"] == 3 and m["teacher"]["kind"] == "scripted"


def test_changed_schema_is_refused_on_resume(tmp_path: Path) -> None:
    texts = [json.dumps({"sensor": f"s{i}", "celsius": i, "ok": True}) for i in range(10)]
    schema = _schema_file(tmp_path)
    out = tmp_path / "out"
    generate(schema, out, _cfg(n=2), teacher=ScriptedTeacher(texts))
    changed = dict(SMALL, title="reading v2")
    schema.write_text(json.dumps(changed))
    with pytest.raises(Exception, match="another version of the schema"):
        generate(schema, out, _cfg(n=4), teacher=ScriptedTeacher(texts))


def test_budget_exhausted_is_reported_not_looped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    m = generate(_schema_file(tmp_path), out, _cfg(n=5, max_candidates=8),
                 teacher=ScriptedTeacher(['{"sensor": 1}']))
    assert m["counts"]["accepted"] == 0 and m["counts"]["candidates"] == 8 and not m["complete"]


def test_tiny_mistral_teacher_under_constraints_emits_only_valid_pairs(tmp_path: Path, tiny_mistral_dir: Path) -> None:
    out = tmp_path / "tiny"
    m = generate(_schema_file(tmp_path), out, _cfg(n=6, teacher=str(tiny_mistral_dir), batch_size=6,
                                                   max_new_tokens=64, dtype="float32", max_candidates=60,
                                                   workers=1))
    schema = load_schema(_schema_file(tmp_path))
    recs = _records(out)
    assert m["engine"]["name"] in ("xgrammar", "llguidance", "outlines_core")
    assert m["teacher"]["model_class"] == "MistralForCausalLM"
    assert recs, "a random model under constraints still writes some valid instances"
    for rec in recs:
        assert schema.is_valid(json.loads(rec["messages"][-1]["content"]))
    assert m["tokens"]["completion"] > 0 and m["tokens"]["prompt"] > 0


@pytest.mark.parametrize("engine", ["xgrammar", "llguidance", "outlines_core"])
def test_each_engine_runs(tmp_path: Path, tiny_mistral_dir: Path, engine: str) -> None:
    out = tmp_path / engine
    m = generate(_schema_file(tmp_path), out, _cfg(n=2, teacher=str(tiny_mistral_dir), engine=engine,
                                                   batch_size=4, max_new_tokens=48, dtype="float32", workers=1,
                                                   max_candidates=24))
    assert m["engine"]["name"] == engine and m["engine"]["choice"] == engine
    schema = load_schema(_schema_file(tmp_path))
    assert all(schema.is_valid(json.loads(r["messages"][-1]["content"])) for r in _records(out))


class _Handler(BaseHTTPRequestHandler):
    """A fake OpenAI-compatible chat endpoint; subclasses answer in `answer` and keep their own `bodies`."""

    bodies: list[dict[str, Any]] = []

    def answer(self, body: dict[str, Any]) -> str:
        i = len(type(self).bodies)
        return json.dumps({"sensor": f"http{i}", "celsius": i, "ok": True})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        content = self.answer(body)
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}],
                           "usage": {"prompt_tokens": 30, "completion_tokens": 12}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_openai_compatible_teacher_sends_json_schema_response_format(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"openai:http://127.0.0.1:{server.server_port}/v1#my-model"
        out = tmp_path / "http"
        result = CliRunner().invoke(main, ["generate", str(_schema_file(tmp_path)), "-n", "4", "-o", str(out),
                                           "--teacher", url, "--quiet", "--no-plausible"])
        assert result.exit_code == 0, result.output
    finally:
        server.shutdown()
    body = _Handler.bodies[0]
    assert body["model"] == "my-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["celsius"]["maximum"] == 60
    m = json.loads((out / "manifest.json").read_text())
    n_calls = len(_Handler.bodies)
    assert m["teacher"]["kind"] == "openai" and m["tokens"] == {"prompt": 30 * n_calls, "completion": 12 * n_calls}
    assert len(_records(out)) == 4


@pytest.mark.parametrize(("content", "args", "needle"), [
    (None, [], "no such file"),
    ("{not json", [], "not valid JSON"),
    ('{"type": "integr"}', [], "invalid schema"),
    ('{"type": "object", "required": "name"}', [], "invalid schema"),
    ('{"properties": {"a": {"$ref": "#/$defs/missing"}}}', [], "does not resolve"),
    ('{"properties": {"a": {"$ref": "https://example.com/s.json"}}}', [], "remote $ref"),
    ('{"properties": {"a": {"type": "string", "pattern": "(["}}}', [], "invalid schema"),
    ('{"type": "object"}', ["--teacher", "bogus:thing"], "bad --teacher"),
    ('{"type": "object"}', ["--teacher", "/nonexistent/model"], "not found"),
    ('{"type": "object"}', ["-n", "0"], "-n must be at least 1"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, content: str | None, args: list[str], needle: str) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(main, ["generate", str(path), "-o", str(tmp_path / "o"), "--quiet", *args])
    assert result.exit_code == 2, result.output
    err = result.output.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert needle in err
    if content is not None and needle != "bad --teacher" and "not found" not in needle and "-n" not in needle:
        assert str(path) in err


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for cmd in ("generate",):
        assert cmd in result.output


@pytest.mark.slow
def test_embedded_model_generates_valid_faithful_pairs(tmp_path: Path) -> None:
    """Integration: the real SmolLM2-135M teacher on an example schema."""
    out = tmp_path / "order"
    m = generate(ROOT / "schemas" / "order.json", out, _cfg(n=4, batch_size=4, seed=3, max_candidates=16))
    schema = load_schema(ROOT / "schemas" / "order.json")
    recs = _records(out)
    assert m["teacher"]["model_class"] == "LlamaForCausalLM"
    assert len(recs) >= 2
    assert all(schema.is_valid(json.loads(r["messages"][-1]["content"])) for r in recs)
    assert m["faithfulness"]["rate"] >= 0.9
