"""Phrases: free-text values of the lengths people write, not the small teacher's two words.

The 135M teacher names a task or sums up an incident in about two words ("pillbox Product"), and a
student trained on them learns to end every copied span after two words. `rephrase` swaps a share of
the free-text strings (no enum, const, pattern or format) for a phrase of one to eight words drawn from
English word lists (Faker's business and catch-phrase words, its common-word list) mixed with the
teacher's own words. Not the schema's words: in the one run that mixed them in, phrases held "tokens"
and the student wrote the key `"tokens"` for `tokens_used` on 6 of 60 hand-written requests (1 before,
0 without them). The question is rendered from the new value, so the round trip still holds; the phrase
only has to read as words (`plausible.string_problem`) and fit the schema.

A share of the drawn values (`IDENTIFIER_SHARE`) are identifiers instead: the same words joined the way
people name things in free-text fields (`nightly/invoice-sync`, `billing_job`, `storeFront`, `api.v2`).
Without them a student has only seen values of plain words, and cuts a value such as `feature/login-retry`
at its slash.
"""

from __future__ import annotations

import random
import re
from functools import cache
from typing import Any

from ..bounds import int_keyword
from ..schema import Schema
from .plausible import string_problem
from .questions import SchemaNav, free_text, map_leaves

# Word counts of a drawn phrase: broad on purpose (one word to a short sentence), not fitted to any file.
LENGTHS = (1, 2, 3, 4, 5, 6, 7, 8)
LENGTH_WEIGHTS = (6, 14, 18, 18, 16, 12, 9, 7)
MAX_CHARS = 64  # where the schema sets no maxLength
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
IDENTIFIER_SHARE = 0.2  # of drawn values: an identifier, not a phrase
IDENTIFIER_SHAPES = ("path", "kebab", "snake", "dotted", "camel")
_JOINERS = {"kebab": "-", "snake": "_", "dotted": "."}


@cache
def word_lists() -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(common words, business words, business phrase parts) from Faker's en_US providers."""
    from faker.providers.company.en_US import Provider as Company
    from faker.providers.lorem.en_US import Provider as Lorem

    common = tuple(w for w in Lorem.word_list if w.isalpha())
    parts = tuple(tuple(p) for p in (*Company.bsWords, *Company.catch_phrase_words))
    business = tuple(sorted({w for p in parts for phrase in p for w in phrase.split() if _WORD.fullmatch(w)}))
    return common, business, parts


def phrase(rng: random.Random, words: int, own: str = "") -> str:
    """A phrase of `words` words: a business phrase, common words, or the teacher's own words (`own`),
    cut to length or grown at either end."""
    common, business, parts = word_lists()
    kind = rng.random()
    if kind < 0.35:
        out = [rng.choice(part) for part in rng.choice((parts[:3], parts[3:]))]
        out = " ".join(out).split()
    elif kind < 0.7 or not own.strip():
        out = []
    else:
        out = own.split()
    out = out[:words]
    while len(out) < words:
        word = rng.choice(business if rng.random() < 0.35 else common)
        out.insert(0 if rng.random() < 0.3 else len(out), word)  # at an end: the phrase's grammar holds
    text = " ".join(out)
    style = rng.random()
    if style < 0.1:
        return text.title()
    if style < 0.55:
        return text[:1].upper() + text[1:]
    return text.lower() if style < 0.9 else text


def identifier(rng: random.Random, own: str = "") -> str:
    """An identifier of one to three words (common words, or the teacher's own, `own`) joined as a
    path (`release/night-build`), kebab, snake, dotted or camel case, sometimes with a number at its end."""
    common, _, _ = word_lists()
    mine = [w.lower() for w in _WORD.findall(own) if "'" not in w and "-" not in w][:3]
    words = mine if mine and rng.random() < 0.3 else [rng.choice(common) for _ in range(rng.choice((1, 2, 2, 3)))]
    shape = rng.choice(IDENTIFIER_SHAPES)
    if shape == "path":
        head, *tail = words if len(words) > 1 else [rng.choice(common), *words]
        text = head + "/" + "-".join(tail)
    elif shape == "camel":
        text = words[0] + "".join(w.title() for w in words[1:])
    else:
        text = _JOINERS[shape].join(words)
    if rng.random() < 0.25:
        text += rng.choice(("-", "", ".", "_")) + str(rng.randint(1, 20))
    return text


def _fits(text: str, node: dict[str, Any], key: str) -> bool:
    low, high = int_keyword(node, "minLength", 0), int_keyword(node, "maxLength", MAX_CHARS)
    return low <= len(text) <= high and string_problem(text, key, node) is None


def rephrase(value: Any, schema: Schema, rng: random.Random, share: float, *, tries: int = 6) -> Any:
    """A copy of `value` with each free-text string swapped, with chance `share`, for a drawn phrase
    (`tries` draws to fit the schema's lengths, shorter each time; kept as it was if none fits);
    `value` itself when nothing changed or the result is invalid."""
    if share <= 0:
        return value
    def leaf(v: Any, node: dict[str, Any], key: str, path: str) -> Any:
        if isinstance(v, str) and free_text(node) and rng.random() < share:
            words = rng.choices(LENGTHS, LENGTH_WEIGHTS)[0]
            named = rng.random() < IDENTIFIER_SHARE
            for _ in range(tries):
                text = identifier(rng, v) if named else phrase(rng, words, v)
                if _fits(text, node, key):
                    return text
                words = max(1, words - 1)
        return v

    out = map_leaves(value, SchemaNav(schema), leaf)
    return out if out != value and schema.is_valid(out) else value
