"""The schema the decoder sees: local `$ref`s inlined with bounded recursion, sizes capped, objects closed.

Every change here *narrows* the set of instances (a decoding-schema instance is an instance of the
original), so it only helps a small model stop in time; validation against the original still decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .schema import Schema

_DROP = ("$defs", "definitions", "$schema", "$id", "$comment", "examples", "default")


@dataclass(frozen=True)
class Limits:
    """Caps applied where the schema leaves room (a schema's own tighter bound always wins)."""

    max_string: int = 48
    max_items: int = 3
    max_depth: int = 2  # times one recursive $ref may unfold
    max_number: int = 1_000_000  # magnitude cap where a number has no bound on that side
    max_nodes: int = 4000  # inlining budget; past it refs stay refs


class _Cut(Exception):
    """A recursive branch cut at the depth limit."""


def decoding_schema(schema: Schema, limits: Limits | None = None) -> dict[str, Any]:
    """The narrowed schema handed to the grammar engine."""
    lim = limits or Limits()
    nodes = [0]

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            return node
        nodes[0] += 1
        ref = node.get("$ref")
        if isinstance(ref, str) and nodes[0] < lim.max_nodes:
            if stack.count(ref) >= lim.max_depth:
                raise _Cut(ref)
            try:
                target = schema.resolve(ref)
            except Exception:
                return node
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}} \
                if isinstance(target, dict) else target
            return walk(merged, stack + (ref,))
        out: dict[str, Any] = {k: v for k, v in node.items() if k not in _DROP}
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(node.get(key), list):
                kept = []
                for sub in node[key]:
                    try:
                        kept.append(walk(sub, stack))
                    except _Cut:
                        if key == "allOf":
                            raise
                if not kept:
                    raise _Cut(key)
                out[key] = kept
        for key in ("not", "if", "then", "else", "contains", "propertyNames", "additionalItems"):
            if isinstance(node.get(key), dict):
                out[key] = walk(node[key], stack)
        _object(node, out, stack, walk)
        _array(node, out, stack, walk, lim)
        _string(node, out, lim)
        _number(node, out, lim)
        return out

    try:
        root = walk(schema.raw, ())
    except _Cut:  # recursion that no optional branch can stop: let the engine see the original
        return schema.raw
    return root if isinstance(root, dict) else schema.raw


def _object(node: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...], walk: Any) -> None:
    props = node.get("properties")
    if isinstance(props, dict):
        required = set(node.get("required") or [])
        new: dict[str, Any] = {}
        for name, sub in props.items():
            try:
                new[name] = walk(sub, stack)
            except _Cut:
                if name in required:
                    raise
        out["properties"] = new
    if isinstance(node.get("additionalProperties"), dict):
        try:
            out["additionalProperties"] = walk(node["additionalProperties"], stack)
        except _Cut:
            out["additionalProperties"] = False
    if isinstance(node.get("patternProperties"), dict):
        out["patternProperties"] = {k: walk(v, stack) for k, v in node["patternProperties"].items()}
    # Close open objects: a small model otherwise invents keys (llguidance lets them in).
    is_object = node.get("type") == "object" or "properties" in node
    if is_object and "additionalProperties" not in node and "patternProperties" not in node \
            and "unevaluatedProperties" not in node:
        out.setdefault("properties", {})
        for name in node.get("required") or []:
            if isinstance(name, str):
                out["properties"].setdefault(name, {})
        if out["properties"]:
            out["additionalProperties"] = False


def _array(node: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...], walk: Any, lim: Limits) -> None:
    items = node.get("items")
    if isinstance(items, dict):
        try:
            out["items"] = walk(items, stack)
        except _Cut:
            if (node.get("minItems") or 0) > 0:
                raise
            out["items"] = {}
            out["maxItems"] = 0
            return
    elif isinstance(items, list):
        out["items"] = [walk(sub, stack) for sub in items]
    if isinstance(node.get("prefixItems"), list):
        out["prefixItems"] = [walk(sub, stack) for sub in node["prefixItems"]]
    is_array = node.get("type") == "array" or "items" in node
    if is_array:
        low = node.get("minItems") or 0
        high = node.get("maxItems")
        cap = max(low, lim.max_items)
        out["maxItems"] = min(high, cap) if isinstance(high, int) else cap


# Formats whose grammar lets a small model run on (fractional seconds without end): a bounded
# pattern that only matches strings of the format (the format checker still has the last word).
_D = r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_T = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
FORMAT_PATTERNS = {
    "date-time": rf"^{_D}T{_T}(\.[0-9]{{1,3}})?(Z|[+-](0[0-9]|1[0-2]):00)$",
    "date": rf"^{_D}$",
    "time": rf"^{_T}(Z|[+-](0[0-9]|1[0-2]):00)$",
    "email": r"^[a-z]{2,12}(\.[a-z]{2,12})?@[a-z]{2,12}\.(com|org|net|io)$",
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    "ipv4": r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$",
    "uri": r"^https://[a-z]{2,12}\.(com|org|net|io)(/[a-z0-9]{1,12}){0,3}$",
    "hostname": r"^[a-z]{2,12}(\.[a-z]{2,12}){1,2}$",
}


def _string(node: dict[str, Any], out: dict[str, Any], lim: Limits) -> None:
    fmt = node.get("format")
    if node.get("type") == "string" and fmt in FORMAT_PATTERNS and "pattern" not in node \
            and not any(k in node for k in ("enum", "const", "minLength", "maxLength")):
        out.pop("format", None)
        out["pattern"] = FORMAT_PATTERNS[str(fmt)]
        return
    if node.get("type") != "string" or any(k in node for k in ("enum", "const", "format", "pattern")):
        return
    low = node.get("minLength") or 0
    high = node.get("maxLength")
    cap = max(low, lim.max_string)
    out["maxLength"] = min(high, cap) if isinstance(high, int) else cap


def _number(node: dict[str, Any], out: dict[str, Any], lim: Limits) -> None:
    if node.get("type") not in ("integer", "number") or "enum" in node or "const" in node:
        return
    low, high = node.get("minimum"), node.get("maximum")
    if not isinstance(high, int | float) or isinstance(high, bool):
        if "exclusiveMaximum" not in node:
            base = low if isinstance(low, int | float) and not isinstance(low, bool) else 0
            out["maximum"] = max(base, 0) + lim.max_number
    if not isinstance(low, int | float) or isinstance(low, bool):
        if "exclusiveMinimum" not in node:
            base = high if isinstance(high, int | float) and not isinstance(high, bool) else 0
            out["minimum"] = min(base, 0) - lim.max_number
