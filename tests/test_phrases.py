"""The phrases step: free-text strings swapped for drawn phrases of people's lengths, the round trip kept."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from schema_specialist.generate import GenerateConfig, generate
from schema_specialist.generate.phrases import (
    IDENTIFIER_SHARE,
    LENGTHS,
    identifier,
    phrase,
    rephrase,
    word_lists,
)
from schema_specialist.generate.plausible import string_problem
from schema_specialist.schema import schema_from_dict
from tests.test_decoding import INCIDENT_SCHEMA
from tests.test_generate import ScriptedTeacher, _records

TEACHER = {"task": "Check logs", "id": "A-1", "incidents": [{"summary": "Disk full", "level": "low"},
                                                            {"summary": "Timeout", "level": "high"}]}


def test_word_lists_come_from_faker() -> None:
    common, business, parts = word_lists()
    assert len(common) > 500 and len(business) > 100 and len(parts) == 6
    assert all(w.isalpha() for w in common)


def test_rephrase_swaps_only_free_text_for_phrases_of_many_lengths() -> None:
    schema = schema_from_dict(INCIDENT_SCHEMA)
    lengths: Counter[int] = Counter()
    kept = 0
    for i in range(300):
        out = rephrase(TEACHER, schema, random.Random(i), 1.0)
        jsonschema.validate(out, INCIDENT_SCHEMA)
        assert out["id"] == "A-1" and [x["level"] for x in out["incidents"]] == ["low", "high"]  # not free text
        assert len(out["task"]) <= 40 and all(len(x["summary"]) <= 30 for x in out["incidents"])
        assert string_problem(out["task"], "task", INCIDENT_SCHEMA["properties"]["task"]) is None
        kept += out["task"] == TEACHER["task"]
        lengths[len(out["task"].split())] += 1
    assert kept < 30  # share 1: swapped, but for a draw of the teacher's own two words
    assert set(lengths) >= {1, 2, 3, 4, 5, 6}  # one word to a short sentence, not the teacher's two
    assert sum(k * n for k, n in lengths.items()) / 300 > 3.0


def test_rephrase_share_and_determinism() -> None:
    schema = schema_from_dict(INCIDENT_SCHEMA)
    assert rephrase(TEACHER, schema, random.Random(0), 0.0) is TEACHER
    assert rephrase(TEACHER, schema, random.Random(7), 0.5) == rephrase(TEACHER, schema, random.Random(7), 0.5)
    swapped = sum(rephrase(TEACHER, schema, random.Random(i), 0.3)["task"] != "Check logs" for i in range(400))
    assert 80 < swapped < 160


def test_rephrase_keeps_a_string_no_phrase_fits() -> None:
    tight = {"type": "object", "properties": {"code": {"type": "string", "minLength": 2, "maxLength": 2}}}
    value = {"code": "ab"}
    for i in range(30):
        out = rephrase(value, schema_from_dict(tight), random.Random(i), 1.0)
        assert out == value or (len(out["code"]) == 2 and string_problem(out["code"], "code", tight) is None)


def test_a_share_of_drawn_values_are_identifiers() -> None:
    schema = schema_from_dict(INCIDENT_SCHEMA)
    tasks = [rephrase(TEACHER, schema, random.Random(i), 1.0)["task"] for i in range(400)]
    named = [t for t in tasks if (" " not in t and any(c in t for c in "/-_.")) or re.search(r"[a-z][A-Z]", t)]
    assert 0.5 * IDENTIFIER_SHARE * 400 < len(named) < 1.6 * IDENTIFIER_SHARE * 400
    assert any("/" in t for t in named) and any("_" in t for t in named)
    drawn = [identifier(random.Random(i), "Check logs") for i in range(300)]
    assert {"/", "-", "_", "."} <= set("".join(drawn)) and any(re.search(r"[a-z][A-Z]", t) for t in drawn)
    assert sum(t.lower().replace("/", "-").replace("_", "-").replace(".", "-").startswith("check-logs")
               or "checkLogs" in t for t in drawn) > 20  # the teacher's words joined, at times
    assert identifier(random.Random(5), "x") == identifier(random.Random(5), "x")


def test_phrase_grows_the_teachers_words_at_the_ends() -> None:
    for i in range(100):
        text = phrase(random.Random(i), 6, "nightly backup")
        assert len(text.split()) == 6
    grown = [phrase(random.Random(i), 4, "nightly backup").lower() for i in range(200)]
    assert sum("nightly backup" in t for t in grown) > 30  # the teacher's words kept together when used
    assert max(LENGTHS) == 8


def test_pipeline_renders_the_question_from_the_phrase(tmp_path: Path) -> None:
    schema = {"title": "job", "type": "object", "additionalProperties": False, "required": ["task", "hours"],
              "properties": {"task": {"type": "string", "minLength": 3, "maxLength": 60},
                             "hours": {"type": "integer", "minimum": 0, "maximum": 99}}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    texts = [json.dumps({"task": "Fix it", "hours": i}) for i in range(30)]

    def run(share: float, name: str) -> list[dict[str, Any]]:
        generate(path, tmp_path / name, GenerateConfig(n=30, batch_size=10, progress=False, balance=False,
                                                       plausible=False, phrases=share, widen=0.0),
                 teacher=ScriptedTeacher(texts))
        return _records(tmp_path / name)

    plain = run(0.0, "plain")
    assert {json.loads(r["messages"][-1]["content"])["task"].lower() for r in plain} == {"fix it"}
    drawn = run(1.0, "drawn")
    tasks = [json.loads(r["messages"][-1]["content"])["task"] for r in drawn]
    assert len(drawn) == 30 and sum(t.lower() != "fix it" for t in tasks) >= 25
    for rec, task in zip(drawn, tasks, strict=True):
        assert task in rec["messages"][1]["content"]  # the round trip: the question states the phrase
    manifest = json.loads((tmp_path / "drawn" / "manifest.json").read_text())
    assert manifest["settings"]["phrases"] == 1.0
