"""`serve.jobs.Job`: the rows a request needs (first answer, strict retry, capped rescue) and its answer."""

from __future__ import annotations

import json
from typing import Any

from schema_specialist.generate.decoding import Decoded
from schema_specialist.schema import schema_from_dict
from schema_specialist.serve.grammars import Grammar
from schema_specialist.serve.jobs import Job, Plan

SCHEMA = schema_from_dict({"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"],
                           "additionalProperties": False})


class CharTokenizer:
    """Token i is chr(i)."""

    def decode(self, tokens: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(t) for t in tokens)


def _finish(job: Job, text: str, *, truncated: bool, prompt: int = 10) -> bool:
    for ch in text:
        job.on_token(ord(ch))
    return job.on_done(Decoded([ord(c) for c in text], prompt, truncated=truncated, seconds=0.0))


def _grammar(name: str) -> Grammar:
    return Grammar(name, lambda: name)  # the row's constraint is the grammar's name here


def _plan(path: str, **kw: Any) -> Plan:
    return Plan(path, [1, 2, 3], 40, checked=SCHEMA, grammar=_grammar("schema"),
                capped=lambda: _grammar("capped"), **kw)


def test_a_grammar_answer_that_runs_out_of_tokens_is_decoded_again_under_the_capped_grammar() -> None:
    job = Job(_plan("constrained"), CharTokenizer())
    assert job.row().constraint == "schema"
    assert _finish(job, '{"email": "S.S.S.S.S.S.S', truncated=True)  # another row is needed
    assert job.row().constraint == "capped"
    assert not _finish(job, '{"email": "a@b.co"}', truncated=False, prompt=12)
    ans = job.wait(0)
    assert ans.valid and json.loads(ans.json_text) == {"email": "a@b.co"}
    assert ans.path == "constrained+capped"
    assert (ans.prompt_tokens, ans.completion_tokens) == (22, 24 + 19)


def test_the_strict_retry_is_rescued_too_and_an_answer_that_stopped_is_not() -> None:
    job = Job(_plan("adapter", adapter="a", strict=True), CharTokenizer())
    assert job.row().constraint is None  # the adapter answers freely first
    assert _finish(job, '{"mail": 1}', truncated=False)  # invalid: the strict retry
    assert job.row().constraint == "schema"
    assert _finish(job, '{"email": "xxxxxxxx', truncated=True)
    assert job.row().constraint == "capped"
    assert not _finish(job, '{"email": "x"}', truncated=False)
    ans = job.wait(0)
    assert ans.path == "adapter+constrained-retry+capped" and ans.valid
    assert ans.first_text == '{"mail": 1}'
    assert (ans.prompt_tokens, ans.completion_tokens) == (30, 11 + 19 + 14)

    stopped = Job(_plan("constrained"), CharTokenizer())
    assert not _finish(stopped, '{"email": 5}', truncated=False)  # invalid but not cut short: no rescue
    assert stopped.wait(0).path == "constrained" and not stopped.wait(0).valid
