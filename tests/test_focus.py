"""`schemagen generate --focus REPORT.json`: new pairs lean toward the report's failures; test split fixed."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.cli import main
from schema_specialist.dataset import SPLITS, read_jsonl
from schema_specialist.evaluate.inputs import Generation, Item
from schema_specialist.evaluate.scoring import score, summarize
from schema_specialist.generate import GenerateConfig, generate
from schema_specialist.generate.focus import Focus
from schema_specialist.schema import load_schema, schema_from_dict
from tests.test_generate import ScriptedTeacher, _schema_file

TICKET = {
    "title": "ticket",
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 12},
        "status": {"enum": ["open", "pending", "closed"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tokens_used": {"type": "integer", "minimum": 0, "maximum": 100000},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["id", "status", "score"],
    "additionalProperties": False,
}
# what the teacher writes: varied ids and scores well inside the bounds, both optional fields present
TEXTS = [json.dumps({"id": f"T{i:04d}", "status": "open", "score": round(0.1 + (i * 37 % 80) / 100, 2),
                     "tokens_used": 100 + i * 7, "priority": 1 + i % 5}) for i in range(600)]


def _cfg(**kw: Any) -> GenerateConfig:
    kw.setdefault("plausible", False)
    kw.setdefault("drop_optional", 0.5)
    kw.setdefault("batch_size", 16)
    return GenerateConfig(progress=False, **kw)


def _records(out: Path, *splits: str) -> list[dict[str, Any]]:
    return [rec for s in splits or SPLITS for _, rec in read_jsonl(out / f"{s}.jsonl")]


def _answers(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(r["messages"][-1]["content"]) for r in recs]


def write_report(path: Path, schema_path: Path, failing: list[tuple[dict[str, Any], str]], passing: int = 12) -> Path:
    """A report.json made by eval's own scoring: `failing` (gold, the adapter's answer) in colon-style
    questions, `passing` right answers in prose."""
    schema = load_schema(schema_path)
    scored = []
    for i, (gold, answer) in enumerate(failing):
        scored.append(score(Item(f"failing question {i}", gold, "test", style="colon"), Generation(answer), schema))
    for i in range(passing):
        gold = {"id": f"P{i}", "status": "open", "score": 0.5}
        scored.append(score(Item(f"passing question {i}", gold, "test", style="prose"),
                            Generation(json.dumps(gold)), schema))
    adapter = summarize("adapter", scored)
    report = {"format": "schemagen-eval/1", "schema_sha256": schema.sha256,
              "systems": {"adapter": adapter.to_dict()}, "input_files": [],
              "failures_by_path": adapter.failures_by_path, "fields_by_path": adapter.fields_by_path}
    path.mkdir(parents=True, exist_ok=True)
    (path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return path / "report.json"


# the adapter writes "done" where the gold is "closed", and 40 for a score of 0.4
FAILING = [({"id": f"F{i}", "status": "closed", "score": 0.5}, json.dumps({"id": f"F{i}", "status": "done",
                                                                           "score": 0.5})) for i in range(6)] + \
          [({"id": f"G{i}", "status": "open", "score": 0.4}, json.dumps({"id": f"G{i}", "status": "open",
                                                                         "score": 40})) for i in range(4)]


@pytest.fixture
def base(tmp_path: Path) -> tuple[Path, Path]:
    """A 30-pair dataset of the ticket schema and its schema file."""
    schema = _schema_file(tmp_path, TICKET, "ticket.json")
    out = tmp_path / "ds"
    generate(schema, out, _cfg(n=30), teacher=ScriptedTeacher(TEXTS))
    return schema, out


def _grow(schema: Path, out: Path, report: Path | None, n: int = 130) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    old = {json.dumps(r, sort_keys=True) for r in _records(out)}
    teacher = ScriptedTeacher(TEXTS)
    teacher.calls = 200  # the teacher goes on with instances the base dataset never saw
    m = generate(schema, out, _cfg(n=n, focus=str(report) if report else None), teacher=teacher)
    new = [r for r in _records(out) if json.dumps(r, sort_keys=True) not in old]
    return m, new


def test_focus_leans_toward_the_failing_paths_and_styles(base: tuple[Path, Path], tmp_path: Path) -> None:
    schema, out = base
    control = tmp_path / "control"
    shutil.copytree(out, control)
    report = write_report(tmp_path / "report", schema, FAILING)
    test_before = (out / "test.jsonl").read_bytes()

    m, new = _grow(schema, out, report)
    _, plain = _grow(schema, control, None)
    assert len(new) == len(plain) == 100

    def share(recs: list[dict[str, Any]], pred: Any) -> float:
        return sum(map(pred, _answers(recs))) / len(recs)

    def closed(a: dict[str, Any]) -> bool:
        return a["status"] == "closed"

    def at_bound(a: dict[str, Any]) -> bool:
        return a["score"] <= 0.05 or a["score"] >= 0.95

    # /status failed toward "closed": many more new pairs say closed (control: about a third)
    assert share(new, closed) >= share(plain, closed) + 0.15, (share(new, closed), share(plain, closed))
    # /score failed its bounds: new pairs sit at or near 0 and 1 (the teacher never writes those)
    assert share(plain, at_bound) == 0 and share(new, at_bound) >= 0.1
    # colon-style questions failed, prose ones did not: the new pairs are written in colon style far more
    colon = sum(r["schemagen"]["style"] == "colon" for r in new) / len(new)
    colon_plain = sum(r["schemagen"]["style"] == "colon" for r in plain) / len(plain)
    assert colon >= colon_plain + 0.3, (colon, colon_plain)

    # the test split is the fixed held-out set: unchanged; new pairs go to train and val
    assert (out / "test.jsonl").read_bytes() == test_before
    assert {r["schemagen"]["split"] for r in new} == {"train", "val"}
    assert m["counts"]["test"] == 3 and m["counts"]["accepted"] == 130
    # nothing duplicated
    questions = [r["messages"][1]["content"] for r in _records(out)]
    assert len(set(questions)) == len(questions)
    assert len({json.dumps(a, sort_keys=True) for a in _answers(_records(out))}) == 130
    # the manifest records the focus: report, sha256, the paths it leaned on, the new pairs
    (rnd,) = m["focus"]
    assert rnd["report"] == str(report)
    assert rnd["sha256"] == hashlib.sha256(report.read_bytes()).hexdigest()
    assert [p["path"] for p in rnd["paths"]][:2] == ["/status", "/score"]
    assert rnd["paths"][0]["kind"] == "enum" and rnd["paths"][0]["values"][0] == "closed"
    assert rnd["paths"][1]["kind"] == "bounds" and rnd["styles"] == {"colon": 1.0}
    assert rnd["pairs"] == 100 and rnd["pairs_before"] == 30
    assert rnd["leaned"]["/status"] > rnd["leaned"]["/score"] > 0
    assert all(r["schemagen"]["focus"] == rnd["sha256"][:12] for r in new)
    assert "Focus rounds:" in (out / "card.md").read_text()


def test_an_interrupted_focus_round_resumes_as_the_same_round(base: tuple[Path, Path], tmp_path: Path) -> None:
    schema, out = base
    report = write_report(tmp_path / "report", schema, FAILING)
    test_before = (out / "test.jsonl").read_bytes()
    _grow(schema, out, report, n=50)
    m, _ = _grow(schema, out, report, n=70)  # resumed later with a larger total: the same round goes on
    assert len(m["focus"]) == 1 and m["focus"][0]["pairs"] == 40 and m["focus"][0]["pairs_before"] == 30
    assert (out / "test.jsonl").read_bytes() == test_before
    # once a focus round ran, even a plain rerun keeps the held-out split fixed
    m, new = _grow(schema, out, None, n=80)
    assert len(new) == 10 and (out / "test.jsonl").read_bytes() == test_before and len(m["focus"]) == 1


def test_focus_bends_presence_for_missing_and_extra_keys() -> None:
    schema = schema_from_dict(TICKET)
    value = {"id": "T1", "status": "open", "score": 0.5}  # both optional fields were dropped
    whole = {**value, "tokens_used": 120, "priority": 3}

    def focus_on(path: str, kinds: dict[str, int]) -> Focus:
        f = Focus.__new__(Focus)
        f.schema, f.share, f.styles = schema, 1.0, {}
        from schema_specialist.generate.questions import SchemaNav

        f.nav = SchemaNav(schema)
        f.targets = f._targets({"failures_by_path": {path: {"count": 3, "kinds": kinds, "examples": []}}})
        return f

    # the adapter left out /priority: the field is kept present
    bent, path = focus_on("/priority", {"missing_required": 3}).apply(value, whole, random.Random(0))
    assert path == "/priority" and bent["priority"] == 3
    # the adapter wrote `tokens` (no such key): `tokens_used` is kept, other optional keys may go
    bent, path = focus_on("/tokens", {"extra_property": 3}).apply(value, whole, random.Random(0))
    assert path == "/tokens" and bent["tokens_used"] == 120 and schema.is_valid(bent)


def _bad_report(tmp_path: Path, schema: Path, kind: str) -> Path:
    p = tmp_path / "bad" / "report.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not json":
        p.write_text("{oops")
    elif kind == "not a report":
        p.write_text(json.dumps({"format": "something-else"}))
    elif kind == "other schema":
        write_report(p.parent, schema, FAILING)
        data = json.loads(p.read_text())
        p.write_text(json.dumps({**data, "schema_sha256": "0" * 64}))
    elif kind == "no failures":
        write_report(p.parent, schema, [])
    return p


@pytest.mark.parametrize(("kind", "needle"), [
    ("missing", "not a readable eval report"), ("not json", "not a readable eval report"),
    ("not a report", "failures_by_path"), ("other schema", "another version of the schema"),
    ("no failures", "no failures to focus on"),
])
def test_bad_report_is_one_line_exit_2(base: tuple[Path, Path], tmp_path: Path, kind: str, needle: str) -> None:
    schema, out = base
    report = _bad_report(tmp_path, schema, kind)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(main, ["generate", str(schema), "-o", str(out), "--focus", str(report), "-n", "60",
                                       "--quiet"])
    assert result.exit_code == 2, result.output
    err = result.output.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and needle in err, err
    assert str(report) in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_focus_needs_a_dataset_and_a_larger_total(base: tuple[Path, Path], tmp_path: Path) -> None:
    schema, out = base
    report = write_report(tmp_path / "report", schema, FAILING)
    for args, needle in ((["-o", str(out), "-n", "30"], "-n is the new total"),
                         (["-o", str(tmp_path / "none"), "-n", "60"], "generate it first"),
                         (["-o", str(out), "-n", "60", "--overwrite"], "no --overwrite")):
        result = CliRunner().invoke(main, ["generate", str(schema), "--focus", str(report), "--quiet", *args])
        assert result.exit_code == 2 and needle in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert len(_records(out)) == 30


def test_cli_focus_flag(base: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from schema_specialist.generate import pipeline

    schema, out = base
    report = write_report(tmp_path / "report", schema, FAILING)
    teacher = ScriptedTeacher(TEXTS)
    teacher.calls = 200
    monkeypatch.setattr(pipeline, "make_teacher", lambda *a, **k: teacher)
    result = CliRunner().invoke(main, ["generate", str(schema), "-o", str(out), "--focus", str(report.parent),
                                       "-n", "50", "--quiet", "--no-plausible"])
    assert result.exit_code == 0, result.output
    assert "focus: 20 new pairs, leaning on /status, /score" in result.output
    assert Counter(r["schemagen"]["split"] for r in _records(out))["test"] == 3
