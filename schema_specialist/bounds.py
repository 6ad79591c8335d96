"""Numbers in a schema node's keywords: JSON numbers (never booleans), lengths, and a number's bounds.

`True` is an `int` in Python, so every reader of `minimum`, `maxLength` or draft 4's boolean
`exclusiveMinimum` has to tell the two apart; they all do it here.
"""

from __future__ import annotations

from typing import Any, TypeGuard


def is_number(v: Any) -> TypeGuard[int | float]:
    """A JSON number: an int or float that is not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def first_number(node: dict[str, Any], *keys: str) -> int | float | None:
    """The value of the first of `keys` that holds a number in `node`, else None."""
    for key in keys:
        v = node.get(key)
        if is_number(v):
            return v
    return None


def int_keyword(node: dict[str, Any], key: str, default: int) -> int:
    """An integer keyword such as `minLength` or `maxItems`, else `default`."""
    v = node.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def number_bounds(node: dict[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    """(low, high, low exclusive, high exclusive) of a number node: draft 4's boolean exclusive flags and
    draft 6+'s numeric `exclusiveMinimum`/`exclusiveMaximum` (the tighter bound wins)."""
    lo, hi = first_number(node, "minimum"), first_number(node, "maximum")
    lo_x = hi_x = False
    emin, emax = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    if emin is True or emax is True:  # draft 4: the flag makes minimum/maximum exclusive
        lo_x, hi_x = emin is True and lo is not None, emax is True and hi is not None
    if is_number(emin) and (lo is None or emin >= lo):
        lo, lo_x = emin, True
    if is_number(emax) and (hi is None or emax <= hi):
        hi, hi_x = emax, True
    return lo, hi, lo_x, hi_x


def within_bounds(x: float, node: dict[str, Any]) -> bool:
    """Whether `x` lies within the node's minimum and maximum, exclusive ones honoured (`number_bounds`)."""
    lo, hi, lo_x, hi_x = number_bounds(node)
    if lo is not None and (x < lo or (lo_x and x == lo)):
        return False
    return hi is None or not (x > hi or (hi_x and x == hi))
