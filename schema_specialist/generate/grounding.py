"""Values grounded in the request: a free-text string may only be a run of the request's own words, and
a number only one the request writes.

Every pair `generate` accepts says each value in its question (the round trip,
`questions.missing_facts`), so that is what a specialist is trained to do: copy, not write. `ground`
turns that contract into grammar.
- Strings: each string with no `enum`, `const`, `pattern` or `format` gets a `pattern` that matches
  exactly the runs of consecutive words of `text` (up to `MAX_WORDS` of them, kept with the whitespace
  between them; the first letter of a run may change case). An engine then cannot write a word the
  request does not contain: no invented task names, no misspelt copies.
- Numbers: each `number` or `integer` with no `enum` or `const` becomes the choice of the numbers the
  request writes (`numbers.numbers_in`: figures, words, `22 cents`, `15k`, `40%`, `1:35`), the numbers
  of the field's own title, description, `default` and `examples` ("Playback rate (1 is normal)"), 0
  where the request says "no" or "none" and 2 for "double", each kept only within the field's type and
  bounds. A field for
  which none of these fits stays free. An engine then cannot write a count the request never gave.
  Every gold answer of the 369 shipped hand-written requests (1103 numbers) stays writable
  (`tests/test_grounding.py`).

The string pattern is a plain regular expression (alternation of nested optional groups), so every
engine that compiles `pattern` compiles it (xgrammar too, ignoring lengths beside a pattern). llguidance
compiled agent_status's grounded grammar in 0.03-0.06 s for typical requests, 0.3-0.45 s for the longest
hand-written one (117 tokens), with run caps of 32 and 64. A number is an `anyOf` of exact ranges
(`minimum` = `maximum`); a whole number in a `number` field also admits `v.0` (`_exactly`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..bounds import is_number, within_bounds
from .numbers import numbers_in

MAX_WORDS = 48  # longest run of tokens (words, punctuation) one string may copy
_TOKEN = re.compile(r"\w+|[^\w\s]")
_META = frozenset("\\.^$|?*+()[]{}/-&~#\"'")
_NOT_FREE = ("enum", "const", "pattern", "format", "contentEncoding", "contentMediaType")


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _META else "\\n" if c == "\n" else "\\t" if c == "\t"
                   else "\\r" if c == "\r" else c for c in text)


def _first(token: str) -> str:
    """A run's first token with its first letter in either case."""
    c = token[0]
    if c.lower() != c.upper() and len(c.lower()) == 1 and len(c.upper()) == 1:
        return f"[{c.upper()}{c.lower()}]" + _escape(token[1:])
    return _escape(token)


def words(text: str) -> list[tuple[str, str]]:
    """(whitespace before, token) for each word or punctuation mark of `text`."""
    out: list[tuple[str, str]] = []
    end = 0
    for m in _TOKEN.finditer(text):
        out.append((text[end:m.start()] if out else "", m.group()))
        end = m.end()
    return out


def substring_pattern(text: str, max_words: int = MAX_WORDS) -> str | None:
    """A regex matching the runs of consecutive tokens of `text` (None when it has no token)."""
    toks = words(text)
    if not toks:
        return None
    alternatives: set[str] = set()
    for i in range(len(toks)):
        run = [_first(toks[i][1])] + [_escape(toks[j][0] + toks[j][1])
                                      for j in range(i + 1, min(len(toks), i + max_words))]
        pattern = ""
        for part in reversed(run):
            pattern = part + (f"(?:{pattern})?" if pattern else "")
        alternatives.add(pattern)
    return "^(?:" + "|".join(sorted(alternatives)) + ")$"


def _is_free_string(node: dict[str, Any]) -> bool:
    return node.get("type") == "string" and not any(k in node for k in _NOT_FREE)


_NUMBER_TYPES = ("number", "integer")
# Numbers a request implies rather than states, so the round trip (`numbers_in`) does not count them but
# a grounded grammar allows them: 0 where it negates ("no failures"), 2 and 3 for "double", "triple".
_IMPLIED = {0.0: re.compile(r"\b(?:no|none|nothing|zero|never|without)\b|n't\b", re.IGNORECASE),
            2.0: re.compile(r"\b(?:twice|double)\b", re.IGNORECASE),
            3.0: re.compile(r"\b(?:thrice|triple)\b", re.IGNORECASE)}


def _number_types(node: dict[str, Any]) -> tuple[list[str], bool] | None:
    """(number types, null allowed) of a number node that grounding may narrow, else None."""
    if "enum" in node or "const" in node:
        return None
    types = node.get("type")
    listed = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    numeric = [t for t in listed if t in _NUMBER_TYPES]
    if not numeric or any(t not in (*_NUMBER_TYPES, "null") for t in listed):
        return None
    return numeric, "null" in listed


def _fits(x: float, node: dict[str, Any], integer: bool) -> bool:
    if (integer and x != int(x)) or not within_bounds(x, node):
        return False
    step = node.get("multipleOf")
    return not is_number(step) or step <= 0 or abs(round(x / step) * step - x) <= 1e-9 * max(1.0, abs(x))


def request_numbers(text: str) -> list[float]:
    """The numbers a request gives a grounded field: the ones it writes (`numbers_in`) and the ones it
    implies (`_IMPLIED`)."""
    return numbers_in(text) + [x for x, said in _IMPLIED.items() if said.search(text)]


def number_candidates(stated: list[float], node: dict[str, Any], integer: bool) -> list[int | float]:
    """The numbers a grounded number field may hold: the request's (`stated`, `request_numbers`) and the
    field's own words' and defaults; each within the node's type and bounds, in JSON's shortest form."""
    found = list(stated)
    for key in ("title", "description"):
        if isinstance(node.get(key), str):
            found += numbers_in(node[key])
    extra = [node.get("default")] + (node["examples"] if isinstance(node.get("examples"), list) else [])
    found += [float(v) for v in extra if is_number(v)]
    out: list[int | float] = []
    for x in found:
        if math.isfinite(x) and _fits(x, node, integer):
            v: int | float = int(x) if x == int(x) and abs(x) < 2**53 else x
            if v not in out:
                out.append(v)
    return sorted(out)


def _exactly(v: int | float, kind: str) -> dict[str, Any]:
    """The branch that writes `v`. llguidance writes an exact range in its shortest form only (`0`, never
    `0.0`), so an adapter trained on answers such as `"progress":0.0` that starts "0." would be pushed
    onto another candidate ("0.55"). A whole number in a `number` field is therefore the multiples of
    0.1 in [v, v + 0.1), which is `v` alone, written `v` or `v.0`."""
    if kind == "number" and isinstance(v, int) and abs(v) < 10**15:
        return {"type": "number", "minimum": v, "exclusiveMaximum": v + 0.1, "multipleOf": 0.1}
    return {"type": kind, "minimum": v, "maximum": v}


def _ground_number(node: dict[str, Any], stated: list[float]) -> dict[str, Any] | None:
    types = _number_types(node)
    if types is None:
        return None
    kind = "integer" if "number" not in types[0] else "number"
    values = number_candidates(stated, node, kind == "integer")
    if not values:
        return None
    branches = [_exactly(v, kind) for v in values]
    if types[1]:
        branches.append({"type": "null"})
    narrowed: dict[str, Any] = {k: node[k] for k in ("title", "description") if k in node}
    narrowed["anyOf"] = branches
    return narrowed


KINDS = ("strings", "numbers")  # what `ground` can narrow, in the order a label names them


def kinds(grounded: bool | str) -> tuple[str, ...]:
    """What a `grounded` setting grounds: True everything (`KINDS`), False nothing, or a comma list of
    `KINDS` ("strings": the grounding before numbers were, for side-by-side runs)."""
    if isinstance(grounded, bool):
        return KINDS if grounded else ()
    asked = {p.strip() for p in grounded.split(",") if p.strip()}
    unknown = asked - set(KINDS)
    if unknown:
        raise ValueError(f"cannot ground {', '.join(sorted(unknown))}: one of {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in asked)


def ground(schema: Any, text: str, max_words: int = MAX_WORDS, *, strings: bool = True,
           numbers: bool = True) -> Any:
    """`schema` (an answer schema: refs inlined) with every free-text string and number grounded in `text`
    (`strings`, `numbers`: which of the two).

    Returns `schema` itself when nothing changes (no free string or number, or a request with no words),
    so a caller can tell by identity that the plain grammar serves.
    """
    pattern = substring_pattern(text, max_words) if strings else None
    stated = request_numbers(text) if numbers else []
    longest = len(text.strip())
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if pattern is not None and _is_free_string(node):
            if isinstance(node.get("minLength"), int) and node["minLength"] > longest:
                return node  # no run of the request is long enough: leave it to the schema
            changed = True
            return {**node, "pattern": pattern}
        if numbers:
            narrowed = _ground_number(node, stated)
            if narrowed is not None:
                changed = True
                return narrowed
        out = {}
        for key, value in node.items():
            if key in ("properties", "$defs", "definitions", "patternProperties"):
                out[key] = {k: walk(v) for k, v in value.items()} if isinstance(value, dict) else value
            elif key in ("items", "additionalProperties", "prefixItems", "anyOf", "oneOf", "allOf"):
                out[key] = walk(value)
            else:
                out[key] = value
        return out

    result = walk(schema)
    return result if changed else schema
