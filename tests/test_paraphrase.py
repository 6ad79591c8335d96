"""`generate --paraphrase SHARE`: the teacher rewrites template questions; the round trip filters them."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.cli import main
from schema_specialist.generate import paraphrase
from schema_specialist.generate.questions import missing_facts
from schema_specialist.schema import load_schema
from tests.test_generate import SMALL, ScriptedTeacher, _cfg, _Handler, _records, _schema_file

FAITHFUL = "Could you log this for me? "


class _ParaphraseHandler(_Handler):
    """Instances (requests with response_format) number their sensor: http1, http2, ...; a rewrite
    (a plain chat request) is faithful for an odd sensor number and drops the sensor id for an even one."""

    bodies: list[dict[str, Any]] = []

    def answer(self, body: dict[str, Any]) -> str:
        if "response_format" in body:
            i = sum("response_format" in b for b in type(self).bodies)
            return json.dumps({"sensor": f"http{i}", "celsius": i % 50, "ok": True})
        request = body["messages"][-1]["content"].split("Request: ", 1)[1]
        found = re.search(r"http(\d+)", request)
        assert found, request
        if int(found.group(1)) % 2:
            return FAITHFUL + request
        return request.replace(found.group(0), "the sensor")


def _asked() -> list[str]:
    """The requests the fake server was asked to rewrite."""
    return [b["messages"][-1]["content"].split("Request: ", 1)[1] for b in _ParaphraseHandler.bodies
            if "response_format" not in b]


@contextmanager
def _teacher() -> Iterator[str]:
    _ParaphraseHandler.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _ParaphraseHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"openai:http://127.0.0.1:{server.server_port}/v1#para-model"
    finally:
        server.shutdown()


def _generate(tmp_path: Path, url: str, out: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["generate", str(_schema_file(tmp_path)), "-o", str(out), "--teacher", url,
                                       "--quiet", "--no-plausible", "--no-vary-shape", "--phrases", "0",
                                       "--widen", "0", *args])
    assert result.exit_code == 0, result.output


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def test_faithful_rewrites_are_kept_and_unfaithful_ones_leave_the_template(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with _teacher() as url:
        _generate(tmp_path, url, out, "-n", "10", "--paraphrase", "1")
    plain = [b for b in _ParaphraseHandler.bodies if "response_format" not in b]
    assert plain and all(b["model"] == "para-model" and "Keep every value exactly" in b["messages"][-1]["content"]
                         for b in plain)
    schema = load_schema(_schema_file(tmp_path))
    recs = _records(out)
    assert len(recs) == 10
    by_source = Counter(r["schemagen"]["source"] for r in recs)
    assert by_source["paraphrase"] > 0 and by_source["template"] > 0
    for rec in recs:
        meta, question = rec["schemagen"], rec["messages"][-2]["content"]
        answer = json.loads(rec["messages"][-1]["content"])
        assert missing_facts(question, answer, schema) == []  # whatever the source, the round trip holds
        odd = int(answer["sensor"][4:]) % 2 == 1
        if meta["source"] == "paraphrase":
            assert odd and question == FAITHFUL + meta["paraphrase"]["template"] and meta["paraphrase"]["kept"]
        else:
            assert not odd and meta["paraphrase"]["kept"] is False
            assert meta["paraphrase"]["reason"].startswith("not faithful: the rewrite does not state /sensor")
            assert "the sensor" in meta["paraphrase"]["rewrite"] and answer["sensor"] in question
    m = _manifest(out)
    assert m["sources"] == dict(by_source)
    p = m["paraphrase"]
    assert p["share"] == 1.0 and p["asked"] == len(_asked()) == 10
    assert p["kept"] == by_source["paraphrase"] and p["rejected"] == by_source["template"]
    assert p["rejected_by_reason"] == {"not faithful": by_source["template"]}
    # the token totals include the rewrite calls (the fake reports 30 + 12 a call)
    assert m["tokens"] == {"prompt": 30 * len(_ParaphraseHandler.bodies),
                           "completion": 12 * len(_ParaphraseHandler.bodies)}
    card = (out / "card.md").read_text()
    assert "- *paraphrase*: " + json.dumps(FAITHFUL)[:-1] in card and "- *template*: " in card
    assert f"{p['asked']} asked, {p['kept']} kept" in card and "not faithful" in card


def test_share_zero_makes_no_paraphrase_calls(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with _teacher() as url:
        _generate(tmp_path, url, out, "-n", "6", "--paraphrase", "0")
    assert _ParaphraseHandler.bodies and _asked() == []
    m = _manifest(out)
    assert "paraphrase" not in m and m["sources"] == {"template": 6}
    assert all("paraphrase" not in r["schemagen"] for r in _records(out))


def test_an_openai_teacher_paraphrases_a_quarter_by_default_a_local_one_none(tmp_path: Path) -> None:
    assert paraphrase.default_share("smollm2") == 0.0 and paraphrase.default_share("openai:http://h/v1#m") == 0.25
    out = tmp_path / "ds"
    with _teacher() as url:
        _generate(tmp_path, url, out, "-n", "12")
    m = _manifest(out)
    assert m["settings"]["paraphrase"] is None and m["paraphrase"]["share"] == 0.25
    assert 0 < m["paraphrase"]["asked"] == len(_asked()) < 12


def test_a_resumed_run_does_not_paraphrase_accepted_pairs_again(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with _teacher() as url:
        _generate(tmp_path, url, out, "-n", "4", "--paraphrase", "1")
        first = _asked()
        _generate(tmp_path, url, out, "-n", "8", "--paraphrase", "1")
        asked = _asked()
    assert len(first) == 4 and len(asked) == 8 and len(set(asked)) == 8
    recs = _records(out)
    kept = sum(r["schemagen"]["source"] == "paraphrase" for r in recs)
    p = _manifest(out)["paraphrase"]
    assert (p["asked"], p["kept"], p["rejected_by_reason"]) == (8, kept, {"not faithful": 8 - kept})


def test_a_teacher_that_cannot_paraphrase_keeps_every_template(tmp_path: Path) -> None:
    from schema_specialist.generate import generate

    teacher = ScriptedTeacher([json.dumps({"sensor": f"s{i}", "celsius": i, "ok": True}) for i in range(20)])
    m = generate(_schema_file(tmp_path), tmp_path / "ds", _cfg(n=3, paraphrase=1.0), teacher=teacher)
    assert m["sources"] == {"template": 3}
    assert m["paraphrase"]["rejected_by_reason"] == {"teacher cannot paraphrase": 3}


@pytest.mark.parametrize(("rewrite", "kept", "reason"), [
    (None, None, "teacher cannot paraphrase"),
    ("   ", None, "empty"),
    ('"Sensor s1 is OK, 21.5 degrees."', None, "identical"),
    ("Sensor s1: " + "very " * 60 + "warm, 21.5 degrees, ok", None, "too long"),
    ("Here is the rewritten request: s1 reads 21.5 degrees and it is ok", "s1 reads 21.5 degrees and it is ok", ""),
    ("Rewrite the request to:\nRewrite request: s1, ok, 21.5 degrees", "s1, ok, 21.5 degrees", ""),
    ("s1 reads 21.5 degrees", None, "not faithful: the rewrite does not state /ok"),
])
def test_judge_rewrite(tmp_path: Path, rewrite: str | None, kept: str | None, reason: str) -> None:
    schema = load_schema(_schema_file(tmp_path, SMALL))
    got, why = paraphrase.judge_rewrite(rewrite, "Sensor s1 is ok, 21.5 degrees.",
                                        {"sensor": "s1", "celsius": 21.5, "ok": True}, schema)
    assert got == kept and why.startswith(reason)
