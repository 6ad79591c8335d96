"""`schemagen generate --inputs FILE`: the user's own requests labelled, validated, grounded, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.cli import main
from schema_specialist.dataset import SPLITS, read_jsonl
from schema_specialist.generate import GenerateConfig, generate
from schema_specialist.teachers import Completion, Prepared, Teacher
from tests.test_generate import SMALL, _schema_file

# request -> what the teacher answers (the third invents a temperature the request does not state)
ANSWERS = {
    "Sensor s-12 reads 21.5 degrees, ok is true.": {"sensor": "s-12", "celsius": 21.5, "ok": True},
    "Sensor s-13 reads 18 degrees, ok is true.": {"sensor": "s-13", "celsius": 30, "ok": True},
    "b7 is at 1,250.5? no: 12.5 celsius, not ok": {"sensor": "b7", "celsius": 12.5, "ok": False},
    "Probe p9 shows -3 celsius and is ok": {"sensor": "p9", "celsius": -3, "ok": True},
    "Unit u1: 40 degrees, ok = false": {"sensor": "u1", "celsius": 40, "ok": False},
}
REQUESTS = list(ANSWERS)


class LabelTeacher(Teacher):
    """Answers a labelling prompt from ANSWERS (found by its request), a synthetic one from a counter."""

    kind = "scripted"

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__("scripted")
        self.asked: list[str] = []  # requests it answered
        self.prompts: list[list[dict[str, str]]] = []
        self.schemas: list[dict[str, Any]] = []
        self.synthetic = 0
        self.fail_after = fail_after

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        self.schemas.append(schema)
        return Prepared("scripted")

    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise KeyboardInterrupt  # the run is killed between two batches
        out = []
        for p in prompts:
            self.prompts.append(p)
            text = p[-1]["content"]
            if "Request: " in text:
                request = text.split("Request: ", 1)[1]
                self.asked.append(request)
                out.append(Completion(json.dumps(ANSWERS[request]), 20, 10))
            else:
                self.synthetic += 1
                out.append(Completion(json.dumps({"sensor": f"syn{self.synthetic}", "celsius": self.synthetic,
                                                  "ok": True}), 20, 10))
        return out


def _cfg(**kw: Any) -> GenerateConfig:
    kw.setdefault("balance", False)
    kw.setdefault("plausible", False)
    kw.setdefault("drop_optional", 0.0)
    kw.setdefault("widen", 0.0)
    kw.setdefault("widen_dates", 0.0)
    kw.setdefault("n", 0)
    return GenerateConfig(progress=False, **kw)


def _records(out: Path) -> list[dict[str, Any]]:
    return [rec for s in SPLITS for _, rec in read_jsonl(out / f"{s}.jsonl")]


def _txt(tmp_path: Path, lines: list[str], name: str = "requests.txt") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_requests_are_answered_under_the_schema_grammar_and_ungrounded_ones_rejected(tmp_path: Path) -> None:
    inputs = _txt(tmp_path, REQUESTS)
    out = tmp_path / "out"
    teacher = LabelTeacher()
    m = generate(_schema_file(tmp_path), out, _cfg(inputs=[str(inputs)], batch_size=2), teacher=teacher)
    # every request answered once, under the original schema, with the request in the prompt
    assert sorted(teacher.asked) == sorted(REQUESTS) and teacher.synthetic == 0
    assert teacher.schemas[0] == SMALL
    assert all("reading" in p[-1]["content"] and "Copy every value" in p[-1]["content"] for p in teacher.prompts)
    recs = _records(out)
    questions = {r["messages"][1]["content"] for r in recs}
    assert questions == set(REQUESTS) - {REQUESTS[1]}
    for r in recs:
        q = r["messages"][1]["content"]
        assert json.loads(r["messages"][2]["content"]) == ANSWERS[q]
        assert r["schemagen"]["source"] == "inputs" and r["schemagen"]["answered_by"] == "teacher"
        assert r["schemagen"]["file"] == str(inputs) and r["schemagen"]["input"]
    rejected = [rec for _, rec in read_jsonl(out / "rejected.jsonl")]
    assert len(rejected) == 1
    assert rejected[0]["reason"] == "not grounded: the request does not state /celsius"
    assert rejected[0]["question"] == REQUESTS[1] and rejected[0]["input"]
    assert m["sources"] == {"inputs": 4} and m["complete"]
    i = m["inputs"]
    assert (i["accepted"], i["answered_by_teacher"], i["rejected"]) == (4, 4, 1)
    assert i["rejected_by_reason"] == {"not grounded": 1} and i["files"][0]["requests"] == 5
    card = (out / "card.md").read_text()
    assert "Question sources: inputs 4" in card and "- *inputs*:" in card


def test_jsonl_answers_are_kept_and_n_tops_up_with_synthetic_pairs(tmp_path: Path) -> None:
    given = {"sensor": "g1", "celsius": 7, "ok": True}
    lines = [json.dumps({"question": "Gauge g1 reads 7 degrees, ok is true.", "answer": given, "style": "terse"}),
             json.dumps({"question": REQUESTS[0]}), "", json.dumps({"question": REQUESTS[0]})]  # a repeat
    inputs = tmp_path / "requests.jsonl"
    inputs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    teacher = LabelTeacher()
    m = generate(_schema_file(tmp_path), out, _cfg(inputs=[str(inputs)], n=6), teacher=teacher)
    assert teacher.asked == [REQUESTS[0]]  # the given answer needs no teacher; the repeat is read once
    recs = _records(out)
    by_q = {r["messages"][1]["content"]: r for r in recs}
    kept = by_q["Gauge g1 reads 7 degrees, ok is true."]
    assert json.loads(kept["messages"][2]["content"]) == given
    assert kept["schemagen"]["answered_by"] == "file" and kept["schemagen"]["style"] == "terse"
    assert len(recs) == 6 and m["sources"] == {"inputs": 2, "template": 4}
    assert [r["schemagen"]["source"] for r in sorted(recs, key=lambda r: r["schemagen"]["candidate"])][:2] == \
        ["inputs", "inputs"]  # inputs first
    assert {r["schemagen"]["split"] for r in recs} <= set(SPLITS)
    card = (out / "card.md").read_text()
    assert "- *inputs*:" in card and "- *template*:" in card


def test_an_interrupted_run_resumes_without_answering_a_request_twice(tmp_path: Path) -> None:
    inputs = _txt(tmp_path, REQUESTS)
    schema, out = _schema_file(tmp_path), tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        generate(schema, out, _cfg(inputs=[str(inputs)], batch_size=2), teacher=LabelTeacher(fail_after=2))
    first = _records(out)
    # the first batch (one accepted, one rejected) was written before the kill
    assert len(first) == 1 and len(list(read_jsonl(out / "rejected.jsonl"))) == 1
    again = LabelTeacher()
    m = generate(schema, out, _cfg(inputs=[str(inputs)], batch_size=2), teacher=again)
    assert sorted(again.asked) == sorted(REQUESTS[2:])  # only the requests no run has answered
    recs = _records(out)
    assert len(recs) == 4 and all(r in recs for r in first)
    assert len({r["messages"][1]["content"] for r in recs}) == 4
    assert m["inputs"]["accepted"] == 4 and m["inputs"]["rejected"] == 1 and m["inputs"]["pending"] == 0
    # everything answered: a rerun loads no model at all
    m = generate(schema, out, _cfg(inputs=[str(inputs)], teacher="/nonexistent/model"))
    assert m["counts"]["accepted"] == 4


def test_cli_inputs_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from schema_specialist.generate import pipeline

    teacher = LabelTeacher()
    monkeypatch.setattr(pipeline, "make_teacher", lambda *a, **k: teacher)
    inputs = _txt(tmp_path, REQUESTS[:3])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", str(_schema_file(tmp_path)), "-o", str(out), "--inputs",
                                       str(inputs), "--quiet", "--no-balance", "--no-plausible",
                                       "--drop-optional", "0"])
    assert result.exit_code == 0, result.output
    assert "inputs: 2 labelled (2 by the teacher, 0 from the file), 1 rejected (not grounded 1)" in result.output
    assert len(_records(out)) == 2  # without -n: the inputs alone
    assert "--inputs" in CliRunner().invoke(main, ["generate", "--help"]).output


BAD = [
    ("missing", None, "no such inputs file"),
    ("empty.txt", b"\n  \n", "empty: no requests"),
    ("latin1.txt", "caf\u00e9 at 3 degrees\n".encode("latin-1"), "line 1: not UTF-8"),
    ("bad.jsonl", b'{"question": "a at 1 degree"}\n{"question": \n', "line 2: not valid JSON"),
    ("noq.jsonl", b'{"question": "a at 1 degree"}\n\n{"text": "b"}\n', "line 3: no `question` string"),
    ("badanswer.jsonl", b'{"question": "a", "answer": {"sensor": 3}}\n', "line 1: `answer` is not valid"),
]


@pytest.mark.parametrize(("name", "content", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_file_is_one_line_exit_2_and_loses_nothing(tmp_path: Path, name: str, content: bytes | None,
                                                              needle: str) -> None:
    schema, out = _schema_file(tmp_path), tmp_path / "out"
    generate(schema, out, _cfg(inputs=[str(_txt(tmp_path, REQUESTS[:1], "ok.txt"))]), teacher=LabelTeacher())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(main, ["generate", str(schema), "-o", str(out), "--inputs", str(path),
                                           "--quiet", *extra])
        assert result.exit_code == 2, result.output
        err = result.output.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        assert str(path) in err and needle in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written is lost


def test_tiny_model_teacher_labels_under_the_grammar(tmp_path: Path, tiny_mistral_dir: Path) -> None:
    """The real decoding path (a random model under the schema's grammar): every request is answered
    once, and whatever is kept is valid and grounded."""
    from schema_specialist.generate.questions import missing_facts
    from schema_specialist.schema import load_schema

    schema_path, out = _schema_file(tmp_path), tmp_path / "out"
    m = generate(schema_path, out, _cfg(inputs=[str(_txt(tmp_path, REQUESTS))], teacher=str(tiny_mistral_dir),
                                        workers=1, dtype="float32", max_new_tokens=48, batch_size=5))
    schema = load_schema(schema_path)
    assert m["engine"]["name"] in ("xgrammar", "llguidance", "outlines_core")
    assert m["inputs"]["accepted"] + m["inputs"]["rejected"] == len(REQUESTS) and m["tokens"]["completion"] > 0
    for r in _records(out):
        question, value = r["messages"][1]["content"], json.loads(r["messages"][2]["content"])
        assert schema.is_valid(value) and not missing_facts(question, value, schema)
    for _, rec in read_jsonl(out / "rejected.jsonl"):
        assert rec["reason"].split(":")[0] in ("not grounded", "not JSON", "invalid", "duplicate"), rec["reason"]
