"""Even out categorical values: a small teacher picks the first enum option and `true` most of the time.

After an instance validates, each enum-valued and boolean field is drawn again uniformly from what its
schema allows. The question is rendered from the balanced instance, so faithfulness is kept, and the
result is validated again (a draw that breaks a cross-field rule is undone).
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from typing import Any

from ..bounds import number_bounds, within_bounds
from ..schema import Schema
from . import vocabulary as vocab
from .questions import SchemaNav, free_text, map_leaves


def rebalance(value: Any, schema: Schema, rng: random.Random) -> Any:
    """A copy of `value` with enum and boolean leaves drawn uniformly; `value` itself when that is invalid."""
    def leaf(v: Any, node: dict[str, Any], key: str, path: str) -> Any:
        enum = node.get("enum")
        if isinstance(enum, list) and enum and v in enum:
            return rng.choice(enum)
        if isinstance(v, bool) and node.get("type") == "boolean":
            return rng.random() < 0.5
        return v

    out = map_leaves(value, SchemaNav(schema), leaf)
    return out if out != value and schema.is_valid(out) else value


def drop_optional(value: Any, schema: Schema, rng: random.Random, share: float) -> Any:
    """A copy of `value` without some optional properties (each left out with probability `share`), so
    requests that do not mention a field teach the student to leave it out; `value` when that is invalid
    or empty. An optional object left empty goes too: a request that says nothing of it has no `{}` to ask for."""
    if share <= 0:
        return value
    nav = SchemaNav(schema)

    def walk(v: Any, node: dict[str, Any]) -> Any:
        if isinstance(v, dict):
            required = set(node.get("required") or [])
            kept = {k: walk(x, nav.child(node, k)) for k, x in v.items()
                    if k in required or rng.random() >= share}
            return {k: x for k, x in kept.items()
                    if k in required or x != {} or not nav.child(node, k).get("properties")}
        if isinstance(v, list):
            item = nav.items(node)
            return [walk(x, item) for x in v]
        return v

    out = walk(value, nav.deref(schema.raw))
    if out == {}:  # a request that sets nothing is no request
        return value
    return out if out != value and schema.is_valid(out) else value


class FieldPool:
    """The values optional properties took in accepted instances, by object path and key: what
    `fill_optional` adds to an instance that leaves them out. A small teacher writes an instance of a
    schema with few required fields in one or two fields, so a student trained only on those never
    sees a request that sets the whole object, and closes its braces in the wrong place on one."""

    def __init__(self, schema: Schema, size: int = 128) -> None:
        self.nav = SchemaNav(schema)
        self.size = size
        self.values: dict[tuple[str, str], list[Any]] = {}

    def add(self, value: Any) -> None:
        """Book the optional properties of an accepted instance (lists' items are left as they are)."""
        def walk(v: Any, node: dict[str, Any], path: str) -> None:
            if not isinstance(v, dict):
                return
            required = set(node.get("required") or [])
            for k, x in v.items():
                child = self.nav.child(node, k)
                if k not in required and x != {}:
                    keep(self.values, (path, k), x, self.size)
                walk(x, child, f"{path}/{k}")

        walk(value, self.nav.deref(self.nav.schema.raw), "")


def fill_optional(value: Any, schema: Schema, rng: random.Random, pool: FieldPool, share: float) -> Any:
    """A copy of `value` where each optional property it leaves out is added, with chance `share`, as
    another accepted instance had it (`pool`), objects filled inside too; `value` when that is invalid.
    `drop_optional` then leaves fields out again, so instances range from one field to the whole schema."""
    if share <= 0:
        return value
    nav = pool.nav

    def walk(v: Any, node: dict[str, Any], path: str) -> Any:
        if not isinstance(v, dict):
            return v
        props = node.get("properties")
        out = dict(v)
        if isinstance(props, dict):
            for k in props:
                if k not in out and (seen := pool.values.get((path, k))) and rng.random() < share:
                    out[k] = copy.deepcopy(rng.choice(seen))
        return {k: walk(x, nav.child(node, k), f"{path}/{k}") for k, x in out.items()}

    out = walk(value, nav.deref(schema.raw), "")
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
                    keep(self.items, path, x, self.size)
                    walk(x, item, f"{path}/*")
            elif isinstance(v, str) and free_text(node):
                keep(self.strings, path, v, self.size)

        walk(value, self.nav.deref(self.nav.schema.raw), "")


def keep(where: dict[Any, list[Any]], key: Any, v: Any, size: int) -> None:
    """Book `v` under `key` once, keeping the newest `size` values."""
    got = where.setdefault(key, [])
    if v not in got:
        got.append(v)
        del got[:-size]


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


IDENTIFIER_WORDS = {"id", "number", "no", "num", "code", "ref", "key", "zip", "pin"}


def _round_sig(x: float, digits: int) -> float:
    if x == 0:
        return 0.0
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def draw_number(key: str, node: dict[str, Any], current: int | float, rng: random.Random) -> int | float | None:
    """A number as people's data has them, within the node's bounds: counts from 0 to millions (often
    round), money with cents, fractions with two decimals. None where the node pins the value (enum,
    const, multipleOf) or the draw falls outside its bounds."""
    if isinstance(current, bool) or node.get("enum") is not None or "const" in node or "multipleOf" in node:
        return None
    lo, hi, _, _ = number_bounds(node)
    integer = node.get("type") == "integer" or (isinstance(current, int) and node.get("type") != "number")
    if vocab.is_fraction(key, node) or (not integer and lo is not None and hi is not None and 0 <= lo < hi <= 1):
        x: float = round(rng.random(), rng.choice([1, 2, 2]))
    else:
        floor = lo if lo is not None else (0.0 if rng.random() < 0.9 else -1000.0)
        ceiling = hi if hi is not None else max(floor, 0) + (1000.0 if vocab.is_money(key, node) else 1e6)
        if ceiling <= floor:
            return None
        if rng.random() < 0.2:  # small values: 0, 1, a handful
            x = floor + rng.random() * min(20.0, ceiling - floor)
        else:
            low = max(floor, 0.01 if vocab.is_money(key, node) else 1.0)
            x = math.exp(rng.uniform(math.log(low), math.log(ceiling))) if 0 < low < ceiling else \
                rng.uniform(floor, ceiling)
            if not set(vocab.humanize(key).split()) & IDENTIFIER_WORDS:  # ids keep every digit
                x = _round_sig(x, rng.choice([1, 2, 2, 3, 4, 6]))
        if integer:
            x = float(round(x))
        elif vocab.is_money(key, node):
            x = round(x, 2)
        else:
            x = round(x, rng.choice([0, 1, 2, 3]))
    value: int | float = int(x) if integer else float(x)
    return value if within_bounds(value, node) else None


def magnitude(x: float) -> int:
    """0 below 1, else the count of digits before the point: 7 -> 1, 5200 -> 4."""
    return 0 if abs(x) < 1 else int(math.floor(math.log10(abs(x)))) + 1


class NumberPool:
    """How often each number, and each magnitude, has come at each schema path in the teacher's instances:
    what `vary_numbers` flattens. A small teacher writes 1 for most fractions, one-digit counts for
    token totals and 123456 for most ids."""

    def __init__(self, min_seen: int = 20) -> None:
        self.min_seen = min_seen
        self.counts: dict[str, Counter[float]] = {}
        self.sizes: dict[str, Counter[int]] = {}

    def add(self, value: Any, path: str = "") -> None:
        """Book every number of an accepted instance (a resumed run's saved pairs)."""
        if isinstance(value, dict):
            for k, x in value.items():
                self.add(x, f"{path}/{k}")
        elif isinstance(value, list):
            for x in value:
                self.add(x, f"{path}/*")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.shares(path, float(value))

    def shares(self, path: str, value: float) -> tuple[float, float]:
        """Book `value` at `path`: (its share of the values booked there, its magnitude's share); both 0
        until `min_seen` values are booked."""
        seen = self.counts.setdefault(path, Counter())
        sizes = self.sizes.setdefault(path, Counter())
        seen[value] += 1
        sizes[magnitude(value)] += 1
        total = sum(seen.values())
        if total < self.min_seen:
            return 0.0, 0.0
        return seen[value] / total, sizes[magnitude(value)] / total


def vary_numbers(value: Any, schema: Schema, rng: random.Random, pool: NumberPool, cap: float = 0.1) -> Any:
    """A copy of `value` in which a number that fills more than `cap` of its path's values (in `pool`) is
    drawn again by `draw_number` with chance 1 - cap/share, and so is one whose magnitude fills more than
    1.5 times a flat draw's share of it (1.5/7 for a count from 0 to a million), so no one number or size
    stands for a field: a student trained on a teacher's 0, 1 and 100 copies a digit or two of "140,000"
    and never sees "55%" for 0.55.
    Numbers a teacher varies are left as they are. `value` itself when the result is invalid."""
    def leaf(v: Any, node: dict[str, Any], key: str, path: str) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            share, size_share = pool.shares(path, float(v))
            lo, hi, _, _ = number_bounds(node)
            top = hi if hi is not None else (1e3 if vocab.is_money(key, node) else 1e6)
            sizes = magnitude(top) - magnitude(max(lo or 0.0, 0.0)) + 1  # magnitudes a flat draw covers
            size_cap = min(0.9, 1.5 / sizes) if sizes > 2 else 1.0  # a narrow range: any spread will do
            redraw = max(1 - cap / share if share > cap else 0.0,
                         1 - size_cap / size_share if size_share > size_cap else 0.0)
            if redraw and rng.random() < redraw:
                drawn = draw_number(key, node, v, rng)
                return v if drawn is None else drawn
        return v

    out = map_leaves(value, SchemaNav(schema), leaf)
    return out if out != value and schema.is_valid(out) else value
