"""Numbers read back from a request: every number it writes, in figures or in words.

`vocabulary.spell_number` writes a value the ways people do (`5,200`, `$0.42`, `40%`, `5.2k`, `22 cents`,
`5 minutes`); `numbers_in` reads all of them back, so the round trip (`questions.missing_facts`) and the
groundedness check of a labelled request (`label`) accept exactly what was stated.
"""

from __future__ import annotations

import math
import re

from .vocabulary import COUNT_WORDS

_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)%?")
_TIMES = re.compile(r"(?<![\w])[x\u00d7](\d+)(?![\w.])")  # a quantity: "x3", "\u00d72"
# A clock-style duration: "1:35" (95 seconds, or 95 minutes as h:mm), "1:02:03" (3723 seconds).
_CLOCK = re.compile(r"(?<![\w:.])(\d{1,2}):([0-5]\d)(?::([0-5]\d))?(?![\d:])")
_UNITS_AFTER = r"(k|K|thousand|M|million|percent|pct|cents?|minutes?|mins?|hours?|hrs?|h)(?![\w])"
_SCALED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?" + _UNITS_AFTER)
_UNIT = re.compile(r"\s?-?" + _UNITS_AFTER)
_SCALE = {"k": 1000, "thousand": 1000, "m": 1_000_000, "million": 1_000_000, "percent": 0.01, "pct": 0.01,
          "cent": 0.01, "cents": 0.01, "minute": 60, "minutes": 60, "min": 60, "mins": 60, "hour": 3600,
          "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600}
_FRACTION_WORDS = {r"\bhalf\b": 0.5, r"\b(?:a|one) quarter\b": 0.25, r"\bthree quarters\b": 0.75}

# Numbers in words: "forty-five", "a hundred and ten", "six thousand four hundred", and the spoken
# readings "one eighty" (180), "two fifty" (250), "four two one" (421).
_SMALL = {w: i for i, w in enumerate([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {w: 10 * i for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                          "ninety"], 2)}
_BIG = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12}
_WORD = re.compile(r"[A-Za-z]+")
_JOIN = re.compile(r"[\s-]+")  # what may stand between two words of one number
# A sum of money in words or figures and its cents: "one dollar fifty", "2 euros and 5 cents".
_MONEY_JOIN = re.compile(r"\s+(?:dollars?|bucks|euros?|pounds?)(?:\s+and)?\s+")


def _word_value(words: list[str]) -> float:
    total = current = 0
    last = ""  # "small", "tens" or "big": what the previous number word was
    for w in words:
        if w in ("a", "an"):
            current, last = current + 1, "small"
        elif w in _BIG:
            if _BIG[w] < 1000:  # hundred, dozen: scale what came before
                current = (current or 1) * _BIG[w]
            else:
                total, current = total + (current or 1) * _BIG[w], 0
            last = "big"
        elif w in _SMALL or w in _TENS:
            v = _SMALL.get(w, _TENS.get(w, 0))
            if current and (last == "small" or (last == "tens" and v >= 10)):
                current = current * (100 if v >= 10 else 10) + v  # spoken digits: "one eighty", "four two"
            else:
                current += v
            last = "small" if w in _SMALL else "tens"
    return float(total + current)


def _continues(word: str, run: list[str], nxt: str) -> bool:
    """Whether `word` belongs to the number in words `run` (lowercase words so far; `nxt` follows)."""
    if word in _SMALL or word in _TENS:
        return True
    if word in _BIG:
        return bool(run) or word == "dozen"
    if word in ("a", "an"):  # "a hundred", "a dozen"
        return not run and nxt in _BIG
    return word == "and" and bool(run) and run[-1] in _BIG and (nxt in _SMALL or nxt in _TENS)


def word_numbers(text: str) -> list[tuple[int, int, float]]:
    """(start, end, value) of each number written in words in `text`."""
    spans: list[tuple[int, int, float]] = []
    toks = list(_WORD.finditer(text))
    i = 0
    while i < len(toks):
        run: list[str] = []
        j = i
        while j < len(toks):
            if run and _JOIN.fullmatch(text[toks[j - 1].end():toks[j].start()]) is None:
                break
            nxt = toks[j + 1].group().lower() if j + 1 < len(toks) else ""
            if not _continues(toks[j].group().lower(), run, nxt):
                break
            run.append(toks[j].group().lower())
            j += 1
        if run:
            spans.append((toks[i].start(), toks[j - 1].end(), _word_value([w for w in run if w != "and"])))
            i = j
        else:
            i += 1
    return spans


def _figures(text: str) -> list[tuple[int, int, float]]:
    spans = []
    for m in _NUMBER.finditer(text):
        tok = m.group(0).replace("$", "").replace(",", "").rstrip("%")
        try:
            spans.append((m.start(), m.end(), float(tok)))
        except ValueError:
            continue
    return spans


def _clean(x: float) -> float:
    """`x` rid of binary noise from scaling (14.3 / 100 is 0.14300000000000002)."""
    return float(f"{x:.12g}")


def numbers_in(text: str) -> list[float]:
    """Every number written in `text`: thousands separators, `$`, `.25`, `%` (as /100 too), `5.2k`,
    `22 cents`, `40 percent`, `5 minutes` (as 300 seconds too), `1:35` (95), `x3`, numbers in words
    ("forty-five", "a hundred and ten", "fifty one cents", "one dollar fifty") and common fractions
    ("half", "three quarters")."""
    found: list[float] = []
    figures = _figures(text)
    for _, end, x in figures:
        found.append(x)
        if text[end - 1] == "%":
            found.append(_clean(x / 100))
    for m in _SCALED.finditer(text):
        unit = m.group(2)
        found.append(round(float(m.group(1)) * _SCALE[unit.lower()], 9))
    words = word_numbers(text)
    for _, end, x in words:
        found.append(x)
        unit = _UNIT.match(text, end)
        if unit:
            found.append(_clean(x * _SCALE[unit.group(1).lower()]))
    spans = sorted(figures + words)
    for (_, end, whole), (start, _, part) in zip(spans, spans[1:], strict=False):
        if part < 100 and part == int(part) and _MONEY_JOIN.fullmatch(text[end:start]):
            found.append(_clean(whole + part / 100))
    for m in _TIMES.finditer(text):
        found.append(float(m.group(1)))
    for m in _CLOCK.finditer(text):
        a, b, c = m.groups()
        found.append(float(int(a) * 60 + int(b) if c is None else int(a) * 3600 + int(b) * 60 + int(c)))
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
