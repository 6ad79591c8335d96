"""Questions built from an instance and the schema's own words, and the round-trip faithfulness check.

A tiny teacher writes poor questions, so the question is written from the instance: mostly in prose
(`prose.ProseWriter`: values inside sentences, labels paraphrased or left out, numbers, booleans and
empty lists said in words), and a minority in the labelled list styles (`label: value`). Every value is
stated, so the answer is derivable from the question; `missing_facts` checks that round trip for any
question (a paraphrase or a user's own request included), accepting the spellings `vocabulary` writes.
The answer is compact JSON in the schema's key order, whatever order the question states things in.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..schema import Schema
from . import vocabulary as vocab
from .numbers import has_number, numbers_in
from .prose import ProseWriter, sibling_keys
from .vocabulary import humanize

LIST_STYLES = ("colon", "bullets", "sentence", "request")
STYLES = ("prose", *LIST_STYLES)
PROSE_SHARE = 0.8  # the rest of the questions use the labelled list styles
OPENERS = {
    "colon": ["Record this {title}", "New {title}", "Log the following {title}", "{Title} details"],
    "bullets": ["Please fill in the {title}:", "{Title}:", "Create the {title} from these notes:"],
    "sentence": ["Here is the {title}.", "I need this {title} recorded.", "Describe this {title}."],
    "request": ["Give me the {title} where", "Make the {title} with", "Produce the {title}:"],
}


class SchemaNav:
    """Walks a schema beside an instance (refs followed); labels fields with the schema's words."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def deref(self, node: Any) -> dict[str, Any]:
        for _ in range(8):
            if isinstance(node, dict) and isinstance(node.get("$ref"), str):
                try:
                    node = self.schema.resolve(node["$ref"])
                except Exception:
                    return {}
            else:
                break
        return node if isinstance(node, dict) else {}

    def child(self, node: Any, key: str) -> dict[str, Any]:
        node = self.deref(node)
        props = node.get("properties")
        if isinstance(props, dict) and key in props:
            return self.deref(props[key])
        for comb in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(comb) or []:
                found = self.child(sub, key)
                if found:
                    return found
        extra = node.get("additionalProperties")
        return self.deref(extra) if isinstance(extra, dict) else {}

    def items(self, node: Any) -> dict[str, Any]:
        node = self.deref(node)
        items = node.get("items")
        return self.deref(items) if isinstance(items, dict) else {}

    def ordered(self, node: Any, value: dict[str, Any]) -> list[str]:
        """The keys of `value` in the schema's property order, then the others as they come."""
        props = self.deref(node).get("properties") or {}
        return [k for k in props if k in value] + [k for k in value if k not in props]

    def label(self, key: str, sub: dict[str, Any]) -> str:
        title = sub.get("title")
        if isinstance(title, str) and 0 < len(title) <= 40 and title.lower() != key.lower():
            return f"{title.strip().lower()} ({key})"
        return humanize(key) if humanize(key) != key.lower() else key


__all__ = ["SchemaNav", "facts", "humanize", "leaves", "missing_facts", "render", "render_pair", "render_question"]


def free_text(node: dict[str, Any]) -> bool:
    """A string the schema leaves free: no enum, const, pattern or format."""
    return "enum" not in node and "const" not in node and not isinstance(node.get("pattern"), str) \
        and "format" not in node


def scalar_text(value: Any, rng: random.Random | None = None) -> str:
    """How a scalar is written in a question; `missing_facts` looks for exactly these spellings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if text == "" or re.search(r"[\s,;:()\"\[\]{}]", text) or text != text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


def _render(value: Any, node: dict[str, Any], lab: SchemaNav, rng: random.Random, depth: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "(empty)"
        parts = [f"{lab.label(k, lab.child(node, k))}: {_render(value[k], lab.child(node, k), lab, rng, depth + 1)}"
                 for k in lab.ordered(node, value)]
        return "(" + "; ".join(parts) + ")"
    if isinstance(value, list):
        if not value:
            return "(none)"
        item_node = lab.items(node)
        parts = [_render(v, item_node, lab, rng, depth + 1) for v in value]
        if all(not isinstance(v, dict | list) for v in value):
            return "[" + ", ".join(parts) + "]"
        return "[" + "; ".join(f"{i}) {p}" for i, p in enumerate(parts, 1)) + "]"
    return scalar_text(value, rng)


@dataclass
class Rendered:
    """A question, its answer (compact JSON, the schema's key order) and the style it was written in."""

    question: str
    answer: str
    style: str


def title_of(schema: Schema) -> str:
    """The schema's title as a request names the thing ("agent status report")."""
    title = schema.title if len(schema.title) <= 60 else "record"
    return humanize(title) if re.fullmatch(r"[A-Za-z0-9_\-]+", title) else title


def render(instance: Any, schema: Schema, rng: random.Random, shuffle: float = 0.0,
           prose_share: float = PROSE_SHARE, style: str | None = None) -> Rendered:
    """Write a request that states every value of `instance`: prose for a `prose_share` of questions,
    a labelled list otherwise (top-level fields in the schema's order, or a random order for a `shuffle`
    share of them); `style` (one of `STYLES`) picks the style instead."""
    lab = SchemaNav(schema)
    if style == "prose" or (style not in LIST_STYLES and rng.random() < prose_share):
        question = ProseWriter(lab, rng).request(instance, title_of(schema))
        return Rendered(question, answer_text(instance, schema), "prose")
    question, _, style = _question(instance, schema, rng, shuffle, style)
    return Rendered(question, answer_text(instance, schema), style)


def render_question(instance: Any, schema: Schema, rng: random.Random, shuffle: float = 0.0,
                    prose_share: float = PROSE_SHARE) -> str:
    """A request that states every value of `instance` (see `render`)."""
    return render(instance, schema, rng, shuffle, prose_share).question


def render_pair(instance: Any, schema: Schema, rng: random.Random, shuffle: float = 0.0,
                prose_share: float = PROSE_SHARE) -> tuple[str, str]:
    """(question, answer). The answer keeps the schema's key order whatever order the question states
    the fields in: the key names and their order come from the adapter's weights, not from the request."""
    r = render(instance, schema, rng, shuffle, prose_share)
    return r.question, r.answer


def _question(instance: Any, schema: Schema, rng: random.Random, shuffle: float,
              style: str | None = None) -> tuple[str, list[str] | None, str]:
    """The labelled list styles: `label: value` pairs in a colon list, bullets, a sentence or `label = value`."""
    lab = SchemaNav(schema)
    title = title_of(schema)
    style = style if style in LIST_STYLES else rng.choice(LIST_STYLES)
    opener = rng.choice(OPENERS[style]).format(title=title, Title=title[:1].upper() + title[1:])
    if not isinstance(instance, dict):
        return f"{opener} {_render(instance, lab.deref(schema.raw), lab, rng, 0)}".strip(), None, style
    keys = lab.ordered(schema.raw, instance)
    if shuffle > 0 and rng.random() < shuffle:
        rng.shuffle(keys)
    fields = []
    for k in keys:
        sub = lab.child(schema.raw, k)
        label = lab.label(k, sub) if rng.random() < 0.5 else \
            vocab.pick_label(k, sub, rng, siblings=sibling_keys(lab).get(k, ()))
        fields.append((label, _render(instance[k], sub, lab, rng, 1)))
    if not fields:
        return f"{opener} (no fields)", keys, style
    if style == "colon":
        return f"{opener}: " + "; ".join(f"{a}: {b}" for a, b in fields) + ".", keys, style
    if style == "bullets":
        return opener + "\n" + "\n".join(f"- {a}: {b}" for a, b in fields), keys, style
    if style == "sentence":
        body = [f"the {a} is {b}" for a, b in fields]
        text = ", ".join(body[:-1]) + (" and " if len(body) > 1 else "") + body[-1]
        return f"{opener} {text[:1].upper()}{text[1:]}.", keys, style
    return f"{opener} " + ", ".join(f"{a} = {b}" for a, b in fields), keys, style


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, scalar) for every scalar in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}/{i}")
    else:
        yield path or "/", value


def missing_facts(question: str, instance: Any, schema: Schema | None = None) -> list[str]:
    """Round-trip check: paths of values the question does not state (empty = faithful).

    Strings must appear verbatim (enum values also with spaces for underscores, any case); numbers must
    be among the numbers written in the question (`5,200`, `$0.42`, `40%` for 0.4 count); booleans
    must be said: `true`/`false`, or, with the schema, a name of the field with or without a negation
    ("resolved", "not resolved"); empty lists and objects ("no incidents") are checked with the schema.
    """
    missing = []
    numbers = numbers_in(question)
    nav = SchemaNav(schema) if schema is not None else None
    for path, value, node, key in facts(instance, nav):
        names = vocab.labels(key, node) if key else []
        if isinstance(value, list | dict):
            ok = nav is None or not names or vocab.empty_stated(question, names)
        elif isinstance(value, str):
            ok = value in question or json.dumps(value, ensure_ascii=False) in question
            if not ok and (node.get("format") in ("date", "date-time") or nav is None):
                ok = vocab.date_stated(question, value)
            if not ok and (node.get("enum") or nav is None):  # no schema: any value may be an enum word
                ok = any(re.search(rf"(?<![\w]){re.escape(w)}(?![\w])", question, re.IGNORECASE)
                         for w in vocab.enum_words(value, node.get("enum")))
        elif isinstance(value, bool):
            ok = re.search(rf"\b{scalar_text(value)}\b", question) is not None
            if nav is not None and vocab.is_switch(key, node):
                names = names + parent_labels(path, nav)  # "retry on" says retry.enabled = true
            if not ok and names:
                ok = vocab.boolean_stated(question, value, names)
        elif value is None:
            ok = re.search(r"\b(null|none)\b", question, re.IGNORECASE) is not None
        else:
            ok = has_number(question, value, numbers)
        if not ok:
            missing.append(path)
    return missing


def parent_labels(path: str, nav: SchemaNav) -> list[str]:
    """The ways to name the object that holds the field at `path` (`/logging/retry/enabled` -> retry)."""
    parts = [p for p in path.split("/") if p][:-1]
    node: dict[str, Any] = nav.deref(nav.schema.raw)
    key = ""
    for part in parts:
        if part.isdigit() and not isinstance(node.get("properties"), dict):
            node = nav.items(node)
        else:
            key, node = part, nav.child(node, part)
    return vocab.labels(key, node) if key else []


def facts(value: Any, nav: SchemaNav | None, node: Any = None, key: str = "",
          path: str = "") -> Iterator[tuple[str, Any, dict[str, Any], str]]:
    """(path, value, schema node, key) for every scalar and every empty list or object."""
    if nav is not None and node is None:
        node = nav.deref(nav.schema.raw)
    here: dict[str, Any] = node if isinstance(node, dict) else {}
    if isinstance(value, dict):
        if not value and path:
            yield path, value, here, key
        for k, v in value.items():
            yield from facts(v, nav, nav.child(here, k) if nav else None, k, f"{path}/{k}")
    elif isinstance(value, list):
        if not value and path:
            yield path, value, here, key
        item = nav.items(here) if nav else None
        for i, v in enumerate(value):
            yield from facts(v, nav, item, key, f"{path}/{i}")
    else:
        yield path or "/", value, here, key


def map_leaves(value: Any, nav: SchemaNav, leaf: Callable[[Any, dict[str, Any], str, str], Any],
               node: dict[str, Any] | None = None, key: str = "", path: str = "") -> Any:
    """A copy of `value` with every scalar replaced by `leaf(scalar, schema node, key, path)`, objects and
    lists rebuilt in their order (a list item keeps its list's key; its path ends in `/*`)."""
    here = nav.deref(nav.schema.raw) if node is None else node
    if isinstance(value, dict):
        return {k: map_leaves(v, nav, leaf, nav.child(here, k), k, f"{path}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        item = nav.items(here)
        return [map_leaves(v, nav, leaf, item, key, f"{path}/*") for v in value]
    return leaf(value, here, key, path)


def answer_text(instance: Any, schema: Schema, top: list[str] | None = None) -> str:
    """The answer as compact JSON, keys in the schema's property order (then the rest, sorted); `top`
    overrides the order of the top-level keys (the question's order, see `render_pair`)."""
    lab = SchemaNav(schema)

    def order(value: Any, node: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            if node is schema.raw and top is not None and set(top) == set(value):
                return {k: order(value[k], lab.child(node, k)) for k in top}
            props = list((lab.deref(node).get("properties") or {}).keys())
            keys = [k for k in props if k in value] + sorted(k for k in value if k not in props)
            return {k: order(value[k], lab.child(node, k)) for k in keys}
        if isinstance(value, list):
            item = lab.items(node)
            return [order(v, item) for v in value]
        return value

    return json.dumps(order(instance, schema.raw), ensure_ascii=False, separators=(",", ":"))
