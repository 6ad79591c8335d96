"""Question views: several questions for one training answer (`generate --views`), one an epoch in `train`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schema_specialist.dataset import SPLITS, read_jsonl
from schema_specialist.generate import generate
from schema_specialist.generate.questions import missing_facts
from schema_specialist.review.decisions import DecisionLog, read_pairs
from schema_specialist.schema import load_schema
from schema_specialist.training import loop as loop_module
from schema_specialist.training import train
from schema_specialist.training.data import load_dataset
from tests.conftest import ORDER_SCHEMA
from tests.test_generate import ScriptedTeacher, _cfg, _schema_file

FAST = {"lr": 1e-2, "batch_size": 4, "grad_accum": 1, "threads": 1, "checkpoint_every": 0, "warmup_ratio": 0.0,
        "patience": 0}


def _by_split(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {s: [r for _, r in read_jsonl(out / f"{s}.jsonl")] for s in SPLITS}


def test_each_training_answer_gets_other_round_tripped_questions(tmp_path: Path) -> None:
    texts = [json.dumps({"sensor": f"probe-{i}", "celsius": i * 1.5 - 5, "ok": i % 3 == 0}) for i in range(30)]
    schema_path = _schema_file(tmp_path)
    schema = load_schema(schema_path)
    one = tmp_path / "one"
    three = tmp_path / "three"
    generate(schema_path, one, _cfg(n=30, views=1), teacher=ScriptedTeacher(texts))
    m = generate(schema_path, three, _cfg(n=30, views=3), teacher=ScriptedTeacher(texts))
    plain, viewed = _by_split(one), _by_split(three)
    # the first question of every pair is the one a run without views writes: views draw from their own stream
    assert [r["messages"] for s in SPLITS for r in viewed[s]] == [r["messages"] for s in SPLITS for r in plain[s]]
    assert not any("views" in r["schemagen"] for s in SPLITS for r in plain[s])
    written = 0
    for rec in viewed["train"]:
        question, answer = rec["messages"][-2]["content"], json.loads(rec["messages"][-1]["content"])
        views = rec["schemagen"]["views"]
        assert 1 <= len(views) <= 2
        assert len({question, *views}) == len(views) + 1  # each view is another question
        for view in views:
            assert missing_facts(view, answer, schema) == []  # and states every value of the same answer
        written += len(views)
    assert written >= len(viewed["train"]) * 3 // 2  # most pairs get both extra views
    # val and test keep one question: what they score does not move
    assert not any("views" in r["schemagen"] for s in ("val", "test") for r in viewed[s])
    assert m["views"]["per_answer"] == 3 and m["views"]["extra_written"] == written
    # a resumed run counts the views already written
    again = generate(schema_path, three, _cfg(n=30, views=3), teacher=ScriptedTeacher(texts))
    assert again["views"] == m["views"]


def _with_views(make_dataset: Callable[..., Path]) -> Path:
    statuses = ["new", "paid", "shipped"]
    pairs = [(f"Record order: id is A{i:03d}; status is {statuses[i % 3]}; total is {i * 2.5}.",
              {"id": f"A{i:03d}", "status": statuses[i % 3], "total": i * 2.5}) for i in range(20)]
    d = make_dataset(ORDER_SCHEMA, pairs, name="viewed")
    rows = [r for _, r in read_jsonl(d / "train.jsonl")]
    with (d / "train.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            q = r["messages"][-2]["content"]
            r["schemagen"]["views"] = [f"VIEW of {q}"]
            f.write(json.dumps(r) + "\n")
    return d


def test_train_reads_each_pairs_views_and_none_for_an_edit(make_dataset: Callable[..., Path]) -> None:
    d = _with_views(make_dataset)
    ds = load_dataset(d)
    assert len(ds.train_views) == len(ds.train)
    for (messages, _), views in zip(ds.train, ds.train_views, strict=True):
        [view] = views
        assert view[:-1] == messages[:-1] and view[-1]["content"] == f"VIEW of {messages[-1]['content']}"
    first = read_pairs(d, "train")[0]
    other = read_pairs(d, "train")[1]
    log = DecisionLog(d)
    edit = json.loads(first.answer) | {"total": 99.5}
    log.append(first.key, first.sha, "edit", 0, answer=json.dumps(edit))
    log.append(other.key, other.sha, "reject", 0, reason="wrong")
    after = load_dataset(d)
    assert len(after.train) == len(ds.train) - 1 == len(after.train_views)
    [edited] = [v for (m, a), v in zip(after.train, after.train_views, strict=True) if json.loads(a) == edit]
    assert edited == []  # the edit answers the first question; its other views may state the old values
    assert after.fingerprint() != ds.fingerprint()


@pytest.mark.parametrize("views", [True, False])
def test_epoch_e_asks_each_answer_in_view_e_mod_k(make_dataset: Callable[..., Path], tiny_mistral_dir: Path,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  views: bool) -> None:
    from transformers import AutoTokenizer

    d = _with_views(make_dataset)
    tok = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    seen: list[list[str]] = []  # the texts of each optimizer step's examples
    real = loop_module.Loop._step

    def spy(self: Any, group: list[list[int]]) -> float:
        seen.append([tok.decode(self.train[i].input_ids) for idx in group for i in idx])
        return real(self, group)

    monkeypatch.setattr(loop_module.Loop, "_step", spy)
    n_train = len(load_dataset(d).train)
    info = train(d, tmp_path / "a", base=str(tiny_mistral_dir), epochs=3, progress=False, log=lambda m: None,
                 views=views, **FAST)
    steps = info["hyperparameters"]["steps_per_epoch"]
    assert info["hyperparameters"]["question_views"] == n_train * (2 if views else 1)
    assert len(seen) == 3 * steps
    for epoch in range(3):
        texts = [t for b in seen[epoch * steps:(epoch + 1) * steps] for t in b]
        assert len(texts) == n_train
        asked_in_view = sum("VIEW of" in t for t in texts)
        assert asked_in_view == (n_train if views and epoch % 2 == 1 else 0), epoch


def test_the_review_page_shows_every_question_a_pair_trains_on(make_dataset: Callable[..., Path]) -> None:
    from schema_specialist.review.session import ReviewSession

    d = _with_views(make_dataset)
    pairs = {p["id"]: p for p in ReviewSession(d, reviewer="ana").state()["pairs"]}
    train = [p for p in pairs.values() if p["split"] == "train"]
    assert train and all(p["views"] == [f"VIEW of {p['question']}"] for p in train)
    assert all(p["views"] == [] for p in pairs.values() if p["split"] != "train")
    js = (Path(__file__).resolve().parent.parent / "schema_specialist/review/static/app.js").read_text()
    assert "p.views" in js  # the page lists them under the question and its text filter reads them
