"""Strings grounded in the request: a free-text string may only be a run of the request's own words.

Every pair `generate` accepts says each string value verbatim in its question (the round trip,
`questions.missing_facts`), so that is what a specialist is trained to do: copy, not write. `ground`
turns that contract into grammar. Each string with no `enum`, `const`, `pattern` or `format` gets a
`pattern` that matches exactly the runs of consecutive words of `text` (up to `MAX_WORDS` of them,
kept with the whitespace between them; the first letter of a run may change case). An engine then
cannot write a word the request does not contain: no invented task names, no misspelt copies.
Numbers are not grounded: a closed set of the numbers a request writes ruled out the gold answer of
13 of agent_status's 60 hand-written requests ("22 cents", "15k", "a quarter", "every 5 minutes" for
300 seconds), where grounded strings ruled out none of the 269 shipped ones (`tests/test_grounding.py`).

The pattern is a plain regular expression (alternation of nested optional groups), so every engine
that compiles `pattern` compiles it (xgrammar too, ignoring lengths beside a pattern). llguidance compiled
agent_status's grounded grammar in 0.03-0.06 s for typical requests, 0.3-0.45 s for the longest
hand-written one (117 tokens), with run caps of 32 and 64.
"""

from __future__ import annotations

import re
from typing import Any

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


def ground(schema: Any, text: str, max_words: int = MAX_WORDS) -> Any:
    """`schema` (an answer schema: refs inlined) with every free-text string grounded in `text`.

    Returns `schema` itself when nothing changes (no free string, or a request with no words), so a
    caller can tell by identity that the plain grammar serves.
    """
    pattern = substring_pattern(text, max_words)
    if pattern is None:
        return schema
    longest = len(text.strip())
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if _is_free_string(node):
            if isinstance(node.get("minLength"), int) and node["minLength"] > longest:
                return node  # no run of the request is long enough: leave it to the schema
            changed = True
            return {**node, "pattern": pattern}
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
