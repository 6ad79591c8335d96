"""Even out categorical values: a small teacher picks the first enum option and `true` most of the time.

After an instance validates, each enum-valued and boolean field is drawn again uniformly from what its
schema allows. The question is rendered from the balanced instance, so faithfulness is kept, and the
result is validated again (a draw that breaks a cross-field rule is undone).
"""

from __future__ import annotations

import random
from typing import Any

from ..schema import Schema
from .questions import SchemaNav


def rebalance(value: Any, schema: Schema, rng: random.Random) -> Any:
    """A copy of `value` with enum and boolean leaves drawn uniformly; `value` itself when that is invalid."""
    nav = SchemaNav(schema)
    out = _walk(value, nav.deref(schema.raw), nav, rng)
    return out if out != value and schema.is_valid(out) else value


def _walk(value: Any, node: dict[str, Any], nav: SchemaNav, rng: random.Random) -> Any:
    enum = node.get("enum")
    if isinstance(enum, list) and enum and value in enum and not isinstance(value, dict | list):
        return rng.choice(enum)
    if isinstance(value, bool) and node.get("type") == "boolean":
        return rng.random() < 0.5
    if isinstance(value, dict):
        return {k: _walk(v, nav.child(node, k), nav, rng) for k, v in value.items()}
    if isinstance(value, list):
        item = nav.items(node)
        return [_walk(v, item, nav, rng) for v in value]
    return value


def drop_optional(value: Any, schema: Schema, rng: random.Random, share: float) -> Any:
    """A copy of `value` without some optional properties (each left out with probability `share`), so
    requests that do not mention a field teach the student to leave it out; `value` when that is invalid."""
    if share <= 0:
        return value
    nav = SchemaNav(schema)

    def walk(v: Any, node: dict[str, Any]) -> Any:
        if isinstance(v, dict):
            required = set(node.get("required") or [])
            return {k: walk(x, nav.child(node, k)) for k, x in v.items()
                    if k in required or rng.random() >= share}
        if isinstance(v, list):
            item = nav.items(node)
            return [walk(x, item) for x in v]
        return v

    out = walk(value, nav.deref(schema.raw))
    return out if out != value and schema.is_valid(out) else value
