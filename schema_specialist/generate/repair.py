"""Small, safe repairs of a decoded instance guided by jsonschema's errors; the result is validated again.

Engines ignore or cannot compile some keywords (outlines-core: numeric bounds; llguidance: uniqueItems,
dependencies; every engine: `not`), and `grammar.simplify` takes out what an engine rejects. Rather
than throwing such a candidate away, nudge the offending value: clamp bounds, round to `multipleOf`,
truncate, dedupe, drop extra keys, set `const`/`enum` values, add missing required properties and
array items with a minimal valid value drawn from the subschema (its `default`/`examples` when they
fit), follow the closest `anyOf`/`oneOf` branch. What cannot be repaired (a `pattern`, a `not`) is
rejected with its reason. Repairs never touch a valid instance, and only a fully valid result counts.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import jsonschema

from ..bounds import number_bounds
from ..schema import Schema

# A valid example per format, used when the decoded string fails its format check.
FORMAT_EXAMPLES: dict[str, str] = {
    "date-time": "2024-05-17T09:30:00Z", "date": "2024-05-17", "time": "09:30:00Z", "duration": "P3D",
    "email": "alex@example.com", "idn-email": "alex@example.com", "hostname": "example.com",
    "idn-hostname": "example.com", "ipv4": "192.168.1.20", "ipv6": "2001:db8::1",
    "uri": "https://example.com/item", "uri-reference": "https://example.com/item", "iri": "https://example.com/item",
    "iri-reference": "https://example.com/item", "uri-template": "https://example.com/{id}",
    "uuid": "3f2b8c1e-6a4d-4e2f-9b7a-1c2d3e4f5a6b", "json-pointer": "/items/0", "relative-json-pointer": "0/name",
    "regex": "^[a-z]+$",
}
_MAX_DEPTH = 8


class _Minimal:
    """Minimal valid values for subschemas of one schema (refs resolved against its root).

    Without `invent`, only values the schema itself determines are produced (`const`, a one-value
    `enum`, `default`, `examples`, null, empty or determined containers): a repair does not make up facts.
    """

    def __init__(self, schema: Schema, invent: bool = False) -> None:
        self.schema = schema
        self.invent = invent

    def valid(self, value: Any, node: Any) -> bool:
        try:
            return not any(True for _ in self.schema.validator.evolve(schema=node).iter_errors(value))
        except Exception:
            return False

    def deref(self, node: Any) -> Any:
        for _ in range(_MAX_DEPTH):
            if isinstance(node, dict) and isinstance(node.get("$ref"), str):
                try:
                    target = self.schema.resolve(node["$ref"])
                except Exception:
                    return node
                rest = {k: v for k, v in node.items() if k != "$ref"}
                node = {**target, **rest} if isinstance(target, dict) and self.schema.draft not in \
                    ("draft4", "draft6", "draft7") else target
            else:
                break
        return node

    def value(self, node: Any, depth: int = 0) -> tuple[bool, Any]:
        """(found, value): a small value that validates against `node`."""
        raw = node
        node = self.deref(node)
        if node is True or node == {}:
            return True, ("example" if self.invent else None)
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            return False, None
        for key in ("const", "enum", "default", "examples"):
            if key not in node or (key == "enum" and not self.invent and len(node[key]) != 1):
                continue
            options = [node[key]] if key in ("const", "default") else node[key]
            for option in options if isinstance(options, list) else []:
                if self.valid(option, raw):
                    return True, copy.deepcopy(option)
        for key in ("anyOf", "oneOf"):
            for sub in node.get(key) or []:
                rest = {k: x for k, x in node.items() if k not in ("anyOf", "oneOf")}
                ok, v = self.value({**rest, **self.deref(sub)} if isinstance(self.deref(sub), dict) else sub, depth + 1)
                if ok and self.valid(v, raw):
                    return True, v
        if isinstance(node.get("allOf"), list):
            from .grammar import merge

            merged: Any = {k: v for k, v in node.items() if k != "allOf"}
            for sub in node["allOf"]:
                merged, _ = merge(merged, self.deref(sub))
            ok, v = self.value(merged, depth + 1)
            return (True, v) if ok and self.valid(v, raw) else (False, None)
        for candidate in self._candidates(node, depth):
            if self.valid(candidate, raw):
                return True, candidate
        return False, None

    def _candidates(self, node: dict[str, Any], depth: int) -> list[Any]:
        types = node.get("type")
        order = [types] if isinstance(types, str) else list(types) if isinstance(types, list) else []
        if not order:
            order = ["object"] if "properties" in node or "required" in node else \
                ["array"] if "items" in node or "prefixItems" in node else ["string", "integer", "boolean", "null"]
        out: list[Any] = []
        for t in order:
            if t == "string" and self.invent:
                out += self._strings(node)
            elif t in ("integer", "number") and self.invent:
                out += self._numbers(node, t == "integer")
            elif t == "boolean" and self.invent:
                out += [False, True]
            elif t == "null":
                out.append(None)
            elif t == "object":
                out.append(self._object(node, depth))
            elif t == "array":
                out.append(self._array(node, depth))
        return out

    @staticmethod
    def _strings(node: dict[str, Any]) -> list[str]:
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in FORMAT_EXAMPLES:
            return [FORMAT_EXAMPLES[fmt]]
        low = node.get("minLength") or 0
        high = node.get("maxLength")
        text = "example"
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if isinstance(high, int):
            text = text[:high]
        return [text, "a" * max(low, 1)]

    @staticmethod
    def _numbers(node: dict[str, Any], integer: bool) -> list[Any]:
        lo, hi, lo_x, hi_x = number_bounds(node)
        value: float = 0
        if lo is not None:
            value = max(value, (math.floor(lo) + 1 if integer else lo + 1) if lo_x else lo)
        if hi is not None:
            value = min(value, hi)
            if hi_x and value >= hi:
                value = math.ceil(hi) - 1 if integer else hi - 1
        step = node.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            value = math.ceil(value / step) * step
        if integer or float(value).is_integer():
            return [int(value)]
        return [value]

    def _object(self, node: dict[str, Any], depth: int) -> Any:
        props = _dict(node, "properties")
        out: dict[str, Any] = {}
        names = [r for r in node.get("required") or [] if isinstance(r, str)]
        extra = [k for k in props if k not in names][: max(0, (node.get("minProperties") or 0) - len(names))]
        for name in names + extra:
            sub = props.get(name, node.get("additionalProperties", True))
            ok, v = self.value(sub if sub is not None else True, depth + 1)
            if not ok:
                return None
            out[name] = v
        return out

    def _array(self, node: dict[str, Any], depth: int) -> Any:
        low = node.get("minItems") or 0
        given = node.get("prefixItems") or node.get("items")
        prefix: list[Any] = given if isinstance(given, list) else []
        items = node.get("items") if isinstance(node.get("items"), dict | bool) else \
            node.get("additionalItems", True)
        out: list[Any] = []
        for i in range(low):
            sub = prefix[i] if i < len(prefix) else items
            ok, v = self.value(sub, depth + 1)
            if not ok:
                return None
            if node.get("uniqueItems") and v in out:
                return None
            out.append(v)
        return out


def _dict(node: dict[str, Any], key: str) -> dict[str, Any]:
    value = node.get(key)
    return value if isinstance(value, dict) else {}


def _set(doc: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _fix(error: jsonschema.ValidationError, minimal: _Minimal) -> tuple[bool, Any]:
    """(changed, new value) for one error; the value is error.instance fixed where possible."""
    v, kw, arg = error.instance, error.validator, error.validator_value
    node = error.schema if isinstance(error.schema, dict) else {}
    if kw == "const":
        return v != arg, copy.deepcopy(arg)
    if kw == "enum" and isinstance(arg, list) and arg:
        if isinstance(v, str):
            for option in arg:
                if isinstance(option, str) and option.lower() == v.lower():
                    return True, option
        return True, copy.deepcopy(arg[0])
    if kw == "required" and isinstance(v, dict) and isinstance(arg, list):
        fixed = dict(v)
        for name in arg:
            if name in fixed:
                continue
            ok, value = minimal.value(_property_schema(error, name))
            if not ok:
                return False, v
            fixed[name] = value
        return fixed != v, fixed
    if kw in ("dependentRequired", "dependencies") and isinstance(v, dict) and isinstance(arg, dict):
        grown = dict(v)
        defined = _dict(node, "properties")
        for key, need in arg.items():
            if key in grown and isinstance(need, list):
                for name in need:
                    if name not in grown:
                        ok, value = minimal.value(defined.get(name, True))
                        if not ok:
                            return False, v
                        grown[name] = value
        return grown != v, grown
    if kw == "minItems" and isinstance(v, list) and isinstance(arg, int):
        items = node.get("items") if isinstance(node.get("items"), dict | bool) else True
        longer = list(v)
        while len(longer) < arg:
            ok, value = minimal.value(items)
            if not ok or (node.get("uniqueItems") and value in longer):
                return False, v
            longer.append(value)
        return True, longer
    if kw == "minLength" and isinstance(v, str) and isinstance(arg, int):
        return True, v + "x" * (arg - len(v))
    if kw == "minProperties" and isinstance(v, dict) and isinstance(arg, int):
        bigger = dict(v)
        known = _dict(node, "properties")
        for name, sub in known.items():
            if len(bigger) >= arg:
                break
            if name not in bigger:
                ok, value = minimal.value(sub)
                if ok:
                    bigger[name] = value
        return len(bigger) > len(v), bigger
    if kw == "format" and isinstance(v, str) and arg in FORMAT_EXAMPLES:
        return v != FORMAT_EXAMPLES[arg], FORMAT_EXAMPLES[arg]
    if isinstance(v, bool):
        return _fix_type(error, minimal) if kw == "type" else (False, v)
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") and isinstance(v, int | float):
        if isinstance(arg, bool):  # draft 4 boolean exclusive*: fixed through minimum/maximum
            return False, v
        step = 1 if isinstance(v, int) else max(abs(arg) * 1e-9, 1e-9)
        if kw == "minimum" and node.get("exclusiveMinimum") is True:
            kw = "exclusiveMinimum"
        if kw == "maximum" and node.get("exclusiveMaximum") is True:
            kw = "exclusiveMaximum"
        target = {"minimum": arg, "maximum": arg, "exclusiveMinimum": arg + step,
                  "exclusiveMaximum": arg - step}[str(kw)]
        return True, type(v)(target) if isinstance(v, int) and float(target).is_integer() else target
    if kw == "multipleOf" and isinstance(v, int | float) and arg:
        rounded = round(v / arg) * arg
        if isinstance(v, int) and float(rounded).is_integer():
            rounded = int(rounded)
        return rounded != v, rounded
    if kw == "type":
        return _fix_type(error, minimal)
    if kw == "maxLength" and isinstance(v, str):
        return True, v[:arg]
    if kw == "maxItems" and isinstance(v, list):
        return True, v[:arg]
    if kw == "uniqueItems" and arg and isinstance(v, list):
        out: list[Any] = []
        for item in v:
            if item not in out:
                out.append(item)
        return len(out) != len(v), out
    if kw in ("additionalProperties", "unevaluatedProperties") and arg is False and isinstance(v, dict):
        allowed = set(node.get("properties") or {})
        patterns = [p for p in node.get("patternProperties") or {} if isinstance(p, str)]
        return True, {k: x for k, x in v.items() if k in allowed or any(_search(p, k) for p in patterns)}
    if kw == "maxProperties" and isinstance(v, dict):
        required = [k for k in v if k in set(node.get("required", []))]
        rest = [k for k in v if k not in required]
        keep = (required + rest)[:arg]
        return True, {k: v[k] for k in v if k in keep}
    return False, v


def _property_schema(error: jsonschema.ValidationError, name: str) -> Any:
    """The subschema of property `name` where `error` arose: its own schema, else an enclosing one
    (a `required` inside an anyOf branch names a property the object around it defines)."""
    node: jsonschema.ValidationError | None = error
    while node is not None:
        schema = node.schema if isinstance(node.schema, dict) else {}
        props = _dict(schema, "properties")
        if name in props:
            return props[name]
        if node.parent is None or list(node.parent.absolute_path) != list(error.absolute_path):
            break
        node = node.parent
    schema = error.schema if isinstance(error.schema, dict) else {}
    extra = schema.get("additionalProperties", True)
    return True if extra is None else extra


def _fix_type(error: jsonschema.ValidationError, minimal: _Minimal) -> tuple[bool, Any]:
    v, arg = error.instance, error.validator_value
    allowed = arg if isinstance(arg, list) else [arg]
    if isinstance(v, float) and "integer" in allowed and math.isfinite(v):
        return True, int(round(v))
    if isinstance(v, str) and ("integer" in allowed or "number" in allowed):
        try:
            number = float(v.strip())
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return True, int(number) if number.is_integer() and "integer" in allowed else number
    if "string" in allowed and isinstance(v, int | float) and not isinstance(v, bool):
        return True, str(v)
    if "array" in allowed and not isinstance(v, list) and v is not None:
        return True, [v]
    ok, value = minimal.value(error.schema)
    return (True, value) if ok else (False, v)


def _search(pattern: str, key: str) -> bool:
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return False


def _candidate_errors(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """Errors to try fixing, deepest first; an anyOf/oneOf miss brings its branches' errors, closest
    branch first (the instance's type matches, then fewest errors)."""
    out: list[jsonschema.ValidationError] = []
    for error in sorted(errors, key=lambda e: -len(e.absolute_path)):
        if error.validator in ("anyOf", "oneOf") and error.context:
            branches: dict[Any, list[jsonschema.ValidationError]] = {}
            for sub in error.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)

            def distance(errs: list[jsonschema.ValidationError]) -> tuple[bool, int]:
                wrong_type = any(e.validator == "type" and not e.relative_path for e in errs)
                return wrong_type, len(errs)

            for branch in sorted(branches.values(), key=distance):
                out.extend(_candidate_errors(branch))
        out.append(error)
    return out


def repair(instance: Any, schema: Schema, rounds: int = 12) -> tuple[Any, list[str]]:
    """(possibly repaired instance, remaining error messages); repairs never touch a valid instance."""
    doc = instance
    errors = schema.errors(doc)
    minimal = _Minimal(schema)
    for _ in range(rounds):
        if not errors:
            break
        changed = False
        work = copy.deepcopy(doc)
        for error in _candidate_errors(errors):
            ok, value = _fix(error, minimal)
            if ok:
                try:
                    work = _set(work, list(error.absolute_path), value)
                    changed = True
                except (KeyError, IndexError, TypeError):
                    continue
                break  # paths may shift: one fix a round, then validate again
        if not changed:
            break
        doc = work
        errors = schema.errors(doc)
    return doc, [describe(e) for e in errors]


def describe(error: jsonschema.ValidationError) -> str:
    """A short reason: `<keyword> at <path>: <message>`."""
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    msg = " ".join(error.message.split())
    return f"{error.validator} at {where}: {msg[:120]}"
