"""`generate.widen`: dates over the grammar's years, codes among free-text words, the round trip kept."""

from __future__ import annotations

import random

from schema_specialist.generate.questions import missing_facts, render
from schema_specialist.generate.widen import YEARS, coded, redate, widen
from schema_specialist.schema import schema_from_dict

EVENT = schema_from_dict({
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 30},
        "on": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "kind": {"enum": ["call", "visit"]},
        "ref": {"type": "string", "pattern": "^R-[0-9]{3}$"},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 12}, "maxItems": 3},
    },
    "required": ["title", "on", "at", "kind", "ref"],
    "additionalProperties": False,
})
VALUE = {"title": "Quarterly budget review", "on": "2022-03-14", "at": "2021-07-09T10:30:00.250+02:00",
         "kind": "call", "ref": "R-042", "tags": ["finance", "team sync"]}


def test_redate_draws_the_year_and_keeps_the_rest() -> None:
    outs = [redate(VALUE["at"], random.Random(i)) for i in range(300)]
    assert all(o[4:] == VALUE["at"][4:] for o in outs)  # month, day, time, fraction and offset stay
    years = {int(o[:4]) for o in outs}
    assert min(years) < 1950 and max(years) > 2050 and YEARS[0] <= min(years) and max(years) <= YEARS[1]
    leap = {redate("2024-02-29", random.Random(i)) for i in range(100)}
    assert len(leap) > 5 and all(EVENT.is_valid({**VALUE, "on": d}) for d in leap)  # no 29 Feb 2023
    assert redate("not a date", random.Random(0)) == "not a date"


def test_coded_mixes_codes_in_within_the_lengths() -> None:
    node = {"type": "string", "minLength": 3, "maxLength": 30}
    outs = [coded("Quarterly budget review", node, random.Random(i)) for i in range(200)]
    assert all(3 <= len(o) <= 30 for o in outs)
    assert all(o != "Quarterly budget review" for o in outs)  # at least one word swapped
    assert sum(any(c.isdigit() for c in o) for o in outs) > 150
    assert any(w in ["Quarterly", "budget", "review"] for o in outs for w in o.split())  # words kept too
    tight = {"type": "string", "minLength": 2, "maxLength": 2}
    assert all(len(coded("ab", tight, random.Random(i))) == 2 for i in range(50))


def test_widen_touches_only_dates_and_free_text_and_stays_valid() -> None:
    changed = 0
    for i in range(300):
        out = widen(VALUE, EVENT, random.Random(i), 0.5, 0.5)
        assert EVENT.is_valid(out)
        assert out["kind"] == "call" and out["ref"] == "R-042"  # enums and patterned strings stay
        assert out["on"][4:] == VALUE["on"][4:] and out["at"][4:] == VALUE["at"][4:]
        changed += out != VALUE
        question = render(out, EVENT, random.Random(i)).question
        assert missing_facts(question, out, EVENT) == [], question  # the round trip holds on widened values
    assert changed > 250
    assert widen(VALUE, EVENT, random.Random(0), 0.0, 0.0) is VALUE
    same = sum(widen(VALUE, EVENT, random.Random(i), 0.05, 0.05) == VALUE for i in range(200))
    assert same > 100  # a small share leaves most instances as the teacher wrote them
    dates_only = [widen(VALUE, EVENT, random.Random(i), 0.0, 1.0) for i in range(50)]
    assert all(d["title"] == VALUE["title"] and d["tags"] == VALUE["tags"] for d in dates_only)
    assert all(d["on"] != VALUE["on"] for d in dates_only)
