"""The prose question writer, value spellings, the round trip that accepts them, and the plausibility filter."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from schema_specialist.generate import vocabulary as vocab
from schema_specialist.generate.grammar import decoding_schema
from schema_specialist.generate.numbers import has_number, numbers_in
from schema_specialist.generate.plausible import implausible, tidy_strings
from schema_specialist.generate.questions import SchemaNav, missing_facts, render
from schema_specialist.schema import load_schema, schema_from_dict

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "schemas").glob("*.json"))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_prose_questions_state_every_value(data: st.DataObject) -> None:
    schema = load_schema(data.draw(st.sampled_from(EXAMPLES)))
    instance = data.draw(from_schema(decoding_schema(schema)))
    r = render(instance, schema, random.Random(data.draw(st.integers(0, 10_000))), prose_share=1.0)
    assert r.style == "prose"
    assert missing_facts(r.question, instance, schema) == [], r.question


def test_prose_is_the_majority_and_not_a_label_list() -> None:
    schema = load_schema(EXAMPLES[0].parent / "agent_status.json")
    value = {"agent_id": "agent-042", "task": "Nightly invoice reconciliation", "state": "running",
             "reported_at": "2026-03-01T02:10:00Z", "progress": 0.4,
             "metrics": {"tokens_used": 5200, "cost_usd": 0.42, "tool_calls": 12}, "incidents": []}
    rendered = [render(value, schema, random.Random(i)) for i in range(200)]
    styles = [r.style for r in rendered]
    assert 0.7 < styles.count("prose") / len(styles) < 0.9
    prose = [r.question for r in rendered if r.style == "prose"]
    assert all(not missing_facts(q, value, schema) for q in prose)
    # labels vary: the literal `tokens used: 5200` is a minority of the ways the field is said
    literal = sum("tokens used: 5200" in q for q in prose)
    assert literal < 0.2 * len(prose)
    assert len(set(prose)) == len(prose)


def test_a_question_that_drops_a_value_is_caught() -> None:
    schema = load_schema(EXAMPLES[0].parent / "agent_status.json")
    value = {"agent_id": "agent-042", "task": "Nightly run", "state": "done", "reported_at": "2026-03-01T02:10:00Z",
             "metrics": {"tokens_used": 5200, "cost_usd": 0.42, "tool_calls": 12},
             "incidents": [{"severity": "low", "summary": "Slow disk", "resolved": False}]}
    good = ("agent-042 finished the Nightly run (done) as of 2026-03-01T02:10:00Z: 5,200 tokens, $0.42 spent, "
            "12 tool calls. One low incident, Slow disk, not resolved.")
    assert missing_facts(good, value, schema) == []
    assert missing_facts(good.replace("not resolved", "resolved"), value, schema) == ["/incidents/0/resolved"]
    assert missing_facts(good.replace("not resolved", "unresolved"), value, schema) == []
    assert missing_facts(good.replace("not resolved", "still open"), value, schema) == []
    assert missing_facts(good.replace("$0.42", "$0.43"), value, schema) == ["/metrics/cost_usd"]
    empty = {**value, "incidents": []}
    assert missing_facts("agent-042 Nightly run done 2026-03-01T02:10:00Z 5200 0.42 12", empty, schema) \
        == ["/incidents"]
    assert missing_facts("agent-042 Nightly run done 2026-03-01T02:10:00Z 5200 0.42 12, no incidents", empty,
                         schema) == []


@pytest.mark.parametrize(("text", "value", "found"), [
    ("5,200 tokens", 5200, True), ("$0.42", 0.42, True), ("40% done", 0.4, True), ("ten calls", 10, True),
    ("5200 tokens", 520, False), ("0.42", 0.4, False),
    ("5.2k tokens", 5200, True), ("15K tokens", 15000, True), ("3 million", 3_000_000, True),
    ("22 cents", 0.22, True), ("40 percent", 0.4, True), ("half done", 0.5, True), ("three quarters", 0.75, True),
    ("every 5 minutes", 300, True), ("after 2 hours", 7200, True), ("5.2k", 5300, False),
    # in words, as people type or dictate them
    ("six thousand four hundred tokens", 6400, True), ("forty-five", 45, True), ("forty five", 45, True),
    ("a hundred and ten people", 110, True), ("nineteen thousand", 19000, True), ("twelve", 12, True),
    ("threshold one eighty", 180, True), ("messages two fifty", 250, True), ("agent four two one", 421, True),
    ("fifty one cents", 0.51, True), ("one dollar fifty", 1.5, True), ("2 euros and 5 cents", 2.05, True),
    ("a dozen", 12, True), ("forty five", 4500, False), ("one, eighty", 180, False),
    # figures in other shapes
    ("prog .25", 0.25, True), ("$ .24", 0.24, True), ("Candle x3 @ 14.50", 3, True), ("14.3%", 0.143, True),
    ("paused at 1:35", 95, True), ("ran 1:02:03", 3723, True), ("at 2026-03-10T07:07:00Z", 25620, False),
])
def test_numbers_are_recovered_as_people_write_them(text: str, value: float, found: bool) -> None:
    assert has_number(text, value) is found


@pytest.mark.parametrize(("text", "value", "said"), [
    ("not resolved", False, True), ("resolved", True, True), ("resolved: no", False, True),
    ("resolved: yes", True, True), ("isn't resolved", False, True), ("resolved", False, False),
    ("not resolved", True, False),
    # opposites of the field's name say false; a negated opposite says true
    ("unresolved", False, True), ("still open", False, True), ("unresolved", True, False),
    ("not open anymore", True, True), ("open", True, False), ("reopened", False, False),
])
def test_booleans_said_in_words(text: str, value: bool, said: bool) -> None:
    assert vocab.boolean_stated(text, value, ["resolved"]) is said


def test_labels_come_from_the_schema_words() -> None:
    names = vocab.labels("cost_usd", {"type": "number", "description": "Spend in US dollars"})
    assert names[0] == "cost usd" and "cost" in names and "spend in us dollars" in names


@pytest.mark.parametrize(("key", "node", "siblings", "named", "not_named"), [
    ("tokens_used", {"type": "integer"}, ("cost_usd",), "tokens", "used"),
    ("minutes_taken", {"type": "number"}, (), "minutes", "taken"),
    # a sibling with the same noun: the participle tells them apart ("1204 tests, 3 failed")
    ("tests_failed", {"type": "integer"}, ("tests_run", "branch"), "failed", "tests"),
    # not counts: the last word stays
    ("max_allowed", {"type": "integer"}, (), "allowed", "max"),
    ("reported_at", {"type": "string"}, (), "reported", "at"),
    ("files_changed", {"type": "string"}, (), "changed", "files"),
])
def test_a_count_is_named_by_its_noun(key: str, node: dict[str, Any], siblings: tuple[str, ...], named: str,
                                      not_named: str) -> None:
    names = vocab.labels(key, node, siblings)
    assert named in names and not_named not in names, names


def test_prose_says_a_count_with_its_noun_where_no_sibling_shares_it() -> None:
    schema = schema_from_dict({"type": "object", "required": ["tests_run", "tests_failed", "files_changed"],
                               "properties": {"tests_run": {"type": "integer", "minimum": 0},
                                              "tests_failed": {"type": "integer", "minimum": 0},
                                              "files_changed": {"type": "integer", "minimum": 0}}})
    value = {"tests_run": 1204, "tests_failed": 3, "files_changed": 17}
    prose = [render(value, schema, random.Random(i), prose_share=1.0).question for i in range(300)]
    assert any("17 files" in q and "17 files changed" not in q for q in prose)
    assert not any(re.search(r"(?<!files )changed", q, re.IGNORECASE) for q in prose)  # "17 changed"
    assert not any(re.search(r"\b3 tests(?! failed)", q) for q in prose)  # would not say which count
    assert any("3 failed" in q for q in prose)


ITEM: dict[str, Any] = {"type": "object", "properties": {"summary": {"type": "string", "minLength": 3},
                                                         "code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}


@pytest.mark.parametrize(("summary", "bad"), [
    ("Disk full on the backup host", False), ("Failed to vacuum", False), ("./135", True), ("A_B_D_P_C_E", True),
    ("Task", True), ("summary", True), ("aaaa bbbb", True), ("1953", True), ("Tokyo Metro 3000", False),
])
def test_implausible_free_text(summary: str, bad: bool) -> None:
    schema = schema_from_dict(ITEM)
    assert (implausible({"summary": summary, "code": "XYZ"}, SchemaNav(schema)) is not None) is bad


def test_tidy_cuts_debris_and_the_cut_off_word() -> None:
    schema = schema_from_dict(ITEM)
    nav = SchemaNav(schema)
    assert tidy_strings({"summary": "not implemented,", "code": "XYZ"}, nav)["summary"] == "not implemented"
    decoding = {"properties": {"summary": {"maxLength": 16}}}
    assert tidy_strings({"summary": "An autonomous ar"}, nav, None, decoding)["summary"] == "An autonomous"


def test_enum_values_said_with_synonyms_that_name_no_other_value() -> None:
    states = ["idle", "running", "blocked", "failed", "done"]
    words = vocab.enum_words("done", states)
    assert words[0] == "done" and "finished" in words and "completed" in words
    assert "stuck" in vocab.enum_words("blocked", states)
    # a synonym that is another value of the same enum is never used ("complete" vs "completed")
    assert "completed" not in vocab.enum_words("done", ["done", "completed"])
    assert "done" not in vocab.enum_words("finished", ["done", "finished"])
    assert vocab.enum_words("feature_request") == ["feature_request", "feature request"]
    schema = load_schema(EXAMPLES[0].parent / "agent_status.json")
    value = {"agent_id": "agent-042", "task": "Nightly run", "state": "done", "reported_at": "2026-03-01T02:10:00Z",
             "metrics": {"tokens_used": 5200, "cost_usd": 0.42, "tool_calls": 12}, "incidents": []}
    said = "agent-042 finished the Nightly run at 2026-03-01T02:10:00Z, 5200 tokens, $0.42, 12 tool calls, no incidents"
    assert missing_facts(said, value, schema) == []
    assert missing_facts(said.replace("finished", "worked on"), value, schema) == ["/state"]
    prose = [render(value, schema, random.Random(i), prose_share=1.0).question for i in range(300)]
    assert any("finished" in q or "completed" in q for q in prose)


def test_asides_state_no_values() -> None:
    from schema_specialist.generate.prose import ASIDES

    # a number or count word in an aside would let a question that drops a value pass the round trip
    assert [a for a in ASIDES if numbers_in(a) or any(w in a.lower() for w in ("true", "false", "null"))] == []


@pytest.mark.parametrize(("text", "said"), [
    ("opened March 3rd 2026, p2", True), ("opened on 3 Mar 2026", True), ("on the 3rd of March 2026", True),
    ("opened Mar 3, 2026", True), ("opened March 13, 2026", False), ("opened March 3, 2025", False),
])
def test_dates_said_in_words_are_recovered(text: str, said: bool) -> None:
    schema = load_schema(EXAMPLES[0].parent / "support_ticket.json")
    value = {"ticket_id": 4821, "category": "bug", "priority": "p2", "customer": {"name": "Dana", "plan": "pro"},
             "opened_on": "2026-03-03", "needs_engineering": True}
    question = f"ticket 4821, bug, p2, customer Dana on pro, needs engineering, {text}"
    assert (missing_facts(question, value, schema) == []) is said
    prose = [render(value, schema, random.Random(i), prose_share=1.0).question for i in range(100)]
    assert any("March" in q or "Mar " in q for q in prose)


@pytest.mark.parametrize(("text", "said"), [
    ("at 2026-03-03T14:05:00Z", True), ("on March 3, 2026 at 14:05 UTC", True), ("14:05 UTC on 3 Mar 2026", True),
    ("the 3rd of March 2026, 14:05 UTC", True), ("March 3, 2026 at 14:06 UTC", False),
    ("March 3, 2026", False), ("March 3, 2026 at 14:05", False),  # no zone: not the same instant
])
def test_utc_timestamps_said_in_words_are_recovered(text: str, said: bool) -> None:
    schema = load_schema(EXAMPLES[0].parent / "agent_status.json")
    value = {"agent_id": "agent-042", "task": "nightly run", "state": "done", "reported_at": "2026-03-03T14:05:00Z",
             "metrics": {"tokens_used": 5200, "cost_usd": 0.42, "tool_calls": 12}, "incidents": []}
    question = f"agent-042 nightly run done {text}, 5200 tokens, $0.42, 12 tool calls, no incidents"
    assert (missing_facts(question, value, schema) == []) is said


@pytest.mark.parametrize(("value", "words", "not_it"), [
    ("2026-03-03T14:05:00+02:00", "March 3, 2026 at 14:05 UTC+02:00", "March 3, 2026 at 14:05 UTC"),
    ("2026-03-03T14:05:00Z", "March 3, 2026 at 14:05 UTC", "March 3, 2026 at 14:05 UTC+02:00"),
    ("2052-07-10T10:14:16.2-11:00", "10 Jul 2052 10:14:16.2 UTC-11:00", "10 Jul 2052 10:14:16 UTC-11:00"),
    ("2022-12-11T03:22:00.000Z", "03:22:00.000 UTC on December 11, 2022", "03:22 UTC on December 11, 2022"),
])
def test_offsets_and_fractions_are_said_with_the_clock(value: str, words: str, not_it: str) -> None:
    """A timestamp with an offset or a fraction is said in words too, and the words name only that one."""
    assert words in vocab.datetime_words(value) and not_it not in vocab.datetime_words(value)
    assert vocab.date_stated(f"reported {words}, thanks", value)
    assert not vocab.date_stated(f"reported {not_it}, thanks", value)


def test_short_numbers_and_durations_never_round() -> None:
    assert vocab.short_number(5200) == "5.2k" and vocab.short_number(15000) == "15k"
    assert vocab.short_number(5234) is None and vocab.short_number(999) is None
    assert vocab.short_number(3_000_000) == "3M"
    assert vocab.duration_words(300)[0] == "5 minutes" and vocab.duration_words(3600)[0] == "1 hour"
    assert vocab.duration_words(90) == [] and vocab.duration_words(0) == []


def test_prose_says_values_in_the_words_people_use() -> None:
    """Over many renderings the writer uses each spoken form, and every question still states every value."""
    schema = load_schema(EXAMPLES[0].parent / "agent_status.json")
    value = {"agent_id": "agent-042", "task": "Nightly run", "state": "running", "reported_at": "2026-03-01T02:10:00Z",
             "progress": 0.5, "metrics": {"tokens_used": 5200, "cost_usd": 0.42, "tool_calls": 12},
             "incidents": [{"severity": "low", "summary": "Slow disk", "resolved": False}]}
    prose = [render(value, schema, random.Random(i), prose_share=1.0).question for i in range(400)]
    assert all(not missing_facts(q, value, schema) for q in prose)
    low = [q.lower() for q in prose]
    for form in ("5.2k", "42 cents", "half", "50 percent", "march 1, 2026 at 02:10 utc"):
        assert any(form in q for q in low), form
    # a false boolean is sometimes said by the field's opposite ("still open"), not only by a negation
    assert any(w in q for q in low for w in ("unresolved", "still open", "outstanding", "unfixed"))
    log = load_schema(Path(__file__).resolve().parent / "data" / "unseen" / "log_config.json")
    conf = {"logging": {"enabled": False, "threshold": {"seconds": 300}}}
    spoken = [render(conf, log, random.Random(i), prose_share=1.0).question for i in range(200)]
    assert all(not missing_facts(q, conf, log) for q in spoken)
    assert any("5 min" in q for q in spoken) and any("disabled" in q.lower() for q in spoken)


SWITCHES = schema_from_dict({
    "type": "object",
    "properties": {
        "backup": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "copies": {"type": "integer"}}},
        "alerts": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "email": {"type": "string"}}},
        "name": {"type": "string"},
    },
})


def test_a_switch_is_said_by_the_name_of_what_it_switches() -> None:
    """`backup.enabled` is said "backup on" / "disable alerts"; two objects that share a key are never
    said without their names, so the request always says which one it sets."""
    value = {"backup": {"enabled": True, "copies": 3}, "alerts": {"enabled": False, "email": "ops@example.com"}}
    spoken = [render(value, SWITCHES, random.Random(i), prose_share=1.0).question for i in range(300)]
    assert all(not missing_facts(q, value, SWITCHES) for q in spoken)
    low = [q.lower() for q in spoken]
    assert any(f in q for q in low for f in ("backup on", "enable backup", "turn on backup", "backup switched on"))
    assert any(f in q for q in low for f in ("alerts off", "disable alerts", "turn off alerts", "without alerts"))
    assert all("backup" in q and "alert" in q for q in low)


@pytest.mark.parametrize(("text", "value", "said"), [
    ("backup on, 3 copies", True, True), ("backup on", False, False), ("backup off", False, True),
    ("disable the backup", False, True), ("disable the backup", True, False), ("turn off nightly backup", False, True),
    ("enable backup", True, True), ("backup switched off", False, True), ("with backup on", True, True),
])
def test_switch_words_said_of_the_object(text: str, value: bool, said: bool) -> None:
    assert vocab.boolean_stated(text, value, ["backup"]) is said


def test_a_switch_named_by_its_object_counts_in_the_round_trip() -> None:
    value = {"backup": {"enabled": False}}
    assert missing_facts("turn off the backup please", value, SWITCHES) == []
    assert missing_facts("backup on please", value, SWITCHES) == ["/backup/enabled"]


def test_optional_objects_left_empty_are_dropped() -> None:
    from schema_specialist.generate.balance import drop_optional

    value = {"backup": {}, "alerts": {"email": "a@b.c"}, "name": "x"}
    out = drop_optional(value, SWITCHES, random.Random(0), 1e-9)
    assert out == {"alerts": {"email": "a@b.c"}, "name": "x"}
    required = schema_from_dict({"type": "object", "required": ["backup"], "properties": {
        "backup": {"type": "object", "properties": {"copies": {"type": "integer"}}}}})
    assert drop_optional({"backup": {}}, required, random.Random(0), 1e-9) == {"backup": {}}


def test_capital_enum_values_are_also_written_in_lower_case() -> None:
    schema = schema_from_dict({"type": "object", "properties": {"mode": {"enum": ["FAST_PATH", "SLOW"]}}})
    value = {"mode": "FAST_PATH"}
    spoken = [render(value, schema, random.Random(i), prose_share=1.0).question for i in range(200)]
    assert all(not missing_facts(q, value, schema) for q in spoken)
    assert any("fast path" in q or "fast_path" in q for q in spoken)
    assert any("FAST" in q for q in spoken)


@pytest.mark.parametrize(("key", "node", "first"), [
    ("maxJobs", {"type": "integer", "description": "The maximum number of jobs to run at once."},
     "at most {V} jobs to run at once"),
    ("minReplicas", {"type": "integer", "description": "Minimum number of replicas."}, "at least {V} replicas"),
    ("nbFailures", {"type": "integer", "description": "Number of detected failures"}, "{V} detected failures"),
    ("waitSeconds", {"type": "integer", "description": "The delay in seconds before the first poll."},
     "{V} {U} before the first poll"),
    ("gap", {"type": "integer", "description": "Time between two polls."}, None),  # no unit: says nothing
    ("repo", {"type": "string", "description": "The name of the repository where the bug comes from"},
     "repository {V}"),
    ("volume", {"type": "string", "description": "Name of the volume already created, if any"}, "volume {V}"),
    ("count", {"type": "integer", "description": "Number of retries (at most 5)."}, None),  # digits: not said
    ("mode", {"type": "string", "enum": ["a", "b"], "description": "Name of the mode"}, None),
    ("task", {"type": "string", "description": "Short name of the current task"}, None),
])
def test_a_description_that_defines_a_field_says_its_value(key: str, node: dict[str, Any],
                                                           first: str | None) -> None:
    forms = vocab.described(key, node)
    assert (forms[0] if forms else None) == first


DESCRIBED = schema_from_dict({
    "type": "object",
    "properties": {
        "poll": {"type": "object", "properties": {
            "seconds": {"type": "integer", "description": "The time interval in seconds between two polls."},
            "jobs": {"type": "integer", "description": "The maximum number of jobs to start per poll."}}},
        "queue": {"type": "string", "description": "The name of the queue that holds the jobs."},
    },
})


def test_values_said_with_their_description_stay_faithful() -> None:
    """The description's words stand in for the label ("a time interval of 2 minutes between two
    polls", "up to 4 jobs to start per poll"); a duration in words drops the unit, and the round trip holds."""
    value = {"poll": {"seconds": 120, "jobs": 4}, "queue": "nightly-etl"}
    spoken = [render(value, DESCRIBED, random.Random(i), prose_share=1.0).question for i in range(300)]
    assert all(not missing_facts(q, value, DESCRIBED) for q in spoken)
    low = [q.lower() for q in spoken]
    assert any("120 seconds between two polls" in q for q in low)
    assert any("2 minutes between two polls" in q or "2 min between two polls" in q for q in low)
    assert not any("minutes seconds" in q or "min seconds" in q for q in low)
    assert any(f"{b} 4 jobs to start per poll" in q for q in low for b in ("at most", "up to", "no more than"))
    assert any("queue called nightly-etl" in q or "queue named nightly-etl" in q for q in low)
    assert sum("poll" in q for q in low) > 150


def test_optional_fields_the_teacher_left_out_are_filled_from_other_instances() -> None:
    """A teacher that writes one field of an all-optional schema: `fill_optional` adds the others as
    other accepted instances had them (objects filled inside too), so the student sees whole requests."""
    from schema_specialist.generate.balance import FieldPool, fill_optional

    pool = FieldPool(SWITCHES)
    for v in ({"backup": {"copies": 3}}, {"alerts": {"enabled": True}}, {"name": "nightly"},
              {"backup": {"enabled": False}}, {"alerts": {"email": "ops@example.com"}}):
        pool.add(v)
    full = fill_optional({"name": "weekly"}, SWITCHES, random.Random(0), pool, 1.0)
    assert full["name"] == "weekly"
    assert full["backup"].keys() == {"copies", "enabled"} and full["alerts"].keys() == {"enabled", "email"}
    assert SWITCHES.is_valid(full)
    assert fill_optional({"name": "weekly"}, SWITCHES, random.Random(0), pool, 0.0) == {"name": "weekly"}
    sizes = {len(fill_optional({"name": "x"}, SWITCHES, random.Random(i), pool, 0.5)) for i in range(50)}
    assert sizes == {1, 2, 3}


def test_drop_optional_never_leaves_an_empty_request() -> None:
    from schema_specialist.generate.balance import drop_optional

    value = {"name": "x"}
    assert all(drop_optional(value, SWITCHES, random.Random(i), 0.9) == value for i in range(20))


def test_no_closing_word_runs_on_from_a_free_text_value() -> None:
    """"task Zq7 o1L thanks": when the facts end on a free-text value, a closer or aside after it is set
    off by a full stop, so the value's end can be told from the request."""
    schema = schema_from_dict({"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]})
    questions = [render({"task": "Zq7 o1L"}, schema, random.Random(i), prose_share=1.0).question
                 for i in range(400)]
    ends = [q for q in questions if "Zq7 o1L" in q and not q.endswith("Zq7 o1L")]
    assert len(ends) > 100
    from schema_specialist.generate.prose import ASIDES, CLOSERS

    tails = [t.strip().lower() for t in [*CLOSERS, *ASIDES] if t.strip()[:1].isalpha()]
    run_on = [q for q in ends if any(f"zq7 o1l {t}" in q.lower() for t in tails)]
    assert run_on == []
    assert any(f"zq7 o1l. {t}" in q.lower() for q in ends for t in tails)  # they are still there, set off


def test_a_key_with_no_words_is_named_quoted() -> None:
    """A key of spaces (a schema may declare one) once crashed the writer: it had no label to pick."""
    schema = schema_from_dict({"type": "object", "properties": {" ": {"type": "integer"}, "a b": {"type": "string"}},
                               "required": [" ", "a b"]})
    assert vocab.labels(" ", {"type": "integer"}) == ['" "']
    for i in range(50):
        r = render({" ": 7, "a b": "x y"}, schema, random.Random(i))
        assert missing_facts(r.question, {" ": 7, "a b": "x y"}, schema) == [], r.question


def test_money_is_written_in_the_instances_currency() -> None:
    schema = load_schema(EXAMPLES[0].parent / "order.json")
    item = {"sku": "KIT-204", "name": "Ceramic Pour-Over Set", "quantity": 2, "unit_price": 34.9}
    for code, sign, word in (("EUR", "€", "euros"), ("GBP", "£", "pounds"), ("USD", "$", "dollars")):
        value = {"order_id": "ORD-10452", "customer_email": "maria@example.com", "status": "paid",
                 "items": [item], "currency": code}
        prose = [render(value, schema, random.Random(i), prose_share=1.0).question for i in range(150)]
        assert all(not missing_facts(q, value, schema) for q in prose)
        others = {"$", "€", "£", "dollars", "euros", "pounds"} - {sign, word}
        assert not [q for q in prose if any(o in q for o in others)], code
        assert sum(f"{sign}34.9" in q or f"34.9 {word}" in q for q in prose) > 20, code
    # a key that names its currency wins over none stated: `cost_usd` is in dollars
    assert vocab.money_currency("cost_usd", None) == "USD" and vocab.money_currency("price_eur", "USD") == "EUR"
    assert vocab.instance_currency({"a": [{"currency_code": "gbp"}]}) == "GBP"
    assert vocab.instance_currency({"currency": "XXX", "note": "EUR"}) is None

