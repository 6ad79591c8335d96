"""Plausible values: a small teacher writes `./135`, `add-active-task-` or `"Task completed"`.

Free-text strings (no enum, pattern or format) are tidied (stray punctuation at the ends cut, where the
schema's lengths still hold) and then judged: they must read as words, not debris or placeholders.
`implausible` names the first string that fails, and the pipeline rejects the candidate with that reason.
"""

from __future__ import annotations

import re
from typing import Any

from .questions import SchemaNav, facts, free_text
from .vocabulary import humanize

PLACEHOLDERS = {"string", "text", "example", "sample", "test", "lorem ipsum", "n/a", "na", "none", "null",
                "todo", "tbd", "xxx", "foo", "bar", "value", "name", "description", "summary", "task completed",
                "task", "unknown", "default", "untitled"}
_EDGE = " -,;:/(.&|_+*#"
_WORD = re.compile(r"[A-Za-z]+")


def _sub(decoding: Any, key: str | None) -> Any:
    """The decoding schema's node for a property (`key`) or the items (`None`) of `decoding`."""
    if not isinstance(decoding, dict):
        return None
    if key is None:
        return decoding.get("items")
    props = decoding.get("properties")
    return props.get(key) if isinstance(props, dict) else None


def tidy_strings(value: Any, nav: SchemaNav, node: Any = None, decoding: Any = None) -> Any:
    """Cut stray punctuation from both ends of free-text strings, and the last, cut-off word of a
    string that ran into its decoding cap (`decoding`: the narrowed schema it was written under),
    where `minLength` still holds."""
    node = nav.deref(nav.schema.raw) if node is None else node
    if isinstance(value, dict):
        return {k: tidy_strings(v, nav, nav.child(node, k), _sub(decoding, k)) for k, v in value.items()}
    if isinstance(value, list):
        item = nav.items(node)
        return [tidy_strings(v, nav, item, _sub(decoding, None)) for v in value]
    if isinstance(value, str) and free_text(node):
        cut = value
        cap = decoding.get("maxLength") if isinstance(decoding, dict) else None
        if isinstance(cap, int) and len(cut) >= cap and " " in cut.strip():
            cut = cut.rstrip().rsplit(" ", 1)[0]
        cut = cut.strip(_EDGE).strip()
        if cut.count('"') % 2 or cut.count("'") % 2:
            cut = cut.replace('"', "").strip()
        if len(cut) >= int(node.get("minLength") or 0) and cut:
            return cut
    return value


def string_problem(text: str, key: str, node: dict[str, Any]) -> str | None:
    """Why a free-text string does not read as a person's words, or None."""
    low = " ".join(text.lower().split())
    names = {humanize(key), key.lower()}
    if isinstance(node.get("title"), str):
        names.add(node["title"].lower())
    if low in PLACEHOLDERS or low in names:
        return "a placeholder"
    words = _WORD.findall(text)
    if not any(len(w) >= 3 for w in words):
        return "no word"
    letters = sum(c.isalpha() or c == " " for c in text)
    if letters < 0.75 * len(text):
        return "mostly symbols or digits"
    if re.search(r"([a-z])\1\1", low) or re.search(r"\b(\w+)( \1\b){2,}", low):
        return "repeated characters or words"
    if any(len(w) >= 4 and not re.search(r"[aeiouy]", w.lower()) for w in words):
        return "a word without vowels"
    if any(len(w) > 18 for w in words):
        return "a run-on word"
    if text[:1] in _EDGE or text[-1:] in _EDGE.replace(".", ""):
        return "cut off"
    return None


def implausible(value: Any, nav: SchemaNav) -> str | None:
    """`path: problem` for the first free-text string that is not plausible, or None."""
    for path, v, node, key in facts(value, nav):
        if isinstance(v, str) and free_text(node):
            problem = string_problem(v, key, node)
            if problem:
                return f"{path}: {problem} ({v[:40]!r})"
    return None
