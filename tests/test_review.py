"""`schemagen review`: the decisions log (append, replay, conflicts, torn lines), the API, the CLI, what
train and check-data make of the decisions, and a kill -9 of the server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from schema_specialist.checks.data import check_data_paths
from schema_specialist.cli import main
from schema_specialist.errors import SchemagenError
from schema_specialist.review.app import ReviewServer
from schema_specialist.review.decisions import (
    DECISIONS,
    Conflict,
    DecisionLog,
    load_reviewed,
    read_pairs,
    replay_file,
)
from schema_specialist.review.session import ReviewSession
from schema_specialist.review.stats import histograms
from schema_specialist.review.summary import review_card_lines
from schema_specialist.training.data import load_dataset
from tests.conftest import ROOT

REVIEW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "order",
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 12},
        "status": {"enum": ["new", "paid", "shipped", "lost"]},
        "total": {"type": "number", "minimum": 0, "maximum": 10000},
        "placed": {"type": "string", "format": "date"},
        "gift": {"type": "boolean"},
    },
    "required": ["id", "status", "total", "placed", "gift"],
    "additionalProperties": False,
}
STATUSES = ["new", "paid", "shipped"]  # "lost" never occurs: the histogram must show it at 0


def review_pairs(n: int = 20) -> list[tuple[str, Any]]:
    return [(f"Record order: id is B{i:03d}; status is {STATUSES[i % 3]}; total is {i * 7.5}; placed on "
             f"2024-03-{i % 28 + 1:02d}; gift: {'yes' if i % 4 == 0 else 'no'}.",
             {"id": f"B{i:03d}", "status": STATUSES[i % 3], "total": i * 7.5, "placed": f"2024-03-{i % 28 + 1:02d}",
              "gift": i % 4 == 0}) for i in range(n)]


def set_sources(directory: Path, sources: list[str]) -> None:
    """Give the pairs `schemagen.source` values, as generate records them."""
    i = 0
    for split in ("train", "val", "test"):
        path = directory / f"{split}.jsonl"
        lines = []
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            rec["schemagen"]["source"] = sources[i % len(sources)]
            i += 1
            lines.append(json.dumps(rec))
        path.write_text("".join(x + "\n" for x in lines))


def one_line_error(result: Any, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("schemagen: error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ds(make_dataset: Callable[..., Path]) -> Path:
    d = make_dataset(REVIEW_SCHEMA, review_pairs(), name="orders")
    (d / "card.md").write_text("# Dataset card: order\n\n| figure | value |\n|---|---|\n| pairs | 20 |\n\n"
                               "## Five random pairs\n\n**Q:** ...\n")
    return d


@pytest.fixture
def served(ds: Path) -> Iterator[httpx.Client]:
    with ReviewServer(ReviewSession(ds, reviewer="ana")) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def keys(directory: Path) -> dict[str, tuple[str, str]]:
    """pair id -> (id, sha), for every split."""
    return {p.key: (p.key, p.sha) for s in ("train", "val", "test") for p in read_pairs(directory, s)}


def log_lines(directory: Path) -> list[dict[str, Any]]:
    path = directory / DECISIONS
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# --- the log ------------------------------------------------------------------------------------

def test_append_and_replay(ds: Path) -> None:
    k = keys(ds)
    log = DecisionLog(ds)
    log.append(*k["c000000"], "approve", 0, who="ana")
    log.append(*k["c000001"], "reject", 0, reason="  total   is wrong ", who="bo")
    edit = '{"id":"B002","status":"new","total":1,"placed":"2024-01-01","gift":false}'
    log.append(*k["c000002"], "edit", 0, answer=edit, who="ana")
    log.append(*k["c000002"], "approve", 1, who="ana")  # an edit stays in force through an approve
    log.append(*k["c000003"], "approve", 0)
    log.append(*k["c000003"], "reset", 1)

    lines = log_lines(ds)
    assert [x["seq"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert all(x["who"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", x["at"]) for x in lines)
    assert lines[1]["reason"] == "total is wrong" and lines[1]["who"] == "bo"
    for replay in (replay_file(ds / DECISIONS), DecisionLog(ds).replay):  # a fresh process sees the same
        states = {pair: replay.state(*k[pair]) for pair in ("c000000", "c000001", "c000002", "c000003", "c000004")}
        assert {p: s.status for p, s in states.items()} == {
            "c000000": "approved", "c000001": "rejected", "c000002": "edited", "c000003": "unreviewed",
            "c000004": "unreviewed"}
        assert states["c000002"].answer == edit and states["c000002"].version == 2
        assert states["c000001"].reason == "total is wrong" and states["c000003"].version == 2
    rv = load_reviewed(ds)
    assert rv.counts() == {"approved": 1, "edited": 1, "rejected": 1, "unreviewed": 17}


def test_stale_version_is_a_conflict_across_processes(ds: Path) -> None:
    """Two logs on one directory (two servers): the second's write against version 0 is refused."""
    k = keys(ds)["c000005"]
    a, b = DecisionLog(ds), DecisionLog(ds)
    a.append(*k, "approve", 0, who="ana")
    with pytest.raises(Conflict) as exc:
        b.append(*k, "reject", 0, reason="nope", who="bo")
    assert exc.value.current.status == "approved" and exc.value.current.who == "ana"
    assert [x["action"] for x in log_lines(ds)] == ["approve"]  # nothing written by the stale writer
    b.append(*k, "reject", 1, reason="nope", who="bo")  # having seen version 1, it may decide again
    assert a.refresh() == [k] and a.state(*k).status == "rejected"


def test_concurrent_writers_lose_nothing(ds: Path) -> None:
    k = list(keys(ds).values())
    logs = [DecisionLog(ds), DecisionLog(ds)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            logs[i % 2].append(*k[i], "approve", 0, who=f"w{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(k))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = log_lines(ds)
    assert sorted(x["seq"] for x in lines) == list(range(1, len(k) + 1))
    assert {(x["pair"], x["sha"]) for x in lines} == set(k)


def test_replay_ignores_a_line_made_on_an_old_version(ds: Path) -> None:
    k = keys(ds)["c000000"]
    base = {"pair": k[0], "sha": k[1], "who": "x", "at": "2026-01-01T00:00:00.000Z"}
    (ds / DECISIONS).write_text("".join(json.dumps(x) + "\n" for x in [
        {**base, "seq": 1, "version": 1, "action": "approve"},
        {**base, "seq": 2, "version": 1, "action": "reject", "reason": "merged from elsewhere"}]))
    replay = replay_file(ds / DECISIONS)
    assert replay.state(*k).status == "approved" and replay.conflicts == [2]
    [report] = check_data_paths([ds])
    assert any(i.code == "decision-conflict" and i.line == 2 for i in report.issues)


def test_torn_last_line_is_ignored_then_dropped(ds: Path) -> None:
    k = keys(ds)
    DecisionLog(ds).append(*k["c000000"], "approve", 0)
    with (ds / DECISIONS).open("a") as f:
        f.write('{"seq": 2, "pair": "c000001", "sha": "')  # a kill -9 mid-write
    assert replay_file(ds / DECISIONS).decisions == 1
    assert load_dataset(ds).review["decisions"] == 1  # train reads it too
    log = DecisionLog(ds)
    log.append(*k["c000001"], "reject", 0, reason="bad")
    text = (ds / DECISIONS).read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2
    assert [x["seq"] for x in log_lines(ds)] == [1, 2]


def test_malformed_line_is_a_one_line_error(ds: Path, tmp_path: Path) -> None:
    k = keys(ds)
    DecisionLog(ds).append(*k["c000000"], "approve", 0)
    with (ds / DECISIONS).open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"seq": 3, "pair": "c000001", "sha": "x", "version": 1, "action": "approve",
                            "who": "a", "at": "t"}) + "\n")
    with pytest.raises(SchemagenError, match="decisions.jsonl: line 2: not valid JSON"):
        replay_file(ds / DECISIONS)
    runner = CliRunner()
    one_line_error(runner.invoke(main, ["review", str(ds), "--no-open", "--port", "0"]), "decisions.jsonl", "line 2")
    one_line_error(runner.invoke(main, ["train", str(ds), "-o", str(tmp_path / "a")]), "decisions.jsonl", "line 2")
    (ds / DECISIONS).write_text(json.dumps({"seq": 1, "pair": "c000001", "action": "fly"}) + "\n")
    one_line_error(runner.invoke(main, ["train", str(ds), "-o", str(tmp_path / "a")]), "decisions.jsonl", "line 1")
    [report] = check_data_paths([ds])
    assert any(i.code == "bad-decision" for i in report.issues) and report.failed()


def test_decisions_follow_the_pair_not_the_id(ds: Path) -> None:
    """Regenerated content under the same id starts unreviewed: the old rejection no longer applies."""
    k = keys(ds)
    DecisionLog(ds).append(*k["c000000"], "reject", 0, reason="bad")
    assert "B000" not in json.dumps(load_dataset(ds).train)
    train = (ds / "train.jsonl").read_text().replace("B000", "C000")
    (ds / "train.jsonl").write_text(train)
    assert "C000" in json.dumps(load_dataset(ds).train)
    rv = load_reviewed(ds)
    assert rv.stale == 1 and rv.counts()["rejected"] == 0
    [report] = check_data_paths([ds])
    assert any(i.code == "stale-decision" for i in report.issues)


# --- train and check-data -----------------------------------------------------------------------

def test_train_data_leaves_out_rejected_and_uses_edits(ds: Path) -> None:
    k = keys(ds)
    before = load_dataset(ds)
    log = DecisionLog(ds)
    edit = {"id": "B002", "status": "shipped", "total": 99.5, "placed": "2024-05-05", "gift": True}
    log.append(*k["c000001"], "reject", 0, reason="wrong")
    log.append(*k["c000002"], "edit", 0, answer=json.dumps(edit))
    log.append(*k["c000008"], "reject", 0, reason="wrong")  # a val pair (split_for: 8 -> val)
    log.append(*k["c000000"], "approve", 0)
    after = load_dataset(ds)
    questions = [m[-1]["content"] for m, _ in after.train]
    assert len(after.train) == len(before.train) - 1 and len(after.val) == len(before.val) - 1
    assert not any("B001" in q for q in questions)
    [answer] = [a for m, a in after.train if "B002" in m[-1]["content"]]
    assert json.loads(answer) == edit and answer == json.dumps(edit, separators=(",", ":"))
    assert after.fingerprint() != before.fingerprint()  # a checkpoint never resumes onto other data
    assert after.review == {"decisions": 4, "left_out_rejected": 2, "edited_used": 1, "stale": 0}
    assert before.review == {}


def test_eval_scores_the_reviewed_test_split(ds: Path) -> None:
    from schema_specialist.evaluate.inputs import test_items

    test = read_pairs(ds, "test")
    assert len(test) >= 2
    before = test_items(ds)
    rejected, edited = test[0], test[1]
    gold = {**json.loads(edited.answer), "total": 12.5}
    log = DecisionLog(ds)
    log.append(rejected.key, rejected.sha, "reject", 0, reason="wrong")
    log.append(edited.key, edited.sha, "edit", 0, answer=json.dumps(gold))
    after = test_items(ds)
    assert len(after) == len(before) - 1
    assert rejected.question not in [i.question for i in after]
    [item] = [i for i in after if i.question == edited.question]
    assert item.gold == gold


def test_train_refuses_an_invalid_edit_written_by_hand(ds: Path, tmp_path: Path) -> None:
    k = keys(ds)["c000002"]
    bad = '{"id":"B002","status":"lost","total":-1,"placed":"2024-02-31","gift":false}'
    (ds / DECISIONS).write_text(json.dumps({"seq": 1, "pair": k[0], "sha": k[1], "version": 1, "action": "edit",
                                            "answer": bad, "who": "x", "at": "t"}) + "\n")
    result = CliRunner().invoke(main, ["train", str(ds), "-o", str(tmp_path / "a")])
    one_line_error(result, "decisions.jsonl", "line 1", "c000002", "does not validate")
    assert not (tmp_path / "a").exists()
    [report] = check_data_paths([ds])
    assert [i.line for i in report.issues if i.code == "invalid-edit"] == [1]


def test_check_data_counts_what_review_fixed(ds: Path) -> None:
    lines = (ds / "train.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    bad["messages"][-1]["content"] = '{"id":"B001","status":"gone"}'
    lines[1] = json.dumps(bad)
    (ds / "train.jsonl").write_text("".join(x + "\n" for x in lines))
    [report] = check_data_paths([ds])
    assert report.failed() and any(i.code == "invalid-record" and i.line == 2 for i in report.issues)

    k = keys(ds)
    DecisionLog(ds).append(*k["c000001"], "reject", 0, reason="broken record")
    [report] = check_data_paths([ds])
    assert not report.failed(), [i.render() for i in report.issues]
    [fixed] = [i for i in report.issues if i.code == "invalid-record"]
    assert fixed.severity == "note" and "rejected in review" in fixed.message
    assert report.info["review"] == {"decisions": 1, "approved": 0, "edited": 0, "rejected": 1, "unreviewed": 19}
    for target in (ds, ds / DECISIONS):  # the log named alone is checked with its dataset
        result = CliRunner().invoke(main, ["check-data", str(target)])
        assert result.exit_code == 0, result.output
        assert "review: 0 approved, 0 edited, 1 rejected, 19 unreviewed" in result.output


# --- stats --------------------------------------------------------------------------------------

def test_histograms_show_skew() -> None:
    values = [v for _, v in review_pairs(30)]
    charts = {c["field"]: c for c in histograms(REVIEW_SCHEMA, values)}
    assert set(charts) == {"status", "total", "gift"}  # id and placed are free text
    assert charts["status"]["counts"] == [["new", 10], ["paid", 10], ["shipped", 10], ["lost", 0]]
    assert charts["gift"]["counts"] == [["true", 8], ["false", 22]]
    bins = charts["total"]["bins"]
    assert charts["total"]["kind"] == "range" and len(bins) == 10 and sum(n for *_, n in bins) == 30
    assert bins[0][0] == 0 and bins[-1][1] == 29 * 7.5
    nested = histograms({"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/i"}}},
                         "$defs": {"i": {"properties": {"k": {"enum": ["a", "b"]}}}}},
                        [{"items": [{"k": "a"}, {"k": "a"}]}])
    assert nested == [{"field": "items[].k", "n": 2, "kind": "category", "counts": [["a", 2], ["b", 0]]}]


# --- the API ------------------------------------------------------------------------------------

def decide(c: httpx.Client, pair: str, action: str, base: int, **extra: Any) -> httpx.Response:
    return c.post("/api/decisions", json={"pair": pair, "action": action, "base": base, **extra})


def test_api_decide_and_reload(served: httpx.Client, ds: Path) -> None:
    state = served.get("/api/state").json()
    assert state["reviewer"] == "ana" and len(state["pairs"]) == 20 and state["counts"]["unreviewed"] == 20
    assert state["figures"][0] == ["pairs (train / val / test)", "16 / 2 / 2"]
    r = decide(served, "c000000", "approve", 0)
    assert r.status_code == 200 and r.json()["pair"]["status"] == "approved" and r.json()["pair"]["who"] == "ana"
    assert r.json()["pair"]["version"] == 1 and r.json()["seq"] == 1
    assert decide(served, "c000001", "reject", 0, reason="wrong total").json()["counts"] == {
        "approved": 1, "edited": 0, "rejected": 1, "unreviewed": 18}
    assert served.get("/api/changes", params={"since": 1}).json()["pairs"][0]["id"] == "c000001"
    stats = served.get("/api/stats").json()
    assert stats["over"] == 19  # the rejected pair is not what train sees

    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["review"]["approved"] == 1 and manifest["review"]["rejected"] == 1
    assert manifest["review"]["rejected_by_reason"] == {"wrong total": 1} and manifest["counts"]["train"] == 16
    card = (ds / "card.md").read_text()
    assert "## Review" in card and "| 1 | 0 | 1 | 18 | 2 |" in card
    assert card.index("## Review") < card.index("## Five random pairs")
    assert review_card_lines(ds)[0] == "<!-- schemagen:review -->" and "| 1 | 0 | 1 | 18 | 2 |" in review_card_lines(ds)
    assert (ds / "train.jsonl").read_text().count("\n") == 16  # generated files untouched

    again = ReviewSession(ds).state()  # a restarted server
    assert {p["id"]: p["status"] for p in again["pairs"]}["c000001"] == "rejected"
    assert again["reasons"] == ["wrong total"]


@pytest.mark.parametrize("answer, where", [
    ('{"id":"B003","status":"lost!","total":1,"placed":"2024-01-01","gift":false}', "/status"),
    ('{"id":"B003","status":"new","total":1,"placed":"2024-02-31","gift":false}', "/placed"),  # format
    ('{"id":"B003","status":"new","total":NaN,"placed":"2024-01-01","gift":false}', ""),
    ('{"id":"B003","status":"new"', ""),
    ('{"id":"B003","status":"new","total":1,"placed":"2024-01-01","gift":false,"extra":1}', "/"),
])
def test_invalid_edit_is_refused_and_not_saved(served: httpx.Client, ds: Path, answer: str, where: str) -> None:
    v = served.post("/api/validate", json={"answer": answer}).json()
    assert v["valid"] is False and v["errors"] and v["errors"][0]["path"] == where
    r = decide(served, "c000003", "edit", 0, answer=answer)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_answer" and r.json()["errors"]
    assert log_lines(ds) == [] and ReviewSession(ds).state()["pairs"][3]["status"] == "unreviewed"


def test_two_tabs_do_not_lose_each_others_decisions(served: httpx.Client, ds: Path) -> None:
    tab_a = served.get("/api/state").json()
    tab_b = served.get("/api/state").json()
    assert tab_a["pairs"][4]["version"] == tab_b["pairs"][4]["version"] == 0
    assert decide(served, "c000004", "approve", 0).status_code == 200  # tab A
    r = decide(served, "c000004", "reject", 0, reason="tab B's view is stale")  # tab B, from version 0
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert r.json()["pair"]["status"] == "approved" and r.json()["pair"]["version"] == 1
    assert [x["action"] for x in log_lines(ds)] == ["approve"]
    seen = served.get("/api/changes", params={"since": tab_b["seq"]}).json()  # tab B's poll
    assert [p["id"] for p in seen["pairs"]] == ["c000004"] and seen["seq"] == 1
    assert decide(served, "c000004", "reject", 1, reason="seen, still wrong").status_code == 200
    assert [x["action"] for x in log_lines(ds)] == ["approve", "reject"]


def test_bad_requests_get_json_4xx(served: httpx.Client, ds: Path, tmp_path: Path) -> None:
    def code(r: httpx.Response) -> tuple[int, str | None]:
        assert r.headers["content-type"].startswith("application/json")
        return r.status_code, r.json()["error"]["code"]

    post = served.post
    assert code(post("/api/decisions", content=b"{nope", headers={"content-type": "application/json"})) == (
        400, "invalid_json")
    assert code(post("/api/decisions", content=b"{}", headers={"content-type": "text/plain"}))[0] == 415
    assert code(post("/api/decisions", json={"pair": "c0", "action": "approve"}))[0] == 400  # no base
    assert code(decide(served, "nope", "approve", 0))[0] == 404
    assert code(decide(served, "c000000", "fly", 0))[0] == 400
    assert code(decide(served, "c000000", "reject", 0, reason="  "))[0] == 400
    assert code(decide(served, "c000000", "approve", True))[0] == 400
    assert code(post("/api/validate", json={"answer": "x" * 300_000}))[0] == 413
    assert code(served.get("/", headers={"host": "attacker.example:8765"}))[0] == 403  # DNS rebinding
    assert code(post("/api/decisions", json={"pair": "c000000", "action": "approve", "base": 0},
                     headers={"origin": "http://attacker.example"}))[0] == 403
    assert code(served.get("/api/changes", params={"since": "-1"}))[0] == 400
    assert code(served.get("/nope"))[0] == 404
    assert code(served.get("/static/../manifest.json"))[0] == 404
    assert code(served.get("/api/files/..%2F..%2Fetc%2Fpasswd"))[0] == 404
    assert served.get("/api/files/manifest.json").json()["counts"]["train"] == 16
    (tmp_path / "elsewhere.md").write_text("secret")
    (ds / "card.md").unlink()
    (ds / "card.md").symlink_to(tmp_path / "elsewhere.md")
    assert code(served.get("/api/files/card.md")) == (403, "outside_dataset")
    assert log_lines(ds) == []


def test_page_is_self_contained(served: httpx.Client) -> None:
    page = served.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "app.css"):
        text = (ROOT / "schema_specialist" / "review" / "static" / name).read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//|@import|https?://""", text), name  # no CDN
    assert served.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_sources_and_rejected_are_listed_from_the_data(ds: Path) -> None:
    set_sources(ds, ["teacher", "template", "focus", "inputs"])
    (ds / "rejected.jsonl").write_text("".join(json.dumps(x) + "\n" for x in [
        {"candidate": 40, "reason": "invalid: 'x' is not one of ['new']", "output": "{...}"},
        {"candidate": 41, "reason": "duplicate: same instance as an accepted pair", "question": "Record ..."},
        {"candidate": 42, "reason": "invalid: -1 is less than the minimum of 0", "output": "{}"}]))
    session = ReviewSession(ds)
    assert session.state()["sources"] == ["focus", "inputs", "teacher", "template"]
    rejected = session.rejected_view()
    assert rejected["total"] == 3 and rejected["reasons"] == {"invalid": 2, "duplicate": 1}
    assert rejected["rows"][1]["question"] == "Record ..."


# --- the CLI ------------------------------------------------------------------------------------

def test_cli_bad_inputs_are_one_line(ds: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    one_line_error(runner.invoke(main, ["review", str(tmp_path / "nothing")]), "nothing", "no such dataset")
    (tmp_path / "plain").mkdir()
    one_line_error(runner.invoke(main, ["review", str(tmp_path / "plain")]), "plain", "manifest.json")
    one_line_error(runner.invoke(main, ["review", str(ds), "--host", "0.0.0.0"]), "--allow-remote")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        one_line_error(runner.invoke(main, ["review", str(ds), "--port", str(port), "--no-open"]),
                       f"127.0.0.1:{port}")
    (tmp_path / "outside.jsonl").write_text("")
    (ds / DECISIONS).symlink_to(tmp_path / "outside.jsonl")
    one_line_error(runner.invoke(main, ["review", str(ds), "--no-open"]), DECISIONS, "outside the dataset")
    (ds / DECISIONS).unlink()
    with (ds / "train.jsonl").open("a") as f:
        f.write("[1, 2]\n")
    one_line_error(runner.invoke(main, ["review", str(ds), "--no-open"]), "train.jsonl", "line 17")


def start_server(ds: Path, *args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """`schemagen review` in a subprocess on a free port; returns it, its URL and its stderr lines so far."""
    proc = subprocess.Popen([sys.executable, "-m", "schema_specialist", "review", str(ds), "--port", "0",
                             "--no-open", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        m = re.search(r"review page on (http://\S+?)/? ", line)
        if m:
            return proc, m.group(1), seen
    raise AssertionError("".join(seen))


def test_allow_remote_warns(ds: Path) -> None:
    proc, url, seen = start_server(ds, "--host", "0.0.0.0", "--allow-remote")
    try:
        assert any("warning" in x and "not loopback" in x for x in seen), seen
        port = url.rsplit(":", 1)[1]
        assert httpx.get(f"http://127.0.0.1:{port}/api/state", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_kill_9_loses_no_saved_decision(ds: Path) -> None:
    """Decisions acknowledged before a kill -9 of the server are all in the log, and a restart sees them."""
    proc, url, _ = start_server(ds, "--reviewer", "ana")
    acked: dict[str, dict[str, Any]] = {}
    stop = threading.Event()
    edit = '{{"id":"B{:03d}","status":"paid","total":5,"placed":"2024-01-01","gift":true}}'

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(20):
                if stop.is_set():
                    return
                action = ("approve", "reject", "edit")[i % 3]
                extra = {"reason": "wrong"} if action == "reject" else {"answer": edit.format(i)} if action == "edit" else {}
                try:
                    r = decide(c, f"c{i:06d}", action, 0, **extra)
                except httpx.TransportError:
                    return  # killed mid-request: this one was never acknowledged
                if r.status_code == 200:
                    acked[f"c{i:06d}"] = r.json()["pair"]

    try:
        worker = threading.Thread(target=hammer)
        worker.start()
        deadline = time.monotonic() + 60
        while len(acked) < 6 and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # mid-session: requests are in flight
        stop.set()
        worker.join(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert len(acked) >= 6
    replay = replay_file(ds / DECISIONS)
    k = keys(ds)
    for pair, view in acked.items():
        st = replay.state(*k[pair])
        assert (st.status, st.version, st.who) == (view["status"], 1, "ana"), pair

    proc, url, _ = start_server(ds)  # restarted: heals any torn line, sees every saved decision, takes new ones
    try:
        state = httpx.get(f"{url}/api/state", timeout=30).json()
        statuses = {p["id"]: p["status"] for p in state["pairs"]}
        assert all(statuses[pair] == view["status"] for pair, view in acked.items())
        free = next(p["id"] for p in state["pairs"] if p["status"] == "unreviewed")
        with httpx.Client(base_url=url, timeout=30) as c:
            assert decide(c, free, "approve", 0).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (ds / DECISIONS).read_text().endswith("\n")


def test_a_rerun_of_generate_keeps_the_review_section(ds: Path) -> None:
    """generate rewrites the manifest on every run: the decisions' summary must survive it."""
    from schema_specialist.generate import GenerateConfig, generate

    manifest = json.loads((ds / "manifest.json").read_text())
    (ds / "manifest.json").write_text(json.dumps({**manifest, "teacher": {"kind": "scripted", "spec": "x"}}))
    k = keys(ds)
    DecisionLog(ds).append(*k["c000001"], "reject", 0, reason="wrong total", who="ana")
    m = generate(ds / "source_schema.json", ds, GenerateConfig(n=5, progress=False))
    assert m["review"]["decisions"] == 1 and m["review"]["rejected_by_reason"] == {"wrong total": 1}
    assert json.loads((ds / "manifest.json").read_text())["review"] == m["review"]
