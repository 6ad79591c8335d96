"""What the review page charts: per-field value histograms (so skew shows) and the data card's figures."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

MAX_CATEGORIES = 12  # a string field with more distinct values (and no enum) is free text: not charted
BINS = 10


def leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, scalar) for every scalar of an instance: `a.b` for object keys, `a[]` for array items."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in leaves(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v, f"{path}[]")]
    return [(path or "(value)", value)]


def _split_path(path: str) -> list[str]:
    parts: list[str] = []
    for chunk in path.split("."):
        name = chunk.rstrip("[]")
        if name:
            parts.append(name)
        parts.extend(["[]"] * ((len(chunk) - len(name)) // 2))
    return parts


def _deref(schema: dict[str, Any], node: Any, depth: int = 0) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#") and depth < 32:
        target: Any = schema
        for token in node["$ref"][1:].split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            target = target.get(token) if isinstance(target, dict) else None
        node, depth = target, depth + 1
    return node


def enum_at(schema: dict[str, Any], path: str) -> list[Any] | None:
    """The `enum` (or `const`) of the subschema at a leaf path, following properties, items and local $refs."""
    node: Any = _deref(schema, schema)
    for part in _split_path(path) if path != "(value)" else []:
        if not isinstance(node, dict):
            return None
        node = node.get("items") if part == "[]" else (node.get("properties") or {}).get(part)
        node = _deref(schema, node)
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            return list(node["enum"])
        if "const" in node:
            return [node["const"]]
    return None


def _label(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


def histograms(schema: dict[str, Any], values: list[Any]) -> list[dict[str, Any]]:
    """One chart per field that is an enum, a boolean, a number or a short list of strings.

    `kind` is `category` (`counts`: [[label, n], ...], an enum's unused values included with 0) or `range`
    (`bins`: [[lo, hi, n], ...], equal widths between the smallest and largest value)."""
    by_path: dict[str, list[Any]] = {}
    for v in values:
        for path, x in leaves(v):
            by_path.setdefault(path, []).append(x)
    charts = []
    for path, xs in by_path.items():
        enum = enum_at(schema, path)
        nums = [x for x in xs if isinstance(x, int | float) and not isinstance(x, bool)]
        chart: dict[str, Any] = {"field": path, "n": len(xs)}
        if enum is None and len(nums) == len(xs) and len(set(nums)) > MAX_CATEGORIES:
            lo, hi = min(nums), max(nums)
            width = (hi - lo) / BINS
            counts = [0] * BINS
            for x in nums:
                counts[min(int((x - lo) / width), BINS - 1)] += 1
            chart.update(kind="range", min=lo, max=hi,
                         bins=[[lo + i * width, lo + (i + 1) * width, n] for i, n in enumerate(counts)])
        else:
            seen = Counter(_label(x) for x in xs)
            if enum is None and all(isinstance(x, bool) for x in xs):
                enum = [True, False]
            if enum is None and len(seen) > MAX_CATEGORIES:
                continue  # free text
            order = [_label(e) for e in enum] if enum is not None else []
            order += sorted((k for k in seen if k not in order), key=_sort_key)
            chart.update(kind="category", counts=[[k, seen.get(k, 0)] for k in order])
        charts.append(chart)
    return charts


def _sort_key(label: str) -> tuple[int, float, str]:
    try:
        f = float(label)
        return (0, f if math.isfinite(f) else 0.0, label)
    except ValueError:
        return (1, 0.0, label)


def card_figures(manifest: dict[str, Any]) -> list[list[str]]:
    """The data card's table as [figure, value] rows, from whatever the manifest holds."""

    def get(*keys: str) -> Any:
        node: Any = manifest
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        return node

    rows: list[list[str]] = []

    def add(label: str, *parts: Any, sep: str = " / ") -> None:
        if any(p is not None for p in parts):
            rows.append([label, sep.join("?" if p is None else str(p) for p in parts)])

    add("pairs (train / val / test)", get("counts", "train"), get("counts", "val"), get("counts", "test"))
    add("accepted", get("counts", "accepted"))
    add("candidates / rejected", get("counts", "candidates"), get("counts", "rejected"))
    add("acceptance rate", get("acceptance_rate"))
    add("faithfulness rate", get("faithfulness", "rate"))
    add("repaired then accepted", get("counts", "repaired"))
    teacher = get("teacher", "spec") or get("teacher", "url")
    add("teacher", teacher)
    add("engine", get("engine", "name"))
    add("seed", get("seed"))
    add("tokens (prompt / completion)", get("tokens", "prompt"), get("tokens", "completion"))
    add("wall time (s)", get("wall_seconds"))
    add("distinct-1 / distinct-2 of questions", get("diversity", "distinct_1"), get("diversity", "distinct_2"))
    add("mean distinct-value ratio per field", get("diversity", "mean_field_distinct_ratio"))
    return rows
