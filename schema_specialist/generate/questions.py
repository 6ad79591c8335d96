"""Questions built from an instance and the schema's own words, and the round-trip faithfulness check.

A tiny teacher writes poor questions, so the question is rendered from the instance: every value it
holds is stated, labelled with the schema's title for the field (or its humanised key). The answer is
therefore derivable from the question; `missing_facts` checks that round trip for any question,
a paraphrase included.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

from ..schema import Schema

STYLES = ("colon", "bullets", "sentence", "request")
OPENERS = {
    "colon": ["Record this {title}", "New {title}", "Log the following {title}", "{Title} details"],
    "bullets": ["Please fill in the {title}:", "{Title}:", "Create the {title} from these notes:"],
    "sentence": ["Here is the {title}.", "I need this {title} recorded.", "Describe this {title}."],
    "request": ["Give me the {title} where", "Make the {title} with", "Produce the {title}:"],
}


def humanize(key: str) -> str:
    """`agentId` / `agent_id` / `agent-id` -> `agent id`."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    text = re.sub(r"[_\-.]+", " ", text).strip()
    return text.lower() or key


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


def render_question(instance: Any, schema: Schema, rng: random.Random, shuffle: float = 0.0) -> str:
    """A natural-language request that states every value of `instance` (top-level fields in the
    schema's order, or in a random order for a `shuffle` share of questions)."""
    return _question(instance, schema, rng, shuffle)[0]


def render_pair(instance: Any, schema: Schema, rng: random.Random, shuffle: float = 0.0) -> tuple[str, str]:
    """(question, answer): the answer's top-level keys come in the order the question states them.

    Questions state fields in the schema's order, or (a `shuffle` share of them) in a random order; an
    answer that follows the question's order is a monotone copy, which a small model learns far more
    reliably than a reordering. Key order means nothing to a JSON Schema validator.
    """
    question, keys = _question(instance, schema, rng, shuffle)
    return question, answer_text(instance, schema, keys)


def _question(instance: Any, schema: Schema, rng: random.Random,
              shuffle: float) -> tuple[str, list[str] | None]:
    lab = SchemaNav(schema)
    title = schema.title if len(schema.title) <= 60 else "record"
    title = humanize(title) if re.fullmatch(r"[A-Za-z0-9_\-]+", title) else title
    style = rng.choice(STYLES)
    opener = rng.choice(OPENERS[style]).format(title=title, Title=title[:1].upper() + title[1:])
    if not isinstance(instance, dict):
        return f"{opener} {_render(instance, lab.deref(schema.raw), lab, rng, 0)}".strip(), None
    keys = lab.ordered(schema.raw, instance)
    if shuffle > 0 and rng.random() < shuffle:
        rng.shuffle(keys)
    fields = []
    for k in keys:
        sub = lab.child(schema.raw, k)
        label = lab.label(k, sub)
        fields.append((label, _render(instance[k], sub, lab, rng, 1)))
    if not fields:
        return f"{opener} (no fields)", keys
    if style == "colon":
        return f"{opener}: " + "; ".join(f"{a}: {b}" for a, b in fields) + ".", keys
    if style == "bullets":
        return opener + "\n" + "\n".join(f"- {a}: {b}" for a, b in fields), keys
    if style == "sentence":
        body = [f"the {a} is {b}" for a, b in fields]
        text = ", ".join(body[:-1]) + (" and " if len(body) > 1 else "") + body[-1]
        return f"{opener} {text[:1].upper()}{text[1:]}.", keys
    return f"{opener} " + ", ".join(f"{a} = {b}" for a, b in fields), keys


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


def missing_facts(question: str, instance: Any) -> list[str]:
    """Round-trip check: paths of scalars whose value the question does not state (empty = faithful)."""
    missing = []
    for path, value in leaves(instance):
        if isinstance(value, str):
            ok = value in question or json.dumps(value, ensure_ascii=False) in question
        elif isinstance(value, bool) or value is None:
            ok = re.search(rf"\b{scalar_text(value)}\b", question) is not None
        else:
            ok = re.search(rf"(?<![\w.]){re.escape(json.dumps(value))}(?![\w]|\.\d)", question) is not None
        if not ok:
            missing.append(path)
    return missing


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
