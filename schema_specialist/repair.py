"""Small, safe repairs of a decoded instance guided by jsonschema's errors (bounds, sizes, extras).

Engines ignore some keywords (outlines-core: numeric bounds, multipleOf, uniqueItems). Rather than
throwing such a candidate away, nudge the offending value and validate again; what cannot be repaired
is rejected with its reason.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import jsonschema

from .schema import Schema


def _set(doc: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _fix(error: jsonschema.ValidationError) -> tuple[bool, Any]:
    """(changed, new value) for one error; the value is error.instance fixed where possible."""
    v, kw, arg = error.instance, error.validator, error.validator_value
    if isinstance(v, bool):
        return False, v
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") and isinstance(v, int | float):
        if isinstance(arg, bool):  # draft 4 boolean exclusive*: fixed through minimum/maximum
            return False, v
        step = 1 if isinstance(v, int) else max(abs(arg) * 1e-9, 1e-9)
        target = {"minimum": arg, "maximum": arg, "exclusiveMinimum": arg + step,
                  "exclusiveMaximum": arg - step}[str(kw)]
        return True, type(v)(target) if isinstance(v, int) and float(target).is_integer() else target
    if kw == "multipleOf" and isinstance(v, int | float) and arg:
        fixed = round(v / arg) * arg
        if isinstance(v, int) and float(fixed).is_integer():
            fixed = int(fixed)
        return fixed != v, fixed
    if kw == "type" and isinstance(v, float) and "integer" in (arg if isinstance(arg, list) else [arg]) \
            and math.isfinite(v):
        return True, int(round(v))
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
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        if schema.get("patternProperties"):
            return False, v
        return True, {k: x for k, x in v.items() if k in allowed}
    if kw == "maxProperties" and isinstance(v, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        required = [k for k in v if k in set(schema.get("required", []))]
        rest = [k for k in v if k not in required]
        keep = (required + rest)[:arg]
        return True, {k: v[k] for k in v if k in keep}
    return False, v


def repair(instance: Any, schema: Schema, rounds: int = 4) -> tuple[Any, list[str]]:
    """(possibly repaired instance, remaining error messages); repairs never touch a valid instance."""
    doc = instance
    errors = schema.errors(doc)
    for _ in range(rounds):
        if not errors:
            break
        changed = False
        work = copy.deepcopy(doc)
        for error in sorted(errors, key=lambda e: -len(e.absolute_path)):
            ok, value = _fix(error)
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
