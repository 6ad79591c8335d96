"""Widen values: cover what the schema allows, not only what a small teacher likes to write.

The 135M teacher dates nearly every report 2017-2023 and writes free text as plain words. A student
trained on that "corrects" a 1933 date to 2020 and cuts a task called `A0 0 0` after `A0`: it learned
what values usually look like, not to copy the one in the request. `widen` draws a share of dates and
date-times again over the range the decoding grammar allows (any year 1900-2099, month, day and time of
day: a teacher's date carries no fact the student needs), and mixes codes (digits, letter-digit tags,
mixed-case tokens) into a share of free-text strings. The question is rendered
from the widened value, so the round trip holds; the widened value is validated again.
"""

from __future__ import annotations

import calendar
import random
import re
import string
from typing import Any

from ..bounds import int_keyword
from ..schema import Schema
from .questions import SchemaNav, free_text

YEARS = (1900, 2099)  # the years `grammar.FORMAT_PATTERNS` lets a date run over
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_CLOCK = re.compile(r"T\d{2}:\d{2}:\d{2}")
MAX_CHARS = 64  # where the schema sets no maxLength (as `phrases`)


def redate(text: str, rng: random.Random) -> str:
    """`text` (a date or date-time) drawn again: year over `YEARS`, month, day, and the time of day (on the
    hour a third of the time: people write "at 10:00"); the teacher's fraction and offset stay. `text` where
    it does not start with a date."""
    m = _DATE.match(text)
    if not m:
        return text
    year, month = rng.randint(*YEARS), rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    out = f"{year:04d}-{month:02d}-{day:02d}"
    clock = _CLOCK.match(text, 10)
    if clock:
        hour = rng.randint(0, 23)
        minute, second = (0, 0) if rng.random() < 1 / 3 else (rng.randint(0, 59), rng.randint(0, 59))
        out += f"T{hour:02d}:{minute:02d}:{second:02d}{text[clock.end():]}"
    else:
        out += text[10:]
    return out


def code(rng: random.Random) -> str:
    """A token that is not a word: a number, a letter-digit tag (`Q3`, `B12`) or a mixed-case one (`x7Kq`)."""
    kind = rng.random()
    if kind < 0.35:
        return str(rng.choice((rng.randint(0, 9), rng.randint(10, 99), rng.randint(100, 9999))))
    if kind < 0.7:
        return rng.choice(string.ascii_uppercase) + str(rng.randint(0, 99))
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 8)))


def coded(text: str, node: dict[str, Any], rng: random.Random) -> str:
    """`text` with some words (at least one) swapped for codes, within the node's lengths; `text` when
    that does not fit."""
    words = text.split() or [code(rng)]
    swap = [rng.random() < 0.5 for _ in words]
    swap[rng.randrange(len(words))] = True
    out = [code(rng) if s else w for w, s in zip(words, swap, strict=True)]
    low, high = int_keyword(node, "minLength", 0), int_keyword(node, "maxLength", MAX_CHARS)
    while len(" ".join(out)) < low:
        out.append(code(rng))
    while len(out) > 1 and len(" ".join(out)) > high:
        out.pop()
    result = " ".join(out)
    return result if low <= len(result) <= high else text


def widen(value: Any, schema: Schema, rng: random.Random, share: float, dates: float = 0.5) -> Any:
    """A copy of `value` with each date/date-time drawn again with chance `dates` and each free-text string
    coded with chance `share`; `value` itself when nothing changed or the result is invalid."""
    if share <= 0 and dates <= 0:
        return value
    nav = SchemaNav(schema)

    def walk(v: Any, node: dict[str, Any]) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, nav.child(node, k)) for k, x in v.items()}
        if isinstance(v, list):
            item = nav.items(node)
            return [walk(x, item) for x in v]
        if isinstance(v, str):
            roll = rng.random()
            if node.get("format") in ("date", "date-time") and "enum" not in node and "const" not in node:
                return redate(v, rng) if roll < dates else v
            if free_text(node) and roll < share:
                return coded(v, node, rng)
        return v

    out = walk(value, nav.deref(schema.raw))
    return out if out != value and schema.is_valid(out) else value
