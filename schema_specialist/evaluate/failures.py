"""Where answers break: every schema error of an answer located at its field path, and groups by path.

The groups are what `generate --focus REPORT.json` reads. Their shape in report.json (top-level
`failures_by_path`, the adapter's unconstrained answers over every input source; each system's dict
has its own):

    {"/metrics/cost_usd": {                  # JSON pointer; array indices as "*"; "(root)": not JSON or cut off
        "count": 7,                          # answers that break at this path (one answer counts once a path)
        "kinds": {"bounds": 5, "wrong_type": 2},          # answers with that kind there (FAILURE_KINDS)
        "sources": {"hypothesis": 4, "test": 1, "agent_status.requests": 2},
        "styles": {"prose": 2},                           # only items whose source names a style
        "examples": [{"question": str, "answer": str, "kind": str, "detail": str,
                      "source": str, "style": str | None, "gold": value | None}]}}   # up to 3

ordered by count, most first; `read_failures_by_path(REPORT.json)` reads them back. `fields_by_path` is its companion for answers that parse: for each gold
leaf path (indices as "*"), `{"wrong": k, "total": n}`, gold leaves not reproduced at that path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..schema import Schema
from .metrics import kind_of

if TYPE_CHECKING:
    from .scoring import Scored

ROOT = "(root)"
EXAMPLES = 3

# (normalised path, actual path, kind, detail) of one place where an answer breaks the schema
Site = tuple[str, str, str, str]


def pointer(parts: Sequence[Any]) -> str:
    """A JSON pointer ("/a/0/b") of path parts; the root is `ROOT`."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else ROOT


def normalise(path: str) -> str:
    """Array indices as "*", so the same field of every array item is one group."""
    return path if path == ROOT else re.sub(r"/\d+(?=/|$)", "/*", path)


def _extras(error: Any) -> list[str]:
    """The property names an additionalProperties/unevaluatedProperties error is about."""
    instance, schema = error.instance, error.schema
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    props = schema.get("properties") or {}
    patterns = list((schema.get("patternProperties") or {}).keys())

    def allowed(key: str) -> bool:
        if key in props:
            return True
        try:
            return any(re.search(p, key) for p in patterns)
        except re.error:
            return False

    return [k for k in instance if not allowed(k)]


def error_sites(value: Any, schema: Schema) -> list[Site]:
    """Every place a parsed answer breaks the schema, one site a path (its first error).

    A missing required property is located at that property, an extra one at itself, the rest at the
    value the failing keyword applies to.
    """
    sites: dict[str, Site] = {}
    for error in schema.errors(value):
        base = list(error.absolute_path)
        validator = str(error.validator)
        kind = kind_of(validator)
        message = " ".join(str(error.message).split())[:200]
        if validator == "required" and isinstance(error.instance, dict) and isinstance(error.validator_value, list):
            names = [k for k in error.validator_value if k not in error.instance] or [None]
        elif validator in ("additionalProperties", "unevaluatedProperties"):
            names = list(_extras(error)) or [None]
        else:
            names = [None]
        for name in names:
            path = pointer(base + ([name] if name is not None else []))
            said = message
            if name is not None:  # jsonschema's message names only the first missing or extra property
                said = (f"{name!r} is a required property" if validator == "required" else
                        f"{name!r} is not allowed here")
            sites.setdefault(path, (normalise(path), path, kind, f"{path}: {said} [{validator}]"))
    return list(sites.values())


def at_path(value: Any, path: str) -> Any:
    """The value at a JSON pointer, or None when there is none."""
    if path == ROOT:
        return value
    for part in path.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _count(groups: dict[str, int], key: str | None) -> None:
    if key is not None:
        groups[key] = groups.get(key, 0) + 1


def group_by_path(scored: Sequence[Scored]) -> dict[str, dict[str, Any]]:
    """Failures grouped by field path (the module docstring has the shape)."""
    groups: dict[str, dict[str, Any]] = {}
    for s in scored:
        if s.valid:
            continue
        first: dict[str, Site] = {}
        kinds: dict[str, set[str]] = {}
        for site in s.sites:
            first.setdefault(site[0], site)
            kinds.setdefault(site[0], set()).add(site[2])
        for norm, (_, path, kind, detail) in first.items():
            g = groups.setdefault(norm, {"count": 0, "kinds": {}, "sources": {}, "styles": {}, "examples": []})
            g["count"] += 1
            for k in sorted(kinds[norm]):
                _count(g["kinds"], k)
            _count(g["sources"], s.item.source)
            _count(g["styles"], s.item.style)
            if len(g["examples"]) < EXAMPLES:
                g["examples"].append({
                    "question": s.item.question[:300], "answer": s.gen.text[:300], "kind": kind,
                    "detail": detail, "source": s.item.source, "style": s.item.style,
                    "gold": at_path(s.item.gold, path) if s.item.has_gold else None})
    return dict(sorted(groups.items(), key=lambda kv: (-kv[1]["count"], kv[0])))


def fields_by_path(scored: Sequence[Scored]) -> dict[str, dict[str, int]]:
    """Gold leaves not reproduced, by normalised path: `{"wrong": k, "total": n}`, most wrong first."""
    out: dict[str, dict[str, int]] = {}
    for s in scored:
        for path, right in s.leaf_results:
            g = out.setdefault(path, {"wrong": 0, "total": 0})
            g["total"] += 1
            g["wrong"] += not right
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["wrong"], kv[0])))


def read_failures_by_path(report_json: str | Path) -> dict[str, dict[str, Any]]:
    """The top-level `failures_by_path` of an eval's report.json (what `generate --focus` reads); a file that
    is not one is a one-line error."""
    import json

    from ..errors import SchemagenError

    p = Path(report_json)
    if p.is_dir():
        p = p / "report.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"not a readable eval report: {str(exc).splitlines()[0][:160]}", p) from None
    groups = data.get("failures_by_path") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != "schemagen-eval/1" or not isinstance(groups, dict):
        raise SchemagenError("not an eval report with `failures_by_path` (made by `schemagen eval`)", p)
    return groups
