"""Even out categorical values: a small teacher picks the first enum option and `true` most of the time.

After an instance validates, each enum-valued and boolean field is drawn again uniformly from what its
schema allows. The question is rendered from the balanced instance, so faithfulness is kept, and the
result is validated again (a draw that breaks a cross-field rule is undone).
"""

from __future__ import annotations

import random
from typing import Any

from ..schema import Schema
from .questions import SchemaNav, free_text


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


class ShapePool:
    """Array items and free-text strings of accepted instances, by schema path: what `vary_shape`
    draws from to lengthen a list or a string. A small teacher writes one list item, in two capitalised
    words, nearly every time; a student trained on that writes one item and looks for capitals to find
    where a value starts."""

    def __init__(self, schema: Schema, size: int = 256) -> None:
        self.nav = SchemaNav(schema)
        self.size = size
        self.items: dict[str, list[Any]] = {}
        self.strings: dict[str, list[str]] = {}

    def add(self, value: Any) -> None:
        """Book the lists' items and the free-text strings of an accepted instance."""
        def walk(v: Any, node: dict[str, Any], path: str) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(x, self.nav.child(node, k), f"{path}/{k}")
            elif isinstance(v, list):
                item = self.nav.items(node)
                for x in v:
                    self._keep(self.items, path, x)
                    walk(x, item, f"{path}/*")
            elif isinstance(v, str) and free_text(node):
                self._keep(self.strings, path, v)

        walk(value, self.nav.deref(self.nav.schema.raw), "")

    def _keep(self, where: dict[str, list[Any]], path: str, v: Any) -> None:
        got = where.setdefault(path, [])
        if v not in got:
            got.append(v)
            del got[:-self.size]


def vary_shape(value: Any, schema: Schema, rng: random.Random, pool: ShapePool, *, max_items: int = 4,
               lower: float = 0.5, extend: float = 0.0) -> Any:
    """A copy of `value` with list lengths drawn uniformly (up to `max_items` or the schema's maxItems,
    items added from `pool`), free-text strings lowercased at the start with chance `lower` and lengthened
    with the words of another pooled string with chance `extend`; `value` when the result is invalid."""
    nav = pool.nav

    def walk(v: Any, node: dict[str, Any], path: str) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, nav.child(node, k), f"{path}/{k}") for k, x in v.items()}
        if isinstance(v, list):
            item = nav.items(node)
            items = [walk(x, item, f"{path}/*") for x in v]
            low = int(node.get("minItems") or 0)
            high = node.get("maxItems")
            top = min(max_items, high) if isinstance(high, int) and not isinstance(high, bool) else max_items
            if top <= low or "prefixItems" in node:
                return items
            want = rng.randint(low, top)
            spare = [x for x in pool.items.get(path, []) if x not in items]
            rng.shuffle(spare)
            while len(items) < want and spare:
                items.insert(rng.randint(0, len(items)), spare.pop())
            return items[:max(want, low)]
        if isinstance(v, str) and free_text(node) and v:
            out = v
            others = [s for s in pool.strings.get(path, []) if s != v]
            if others and rng.random() < extend:
                more = rng.choice(others)
                out = f"{out} {more[:1].lower()}{more[1:]}"
                high = node.get("maxLength")
                if isinstance(high, int) and len(out) > high:
                    out = out[:high].rsplit(" ", 1)[0]
            if rng.random() < lower and out[1:2].islower():
                out = out[:1].lower() + out[1:]
            return out
        return v

    out = walk(value, nav.deref(schema.raw), "")
    return out if out != value and schema.is_valid(out) else value
