"""Widen values: cover what the schema allows, not only what a small teacher likes to write.

The 135M teacher dates nearly every report 2017-2023 and writes free text as plain words. A student
trained on that "corrects" a 1933 date to 2020 and cuts a task called `A0 0 0` after `A0`: it learned
what values usually look like, not to copy the one in the request. `widen` draws the year of a share of
dates and date-times again over the range the decoding grammar allows (1900-2099), and mixes codes
(digits, letter-digit tags, mixed-case tokens) into a share of free-text strings. The question is
rendered from the widened value, so the round trip holds; the widened value is validated again.
"""

from __future__ import annotations

import calendar
import random
import re
import string
from typing import Any

from ..bounds import int_keyword
from ..schema import Schema
from .phrases import MAX_CHARS
from .questions import SchemaNav, free_text, map_leaves

YEARS = (1900, 2099)  # the years `grammar.FORMAT_PATTERNS` lets a date run over
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def redate(text: str, rng: random.Random) -> str:
    """`text` (a date or date-time) with its year drawn over `YEARS`; `text` where it does not start with a
    date, or the day does not exist in the drawn year (29 February)."""
    m = _DATE.match(text)
    if not m:
        return text
    year = rng.randint(*YEARS)
    if int(m.group(3)) > calendar.monthrange(year, int(m.group(2)))[1]:
        return text
    return f"{year:04d}{text[4:]}"


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


def widen(value: Any, schema: Schema, rng: random.Random, share: float, dates: float) -> Any:
    """A copy of `value` with each date/date-time's year drawn again with chance `dates` and each free-text string
    coded with chance `share`; `value` itself when nothing changed or the result is invalid."""
    if share <= 0 and dates <= 0:
        return value
    def leaf(v: Any, node: dict[str, Any], key: str, path: str) -> Any:
        if isinstance(v, str):
            roll = rng.random()  # one draw for every string, of any kind, so each kind's draws stay put
            if node.get("format") in ("date", "date-time") and "enum" not in node and "const" not in node:
                return redate(v, rng) if roll < dates else v
            if free_text(node) and roll < share:
                return coded(v, node, rng)
        return v

    out = map_leaves(value, SchemaNav(schema), leaf)
    return out if out != value and schema.is_valid(out) else value
