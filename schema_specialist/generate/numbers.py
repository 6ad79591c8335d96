"""Numbers read back from a request: every number it writes, in figures or in words.

`vocabulary.spell_number` writes a value the ways people do (`5,200`, `$0.42`, `40%`, `5.2k`, `22 cents`,
`5 minutes`); `numbers_in` reads all of them back, so the round trip (`questions.missing_facts`) and the
groundedness check of a labelled request (`label`) accept exactly what was stated.
"""

from __future__ import annotations

import math
import re

from .vocabulary import COUNT_WORDS

_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?")


_SCALED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(k|K|thousand|M|million|percent|pct|cents?|minutes?|mins?|"
                     r"hours?|hrs?|h)(?![\w])")
_SCALE = {"k": 1000, "thousand": 1000, "m": 1_000_000, "million": 1_000_000, "percent": 0.01, "pct": 0.01,
          "cent": 0.01, "cents": 0.01, "minute": 60, "minutes": 60, "min": 60, "mins": 60, "hour": 3600,
          "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600}
_FRACTION_WORDS = {r"\bhalf\b": 0.5, r"\b(?:a|one) quarter\b": 0.25, r"\bthree quarters\b": 0.75}


def numbers_in(text: str) -> list[float]:
    """Every number written in `text`: thousands separators, `$`, `%` (as /100 too), `5.2k`, `22 cents`,
    `40 percent`, `5 minutes` (as 300 seconds too), number words and common fractions ("half")."""
    found: list[float] = []
    for m in _NUMBER.finditer(text):
        tok = m.group(0).replace("$", "").replace(",", "")
        pct = tok.endswith("%")
        tok = tok.rstrip("%")
        try:
            x = float(tok)
        except ValueError:
            continue
        found.append(x)
        if pct:
            found.append(x / 100)
    for m in _SCALED.finditer(text):
        unit = m.group(2)
        found.append(round(float(m.group(1)) * _SCALE[unit.lower()], 9))
    for pattern, x in _FRACTION_WORDS.items():
        if re.search(pattern, text, re.IGNORECASE):
            found.append(x)
    for i, word in enumerate(COUNT_WORDS):
        if re.search(rf"\b{word}\b", text, re.IGNORECASE):
            found.append(float(i))
    return found


def has_number(text: str, value: int | float, found: list[float] | None = None) -> bool:
    """Whether `value` is among the numbers written in `text`."""
    found = numbers_in(text) if found is None else found
    return any(math.isclose(x, float(value), rel_tol=1e-9, abs_tol=1e-12) for x in found)
