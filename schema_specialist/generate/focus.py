"""`generate --focus REPORT.json`: new candidates that lean toward what an eval found failing.

The report's `failures_by_path` (`evaluate.failures`: answers that break the schema, by field path and
kind), its `fields_by_path` (gold leaves the adapter did not reproduce) and its validity by question
style (`systems.adapter.by_style`, and each `--inputs` file's) say where the adapter fails. With
probability `share`, a new candidate is bent toward one failing path, drawn in proportion to its count:

- `enum`: the value is drawn from the enum values the failed answers should have written (their gold),
  uniformly from the enum where the report has none;
- `bounds`: a number at or just inside one of its bounds;
- `missing_required`, `wrong_type`, `pattern_format`, a wrong value: the field is kept present (not
  dropped by `--drop-optional`);
- `extra_property` (a key the schema does not have): the schema's keys beside it that share a word
  with it are kept present and the other optional keys there are left out, so the student sees the
  right key and learns to leave out what a request does not state.

With the same probability the question is written in a style drawn in proportion to its failure rate.
A bent instance that no longer validates is left as it was.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bounds import first_number
from ..errors import SchemagenError
from ..schema import Schema
from .questions import STYLES, SchemaNav

PRESENT = ("missing_required", "wrong_type", "pattern_format", "other", "wrong_value", "not_json", "truncated")
# f(container, key, container before --drop-optional, the key's schema node, the container's node) -> hit
Bend = Callable[[Any, Any, Any, dict[str, Any], dict[str, Any]], bool]


@dataclass
class Target:
    """One failing field path and what to do with it."""

    path: str  # normalised JSON pointer ("/metrics/cost_usd", array items as "*")
    kind: str  # the most frequent failure kind there
    weight: float
    values: list[Any] = field(default_factory=list)  # enum values the failed answers should have had

    def parts(self) -> list[str]:
        return [p.replace("~1", "/").replace("~0", "~") for p in self.path.lstrip("/").split("/")]


def _report(path: Path) -> dict[str, Any]:
    from ..evaluate.failures import read_failures_by_path

    read_failures_by_path(path)  # one-line errors for a file that is not an eval report
    p = path / "report.json" if path.is_dir() else path
    data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return data


def _style_failures(report: dict[str, Any]) -> dict[str, float]:
    """Failure rate of each question style the generator writes, over the main inputs and every file."""
    fails: dict[str, list[int]] = {}
    sections = [report, *[s for s in report.get("input_files") or [] if isinstance(s, dict)]]
    for sec in sections:
        adapter = (sec.get("systems") or {}).get("adapter") or {}
        for style, d in (adapter.get("by_style") or {}).items():
            v = d.get("validity") if isinstance(d, dict) else None
            if style in STYLES and isinstance(v, dict):
                acc = fails.setdefault(style, [0, 0])
                acc[0] += int(v.get("n", 0)) - int(v.get("k", 0))
                acc[1] += int(v.get("n", 0))
    if not fails:  # an older report: the styles of the failed answers
        for g in (report.get("failures_by_path") or {}).values():
            for style, c in (g.get("styles") or {}).items():
                if style in STYLES:
                    fails.setdefault(style, [0, 0])[0] += int(c)
        return {s: float(k) for s, (k, _) in fails.items() if k > 0}
    return {s: round(k / n, 4) for s, (k, n) in fails.items() if n and k > 0}


class Focus:
    """The leaning drawn from one eval report; `apply` and `style` are called per candidate."""

    def __init__(self, schema: Schema, report_path: str | Path, share: float = 0.75) -> None:
        self.schema, self.nav, self.share = schema, SchemaNav(schema), share
        self.path = Path(report_path)
        report = _report(self.path)
        file = self.path / "report.json" if self.path.is_dir() else self.path
        self.sha256 = hashlib.sha256(file.read_bytes()).hexdigest()
        sha = report.get("schema_sha256")
        if sha and sha != schema.sha256:
            raise SchemagenError("is an eval report on another version of the schema", file)
        self.targets = self._targets(report)
        self.styles = _style_failures(report)
        if not self.targets and not self.styles:
            raise SchemagenError("has no failures to focus on (no failing field path or question style)", file)

    @property
    def round(self) -> str:
        return self.sha256[:12]

    def _node(self, parts: list[str]) -> dict[str, Any]:
        node = self.nav.deref(self.schema.raw)
        for part in parts:
            node = self.nav.items(node) if part == "*" else self.nav.child(node, part)
            if not node:
                return {}
        return node

    def _targets(self, report: dict[str, Any]) -> list[Target]:
        out: dict[str, Target] = {}
        for path, g in (report.get("failures_by_path") or {}).items():
            if not path.startswith("/") or not isinstance(g, dict) or not g.get("count"):
                continue
            kinds = g.get("kinds") or {}
            kind = max(kinds, key=lambda k: (kinds[k], k)) if kinds else "other"
            t = Target(path, kind, float(g["count"]))
            node = self._node(t.parts())
            if kind != "extra_property" and not node:
                continue  # a path the schema does not have (and not an extra key): nothing to bend
            enum: list[Any] = node["enum"] if isinstance(node.get("enum"), list) else []
            gold = [ex.get("gold") for ex in g.get("examples") or [] if isinstance(ex, dict)]
            t.values = [v for v in gold if v in enum]
            out[path] = t
        for path, g in (report.get("fields_by_path") or {}).items():
            wrong = int(g.get("wrong", 0)) if isinstance(g, dict) else 0
            if wrong <= 0 or not path.startswith("/") or not self._node(Target(path, "", 0).parts()):
                continue
            if path in out:
                out[path].weight += wrong
            else:
                out[path] = Target(path, "wrong_value", float(wrong))
        return sorted(out.values(), key=lambda t: (-t.weight, t.path))

    def describe(self) -> dict[str, Any]:
        return {"report": str(self.path), "sha256": self.sha256, "share": self.share,
                "paths": [{"path": t.path, "kind": t.kind, "weight": t.weight,
                           **({"values": _unique(t.values)[:8]} if t.values else {})} for t in self.targets],
                "styles": self.styles}

    # ---- per candidate ------------------------------------------------------------------------
    def style(self, rng: random.Random) -> str | None:
        """A question style drawn by failure rate for a `share` of candidates, else None (the default mix)."""
        if not self.styles or rng.random() >= self.share:
            return None
        names = sorted(self.styles)
        return rng.choices(names, weights=[self.styles[s] for s in names])[0]

    def apply(self, value: Any, before: Any, rng: random.Random) -> tuple[Any, str | None]:
        """(instance, the path it was bent toward, or None). `before` is the instance before optional
        fields were dropped, where a field to keep present is taken back from."""
        if not self.targets or rng.random() >= self.share:
            return value, None
        t = rng.choices(self.targets, weights=[x.weight for x in self.targets])[0]
        bent = copy.deepcopy(value)
        hits = self._visit(bent, before, self.nav.deref(self.schema.raw), t.parts(), self._bend(t, rng))
        if hits and (bent == value or self.schema.is_valid(bent)):
            return bent, t.path
        return value, None

    def _bend(self, t: Target, rng: random.Random) -> Bend:
        def restore(box: Any, key: Any, was: Any) -> bool:
            if isinstance(box, dict) and key not in box and isinstance(was, dict) and key in was:
                box[key] = copy.deepcopy(was[key])
            return isinstance(box, dict) and key in box or isinstance(box, list)

        def bend(box: Any, key: Any, was: Any, node: dict[str, Any], parent: dict[str, Any]) -> bool:
            if t.kind == "extra_property":
                return _fewer_keys(box, key, was, parent, rng, restore)
            enum = node.get("enum")
            if isinstance(enum, list) and enum and t.kind in ("enum", "wrong_value"):
                box[key] = rng.choice(t.values or enum)
                return True
            if t.kind == "bounds":
                near = _near_bound(node, rng)
                if near is not None:
                    box[key] = near
                    return True
            return restore(box, key, was)

        return bend

    def _visit(self, obj: Any, was: Any, node: dict[str, Any], parts: list[str], bend: Bend) -> int:
        """Apply `bend` at every place of `obj` the path reaches (each array item for "*"); the count."""
        head, rest = parts[0], parts[1:]
        if head == "*":
            if not isinstance(obj, list):
                return 0
            item = self.nav.items(node)
            items: list[Any] = was if isinstance(was, list) else []
            if not rest:
                return sum(bend(obj, i, items, item, node) for i in range(len(obj)))
            return sum(self._visit(x, items[i] if i < len(items) else None, item, rest, bend)
                       for i, x in enumerate(obj))
        if not isinstance(obj, dict):
            return 0
        child = self.nav.child(node, head)
        prior: dict[str, Any] = was if isinstance(was, dict) else {}
        if not rest:
            return int(bend(obj, head, prior, child, node))
        if head not in obj and head in prior:  # the way to the field was dropped: take it back
            obj[head] = copy.deepcopy(prior[head])
        if head not in obj:
            return 0
        return self._visit(obj[head], prior.get(head), child, rest, bend)


def _unique(values: list[Any]) -> list[Any]:
    return [json.loads(v) for v in dict.fromkeys(json.dumps(x, sort_keys=True) for x in values)]


def _words(key: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", key).lower()) if w}


def _fewer_keys(box: Any, extra: Any, was: Any, node: dict[str, Any], rng: random.Random,
                restore: Callable[[Any, Any, Any], bool]) -> bool:
    """An extra key `extra` in object `box`: keep the schema's keys that share a word with it, leave out
    about half of the other optional ones."""
    if not isinstance(box, dict):
        return False
    props: dict[str, Any] = node["properties"] if isinstance(node.get("properties"), dict) else {}
    required = set(node.get("required") or [])
    near = _words(str(extra))
    for key in props:
        if near & _words(key):
            restore(box, key, was)
        elif key in box and key not in required and rng.random() < 0.5:
            del box[key]
    return True


def _near_bound(node: dict[str, Any], rng: random.Random) -> int | float | None:
    """A number at or just inside a bound of `node`, or None when it has no numeric bound."""
    types = node.get("type")
    integer = types == "integer" or (isinstance(types, list) and "integer" in types and "number" not in types)
    def number(key: str, other: str) -> float | None:
        b = first_number(node, key, other)
        return None if b is None else float(b)

    lo, hi = number("minimum", "exclusiveMinimum"), number("maximum", "exclusiveMaximum")
    bounds = {side: b for side, b in (("lo", lo), ("hi", hi)) if b is not None}
    if not bounds:
        return None
    span = (hi - lo) if lo is not None and hi is not None else max(1.0, abs(next(iter(bounds.values()))))
    side = rng.choice(sorted(bounds))
    bound = bounds[side]
    exclusive = ("minimum" not in node) if side == "lo" else ("maximum" not in node)
    step = rng.choice([0.0, 0.0, 0.01, 0.05]) * span
    if integer:
        step = max(int(round(step)), 1 if exclusive else 0)
        out: int | float = int(bound) + step if side == "lo" else int(bound) - step
    else:
        if exclusive and step == 0:
            step = min(0.01, span / 100 or 0.01)
        out = round(bound + step if side == "lo" else bound - step, 4)
    return int(out) if float(out).is_integer() else out
