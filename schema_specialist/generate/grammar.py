"""The schema the decoder sees: `$ref`s inlined with bounded recursion, sizes capped, objects closed.

Two passes, two contracts:

* `decoding_schema` only *narrows* (an instance of it is an instance of the original), with one
  exception: `not` and `if`/`then`/`else` are dropped, because no engine enforces them (xgrammar and
  outlines-core ignore them, llguidance rejects them) and narrowing inside them would loosen anyway.
  It also rewrites draft-4 forms (boolean `exclusiveMinimum`, `items` arrays, `id`) into their modern
  equivalents, merges `allOf` where the merge is exact, and, for schemas past a size budget, drops
  optional content (optional properties past a count or a depth, `anyOf` branches past a count) until
  the result fits: still narrowing, so still safe.
* `simplify(decoding, drop)` *loosens* exactly the keywords in `drop` (an engine's `rejects`: what it
  cannot compile): `oneOf` becomes `anyOf`, `allOf` is merged, unsupported formats and regexes go.

Every candidate is validated against the *original* schema (formats checked) and repaired or rejected,
so a looser grammar costs acceptance rate, never validity.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..bounds import first_number, is_number
from ..schema import Schema, keywords_used

_DROP = ("$defs", "definitions", "$schema", "$id", "$comment", "examples", "default", "$anchor",
         "$dynamicAnchor", "$vocabulary", "$recursiveAnchor")
VALIDATION_ONLY = frozenset({"not", "if", "then", "else"})
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "readOnly", "writeOnly",
                          "deprecated", "$id", "id", "$schema", "$anchor"})
_LEGACY_DRAFTS = ("draft4", "draft6", "draft7")

# Keywords `simplify` knows how to take out of a decoding schema (what an engine may reject).
LOOSENABLE = frozenset({
    "uniqueItems", "oneOf", "allOf", "patternProperties", "propertyNames", "contains", "minContains",
    "maxContains", "dependencies", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
    "unevaluatedItems", "multipleOf", "minProperties", "maxProperties", "pattern", "format", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "not", "if", "then", "else",
})

# Regex features some engines cannot parse: `pattern:<feature>` pseudo-keywords.
REGEX_FEATURES: dict[str, re.Pattern[str]] = {
    "lookaround": re.compile(r"\(\?<?[=!]"),
    "backref": re.compile(r"(?<!\\)\\[1-9]|\\k<"),
    "unicode-class": re.compile(r"\\[pP]\{?"),
}


@dataclass(frozen=True)
class Limits:
    """Caps applied where the schema leaves room (a schema's own tighter bound always wins)."""

    max_string: int = 48
    max_items: int = 3
    max_depth: int = 2  # times one recursive $ref may unfold
    max_number: int = 1_000_000  # magnitude cap where a number has no bound on that side
    max_nodes: int = 1500  # size budget (subschemas); past it optional content is pruned until it fits
    max_tokens: int = 160  # estimated tokens of a typical instance; past it, caps tighten until it fits
    # Steer a teacher towards short, everyday values (length and size caps, word-shaped free text,
    # well-formed format patterns, number ranges). Off for the grammar an answer is decoded under
    # (`answer_schema`): there every value the schema allows must stay writable.
    steer: bool = True


# The grammar of an answer (eval's adapter + grammar, the guard, the server's strict and fallback
# paths): structure only. A request says "Lucía", "2026-01-30" or five tags; the teacher's caps and
# patterns would force "Lucia", a day <= 28 or three tags.
ANSWER_LIMITS = Limits(max_depth=3, steer=False)


@dataclass(frozen=True)
class _Level:
    """One pruning level: what optional content survives and how tight the caps are."""

    keep_optional: int | None  # optional properties kept per object
    optional_depth: int | None  # nesting depth from which optional content goes
    branches: int | None  # anyOf branches kept
    max_string: int
    max_items: int
    max_number: int = 1_000_000


# Tried in order until the decoding schema fits `max_nodes` and `max_tokens` (the last always fits).
_LEVELS = (
    _Level(None, None, None, 48, 3), _Level(16, 8, 8, 32, 3), _Level(8, 6, 6, 24, 2), _Level(6, 5, 4, 16, 2),
    _Level(4, 4, 3, 16, 1), _Level(2, 3, 2, 12, 1, 10_000), _Level(1, 2, 1, 8, 1, 1000),
    _Level(0, 1, 1, 8, 1, 1000), _Level(0, 1, 1, 3, 1, 100),
)


class _Cut(Exception):
    """A branch that cannot be produced: recursion past the depth limit, or a `false` schema."""


class _TooBig(Exception):
    """The decoding schema grew past the size budget at this pruning level."""


def answer_schema(schema: Schema) -> dict[str, Any]:
    """The schema an answer is decoded under: refs inlined, objects closed, no steering caps."""
    return decoding_schema(schema, ANSWER_LIMITS)


def decoding_schema(schema: Schema, limits: Limits | None = None) -> dict[str, Any]:
    """The narrowed schema handed to the grammar engine (see the module docstring)."""
    lim = limits or Limits()
    for i, level in enumerate(_LEVELS):
        last = i == len(_LEVELS) - 1
        walker = _Walker(schema, lim, level, None if last else lim.max_nodes)
        try:
            root = walker.walk(schema.raw, (), 0, True)
        except _TooBig:
            continue
        except _Cut:  # recursion that no optional branch can stop: let the engine see the original
            return schema.raw
        if not isinstance(root, dict):
            return schema.raw
        if last or not lim.steer or estimate_tokens(root) <= lim.max_tokens:
            return root
    return schema.raw  # pragma: no cover  (the last level always returns)


def estimate_tokens(node: Any) -> float:
    """A rough count of the tokens a small model writes for a typical instance of a decoding schema."""
    if not isinstance(node, dict):
        return 4.0
    if "const" in node or "enum" in node:
        values = [node["const"]] if "const" in node else node["enum"] if isinstance(node["enum"], list) else []
        return 1 + sum(len(repr(v)) for v in values) / max(1, len(values)) / 3
    total = 0.0
    for key in ("anyOf", "oneOf"):  # one branch is written: their mean, on top of the node's own content
        if isinstance(node.get(key), list) and node[key]:
            total += sum(estimate_tokens(b) for b in node[key]) / len(node[key])
    if isinstance(node.get("allOf"), list):
        total += sum(estimate_tokens(b) for b in node["allOf"])
    types = _types(node)
    if "object" in types or ("properties" in node and not types):
        required = set(node.get("required") or [])
        defined = node.get("properties")
        props: dict[str, Any] = defined if isinstance(defined, dict) else {}
        total += 2
        for name, sub in props.items():
            cost = len(str(name)) / 3 + 2 + estimate_tokens(sub)
            total += cost if name in required else cost / 2
        maps = [node["additionalProperties"]] if isinstance(node.get("additionalProperties"), dict) else []
        maps += list(node["patternProperties"].values()) if isinstance(node.get("patternProperties"), dict) else []
        if maps:
            entries = min(node.get("maxProperties", 3), 3)
            total += entries * (5 + sum(estimate_tokens(m) for m in maps) / len(maps))
        return total
    if "array" in types or (("items" in node or "prefixItems" in node) and not types):
        given = node.get("prefixItems")
        prefix: list[Any] = given if isinstance(given, list) else []
        items = node.get("items") if isinstance(node.get("items"), dict) else {}
        count = max(node.get("minItems") or 0, min(node.get("maxItems", 2), 2))
        each = [estimate_tokens(prefix[i]) if i < len(prefix) else estimate_tokens(items) for i in range(count)]
        return total + 2 + sum(each) + count
    if "string" in types:
        if "pattern" in node or "format" in node:
            return total + 10
        cap = node.get("maxLength", 48)
        return total + 2 + max(node.get("minLength") or 0, min(cap if isinstance(cap, int) else 48, 48)) / 3
    if types & {"integer", "number"}:
        return total + 5
    if types:
        return total + 1
    return total or 4.0


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)}
    return set()


def normalize(node: dict[str, Any]) -> dict[str, Any]:
    """Draft-4/7 forms rewritten to their 2020-12 equivalents (same instances, engines read them)."""
    out = dict(node)
    for ex, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(ex), bool):
            exclusive = out.pop(ex)
            if exclusive and is_number(out.get(bound)):
                out[ex] = out.pop(bound)
    if isinstance(out.get("items"), list):
        out["prefixItems"] = out.pop("items")
        extra = out.pop("additionalItems", True)
        if extra is not True:
            out["items"] = extra
    else:
        out.pop("additionalItems", None)  # ignored when `items` is not an array
    if isinstance(out.get("id"), str):
        out.pop("id")
    if out.get("additionalProperties") is True:
        out.pop("additionalProperties")
    return out


def _require_dependencies(node: dict[str, Any]) -> dict[str, Any]:
    """Schema dependencies (`if p is present, match S`) made unconditional: `allOf` S (narrowing).

    Otherwise a closed object often cannot satisfy S, and an engine ignores the condition anyway.
    """
    moved: list[Any] = []
    out = node
    for key in ("dependencies", "dependentSchemas"):
        deps = node.get(key)
        if not isinstance(deps, dict) or not any(isinstance(v, dict) for v in deps.values()):
            continue
        moved += [v for v in deps.values() if isinstance(v, dict)]
        rest = {k: v for k, v in deps.items() if not isinstance(v, dict | bool)}
        out = {k: v for k, v in out.items() if k != key}
        if rest:
            out[key] = rest
    if moved:
        before = out.get("allOf")
        out["allOf"] = (before if isinstance(before, list) else []) + moved
    return out


class _Walker:
    """One narrowing pass at one pruning level."""

    def __init__(self, schema: Schema, lim: Limits, level: _Level, budget: int | None) -> None:
        self.schema, self.budget = schema, budget
        self.lim = replace(lim, max_string=min(lim.max_string, level.max_string),
                           max_items=min(lim.max_items, level.max_items),
                           max_number=min(lim.max_number, level.max_number))
        self.keep_optional, self.optional_depth, self.branches = level.keep_optional, level.optional_depth, level.branches
        self.nodes = 0
        self.legacy = schema.draft in _LEGACY_DRAFTS

    def short_string(self) -> dict[str, Any]:
        """What a value the schema leaves free becomes: a short string when steering, else anything."""
        return {"type": "string", "maxLength": self.lim.max_string} if self.lim.steer else {}

    def deep(self, depth: int) -> bool:
        return self.optional_depth is not None and depth >= self.optional_depth

    def walk(self, node: Any, stack: tuple[str, ...], depth: int, closable: bool) -> Any:
        if node is True:
            return {}
        if node is False:
            raise _Cut("false")
        if not isinstance(node, dict):
            return node
        self.nodes += 1
        if self.budget is not None and self.nodes > self.budget:
            raise _TooBig
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self.walk(self.deref(node, ref, stack), stack + (ref,), depth, closable)
        node = _require_dependencies(normalize(node))
        if closable and not node.keys() - _ANNOTATIONS - set(_DROP):
            # Anything goes: a small model writes junk; a short string is one of the allowed values.
            return {**{k: node[k] for k in ("title", "description") if k in node}, **self.short_string()}
        out: dict[str, Any] = {k: v for k, v in node.items() if k not in _DROP and k not in VALIDATION_ONLY}
        self.combinators(node, out, stack, depth)
        inferred = _infer_type(node, out)
        if inferred:  # `{"properties": ...}` also takes numbers and strings: a small model writes them
            out["type"] = inferred
            node = {**node, "type": inferred}
        if isinstance(out.get("allOf"), list):
            merged = _fold_all_of(out)
            if merged is not None:
                out, node = merged, {**node, **merged}
                node.pop("allOf", None)
        for key in ("contains", "propertyNames", "unevaluatedItems"):
            if isinstance(node.get(key), dict):
                out[key] = self.walk(node[key], stack, depth + 1, True)
        if isinstance(node.get("unevaluatedProperties"), dict):
            out["unevaluatedProperties"] = self.walk(node["unevaluatedProperties"], stack, depth + 1, True)
        for key in ("dependentSchemas", "dependencies"):
            if isinstance(node.get(key), dict):
                out[key] = {k: self.walk(v, stack, depth, False) if isinstance(v, dict | bool) else v
                            for k, v in node[key].items()}
        closable = closable and "allOf" not in out and not any(
            isinstance(b, dict) and ({"properties", "patternProperties", "additionalProperties"} & b.keys())
            for key in ("anyOf", "oneOf") for b in out.get(key) or [])
        self.object(node, out, stack, depth, closable)
        self.array(node, out, stack, depth)
        _string(node, out, self.lim)
        _number(node, out, self.lim)
        return out

    def deref(self, node: dict[str, Any], ref: str, stack: tuple[str, ...]) -> Any:
        """The `$ref` target, with the ref's siblings applied where the draft says they apply."""
        if stack.count(ref) >= self.lim.max_depth:
            raise _Cut(ref)
        try:
            target = self.schema.resolve(ref)
        except Exception:
            raise _Cut(ref) from None
        siblings = {k: v for k, v in node.items() if k != "$ref" and k not in _ANNOTATIONS}
        if self.legacy or not siblings:  # draft 4-7: siblings of $ref are ignored
            return target
        if target is True:
            return siblings
        if target is False:
            raise _Cut(ref)
        if isinstance(target, dict) and not (siblings.keys() & target.keys()):
            return {**target, **siblings}
        return {"allOf": [target, siblings]}

    def combinators(self, node: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...], depth: int) -> None:
        # A branch may be closed only where the node itself defines no keys (they would clash).
        own_keys = any(k in node for k in ("properties", "patternProperties", "additionalProperties"))
        for key in ("anyOf", "oneOf", "allOf"):
            if not isinstance(node.get(key), list):
                continue
            kept: list[Any] = []
            for sub in node[key]:
                if key == "anyOf" and self.branches is not None and len(kept) >= self.branches:
                    break  # dropping anyOf branches narrows
                try:
                    kept.append(self.walk(sub, stack, depth, key != "allOf" and not own_keys))
                except _Cut:
                    if key == "allOf":
                        raise
            if not kept:
                raise _Cut(key)
            out[key] = kept

    def object(self, node: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...], depth: int,
               closable: bool) -> None:
        props = node.get("properties")
        required = [r for r in node.get("required") or [] if isinstance(r, str)]
        req = set(required)
        deep = self.deep(depth)
        dropped = False
        # Never pruned: required here, or by a combinator branch or a dependency.
        keep = set(req)
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in out.get(key) or []:
                if isinstance(branch, dict):
                    keep |= {r for r in branch.get("required") or [] if isinstance(r, str)}
        for key in ("dependentRequired", "dependencies"):
            for need in (node.get(key) or {}).values() if isinstance(node.get(key), dict) else []:
                keep |= {r for r in need if isinstance(r, str)} if isinstance(need, list) else set()
        if isinstance(props, dict):
            new: dict[str, Any] = {}
            optional = 0
            for name, sub in props.items():
                if name not in keep and (deep or (self.keep_optional is not None and optional >= self.keep_optional)):
                    dropped = True
                    continue
                try:
                    new[name] = self.walk(sub, stack, depth + 1, True)
                except _Cut:
                    if name in req:
                        raise
                    dropped = True
                    continue
                optional += name not in req
            out["properties"] = new
        extra = node.get("additionalProperties")
        patterns = node.get("patternProperties")
        is_object = "object" in _types(node) or "properties" in node
        # Optional content dropped from an object with extra keys allowed: close it, or a dropped key
        # could come back through additionalProperties/patternProperties with another schema.
        force_close = is_object and (dropped or deep) and node.get("minProperties", 0) <= len(required) \
            and closable
        if force_close:
            out.pop("patternProperties", None)
            out.pop("unevaluatedProperties", None)
            extra, patterns = False, None
        if isinstance(extra, dict):
            try:
                out["additionalProperties"] = self.walk(extra, stack, depth + 1, True)
            except _Cut:
                out["additionalProperties"] = False
        if isinstance(patterns, dict):
            new_patterns = {}
            for key, sub in patterns.items():
                try:
                    new_patterns[key] = self.walk(sub, stack, depth + 1, True)
                except _Cut:  # keys matching it cannot appear: forbid extra keys altogether
                    out["additionalProperties"] = False
            out["patternProperties"] = new_patterns
        if not closable or not is_object:
            return
        # Required-but-undefined properties made explicit (a small model needs a value shape).
        for name in required:
            out.setdefault("properties", {})
            if name in out["properties"]:
                continue
            if isinstance(out.get("additionalProperties"), dict):
                out["properties"][name] = out["additionalProperties"]
            elif isinstance(out.get("patternProperties"), dict) and any(
                    _search(p, name) for p in out["patternProperties"]):
                out["properties"][name] = next(s for p, s in out["patternProperties"].items() if _search(p, name))
            elif node.get("additionalProperties") is not False:
                out["properties"][name] = self.short_string()
        open_extra = "additionalProperties" in node or "patternProperties" in node \
            or "unevaluatedProperties" in node
        if force_close or (not open_extra and out.get("properties")):
            out.setdefault("properties", {})
            out["additionalProperties"] = False  # a small model otherwise invents keys
        elif not self.lim.steer:
            return
        elif not out.get("properties") and not open_extra:
            # A free-form object: a small map of short strings (one of the allowed shapes).
            out["additionalProperties"] = {"type": "string", "maxLength": self.lim.max_string}
            high = node.get("maxProperties")
            cap = max(node.get("minProperties") or 0, self.lim.max_items)
            out["maxProperties"] = min(int(high), cap) if is_number(high) else cap
        elif isinstance(out.get("additionalProperties"), dict) or out.get("patternProperties"):
            # A map: bound its entries, or a small model writes them until max_new_tokens.
            cap = max(node.get("minProperties") or 0, len(out.get("properties") or {}) + self.lim.max_items)
            high = node.get("maxProperties")
            out["maxProperties"] = min(int(high), cap) if is_number(high) else cap

    def array(self, node: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...], depth: int) -> None:
        low = node.get("minItems") or 0
        hard: int | None = None
        prefix = node.get("prefixItems")
        if isinstance(prefix, list):
            kept: list[Any] = []
            for i, sub in enumerate(prefix):
                try:
                    kept.append(self.walk(sub, stack, depth + 1, True))
                except _Cut:
                    if i < low:
                        raise
                    hard = i
                    break
            out["prefixItems"] = kept
        items = node.get("items")
        if "items" in node:
            if items is False:
                out.pop("items", None)
                hard = len(out.get("prefixItems", [])) if hard is None else hard
            elif isinstance(items, dict | bool):
                try:
                    out["items"] = self.walk(items, stack, depth + 1, True)
                except _Cut:
                    n = len(out.get("prefixItems", []))
                    if low > n:
                        raise
                    out["items"] = {}
                    hard = n if hard is None else hard
        is_array = "array" in _types(node) or "items" in node or "prefixItems" in node
        if not is_array:
            return
        high = node.get("maxItems")
        cap = max(low, 0 if self.deep(depth) else self.lim.max_items) if self.lim.steer else None
        if hard is not None:
            if hard < low:
                raise _Cut("items")
            cap = hard if cap is None else min(cap, hard)
        if cap is not None:
            out["maxItems"] = min(high, cap) if isinstance(high, int) and not isinstance(high, bool) else cap


_FAMILIES = {
    "object": ("properties", "required", "additionalProperties", "patternProperties", "minProperties",
               "maxProperties", "propertyNames", "dependencies", "dependentRequired", "dependentSchemas"),
    "array": ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"),
}
_SCALAR_KEYS = ("minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                "exclusiveMaximum", "multipleOf")


def _infer_type(node: dict[str, Any], out: dict[str, Any]) -> str | None:
    """The one type an untyped node's keywords point to (narrowing to it), or None."""
    if "type" in node or "enum" in node or "const" in node:
        return None
    families = [t for t, keys in _FAMILIES.items() if any(k in node for k in keys)]
    if len(families) != 1 or any(k in node for k in _SCALAR_KEYS):
        return None
    family = families[0]
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in out.get(key) or []:
            types = _types(branch) if isinstance(branch, dict) else set()
            if types and family not in types:
                return None
    return family


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


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


# Free text: no quotes, backslashes, braces or brackets. A small model under a JSON grammar otherwise
# fills strings with JSON-looking debris ("25},{"), which a student then learns to write.
PLAIN_TEXT = r'^[^"\\{}\[\]]*$'
# Free text with room for words: words of letters (a short number now and then) between single spaces,
# the first capitalised. Steers a small teacher away from `./135` and `A_B_D_P` towards words.
WORDS_TEXT = r"^[A-Z][a-z]+( [A-Za-z][a-z'&]*| [0-9]{1,4}| [a-z]+-[a-z]+)*[.!]?$"
WORDS_MIN_LENGTH = 8  # a maxLength below this keeps PLAIN_TEXT


def _string(node: dict[str, Any], out: dict[str, Any], lim: Limits) -> None:
    if "string" not in _types(node) or "enum" in node or "const" in node or not lim.steer:
        return
    low = node.get("minLength") or 0
    high = node.get("maxLength")
    fmt = node.get("format")
    pattern = node.get("pattern")
    if fmt in FORMAT_PATTERNS and not isinstance(pattern, str):
        lo, hi = regex_width(FORMAT_PATTERNS[str(fmt)])
        if lo <= (high if is_number(high) else lo) and hi >= low:  # some string of the format fits the lengths
            out.pop("format", None)
            out["pattern"] = FORMAT_PATTERNS[str(fmt)]
            return
    if isinstance(pattern, str):
        # A JSON Schema pattern matches anywhere: anchored at both ends, with `x+` -> `x{1,16}`,
        # it matches fewer strings, and a small model stops writing.
        bounded = bound_regex(anchor_regex(pattern))
        lo, hi = regex_width(bounded)
        if bounded != pattern and lo <= (high if is_number(high) else lo) and hi >= low:
            out["pattern"] = bounded
        return
    cap = max(low, lim.max_string)
    out["maxLength"] = min(high, cap) if isinstance(high, int) and not isinstance(high, bool) else cap
    if fmt is None:
        words = out["maxLength"] >= WORDS_MIN_LENGTH and low <= out["maxLength"] - 2
        out["pattern"] = WORDS_TEXT if words else PLAIN_TEXT


_UNBOUNDED = 1 << 30
_REPEAT = 16


def regex_width(pattern: str) -> tuple[int, int]:
    """(shortest, longest) match of a regex (longest = 2**30 when unbounded); (0, 2**30) if unknown."""
    try:
        import re._parser as sre_parse  # type: ignore[import-not-found]

        lo, hi = sre_parse.parse(pattern).getwidth()
        return int(lo), min(int(hi), _UNBOUNDED)
    except Exception:
        return 0, _UNBOUNDED


def anchor_regex(pattern: str) -> str:
    """`pattern` made to match whole strings only (`^(?:...)$`), a subset of its search matches."""
    core = pattern[1:] if pattern.startswith("^") else pattern
    if core.endswith("$") and not core.endswith("\\$"):
        core = core[:-1]
    if not core:
        return pattern
    anchored = f"^(?:{core})$" if "|" in core else f"^{core}$"
    try:
        re.compile(anchored)
    except re.error:
        return pattern
    return anchored


def bound_regex(pattern: str, repeat: int = _REPEAT) -> str:
    """`pattern` with unbounded repetitions (`*`, `+`, `{n,}`) bounded to `repeat` more: a narrower regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a literal ] first in the class
                out.append("]")
                i += 1
        elif c in "*+" and out and not (out[-1] in ("(", "|") or (out[-1] == "?" and len(out) > 1 and out[-2] == "(")):
            out.append(f"{{{0 if c == '*' else 1},{repeat}}}")
        elif c == "{":
            m = re.match(r"\{(\d+),\}", pattern[i:])
            if m:
                k = int(m.group(1))
                out.append(f"{{{k},{k + repeat}}}")
                i += m.end()
                continue
            out.append(c)
        else:
            out.append(c)
        i += 1
    result = "".join(out)
    try:
        re.compile(result)
    except re.error:
        return pattern
    return result


def _number(node: dict[str, Any], out: dict[str, Any], lim: Limits) -> None:
    if not _types(node) & {"integer", "number"} or "enum" in node or "const" in node or not lim.steer:
        return
    if not is_number(node.get("maximum")) and "exclusiveMaximum" not in node:
        out["maximum"] = int(max((first_number(node, "minimum", "exclusiveMinimum") or 0), 0)) + lim.max_number
    if not is_number(node.get("minimum")) and "exclusiveMinimum" not in node:
        out["minimum"] = int(min((first_number(node, "maximum", "exclusiveMaximum") or 0), 0)) - lim.max_number
    # Fractions end: at most three decimals (llguidance enforces it; xgrammar's ranges bound digits).
    if "number" in _types(node) and "multipleOf" not in node:
        lo = out.get("minimum", out.get("exclusiveMinimum"))
        hi = out.get("maximum", out.get("exclusiveMaximum"))
        if is_number(lo) and is_number(hi) and hi - lo >= 1:
            out["multipleOf"] = 0.001


# ---- allOf merging -------------------------------------------------------------------------------

_MAXED = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_MINNED = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_OPEN_KEYS = ("additionalProperties", "patternProperties", "unevaluatedProperties", "propertyNames")
_OBJECT_KEYS = ("properties", "required", *_OPEN_KEYS, "minProperties", "maxProperties")


def _type_meet(a: Any, b: Any) -> Any:
    """The intersection of two `type` values, None when empty."""
    ta = {a} if isinstance(a, str) else set(a) if isinstance(a, list) else None
    tb = {b} if isinstance(b, str) else set(b) if isinstance(b, list) else None
    if ta is None or tb is None:
        return a if tb is None else b
    both = ta & tb
    if "number" in ta and "integer" in tb or "number" in tb and "integer" in ta:
        both.add("integer")
    if not both:
        return None
    order = [t for t in (a if isinstance(a, list) else [a]) if t in both] + sorted(both - set(ta))
    return order[0] if len(order) == 1 else order


def merge(a: Any, b: Any) -> tuple[Any, bool]:
    """(a and b as one schema, whether the merge is exact); inexact merges keep `a`'s side of a conflict."""
    if b is True or b == {}:
        return a, True
    if a is True or a == {}:
        return b, True
    if not isinstance(a, dict) or not isinstance(b, dict):
        return a, False
    out = dict(a)
    exact = not (any(k in a for k in _OPEN_KEYS) and any(k in b for k in _OBJECT_KEYS)
                 or any(k in b for k in _OPEN_KEYS) and any(k in a for k in _OBJECT_KEYS))
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        cur = out[key]
        if cur == value or key in _ANNOTATIONS:
            continue
        if key == "properties" and isinstance(cur, dict) and isinstance(value, dict):
            props = dict(cur)
            for name, sub in value.items():
                if name in props:
                    props[name], ok = merge(props[name], sub)
                    exact = exact and ok
                else:
                    props[name] = sub
            out[key] = props
        elif key == "required" and isinstance(cur, list) and isinstance(value, list):
            out[key] = list(dict.fromkeys([*cur, *value]))
        elif key == "type":
            meet = _type_meet(cur, value)
            exact = exact and meet is not None
            out[key] = cur if meet is None else meet
        elif key == "enum" and isinstance(cur, list) and isinstance(value, list):
            both = [x for x in cur if x in value]
            exact = exact and bool(both)
            out[key] = both or cur
        elif key in _MAXED and is_number(cur) and is_number(value):
            out[key] = max(cur, value)
        elif key in _MINNED and is_number(cur) and is_number(value):
            out[key] = min(cur, value)
        elif key in ("items", "contains", "propertyNames", "additionalProperties") and \
                isinstance(cur, dict) and isinstance(value, dict):
            out[key], ok = merge(cur, value)
            exact = exact and ok
        elif key == "additionalProperties" and (cur is False or value is False):
            out[key] = False
            exact = False
        else:
            exact = False
    return out, exact


def _fold_all_of(node: dict[str, Any]) -> dict[str, Any] | None:
    """`node` with its `allOf` merged in, when the merge is exact; None otherwise."""
    merged: Any = {k: v for k, v in node.items() if k != "allOf"}
    for sub in node["allOf"]:
        merged, exact = merge(merged, sub)
        if not exact or not isinstance(merged, dict):
            return None
    return merged


# ---- loosening for an engine ---------------------------------------------------------------------

_SUB_ONE = ("additionalProperties", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
            "not", "if", "then", "else", "additionalItems")
_SUB_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUB_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_PLAIN_DROP = {
    "uniqueItems": ("uniqueItems",), "propertyNames": ("propertyNames",),
    "contains": ("contains", "minContains", "maxContains"), "minContains": ("minContains",),
    "maxContains": ("maxContains",), "dependencies": ("dependencies",),
    "dependentRequired": ("dependentRequired",), "dependentSchemas": ("dependentSchemas",),
    "unevaluatedItems": ("unevaluatedItems",), "multipleOf": ("multipleOf",),
    "minProperties": ("minProperties",), "maxProperties": ("maxProperties",), "minimum": ("minimum",),
    "maximum": ("maximum",), "exclusiveMinimum": ("exclusiveMinimum",), "exclusiveMaximum": ("exclusiveMaximum",),
    "not": ("not",), "if": ("if", "then", "else"), "then": ("if", "then", "else"), "else": ("if", "then", "else"),
}


def regex_features(pattern: str) -> set[str]:
    """`pattern:<feature>` names of the regex features in `pattern` that some engines cannot parse."""
    return {f"pattern:{name}" for name, rx in REGEX_FEATURES.items() if rx.search(pattern)}


def keywords(schema: Any) -> set[str]:
    """Every keyword used (formats as `format:<name>`), plus `pattern:<feature>` for hard regexes."""
    used = keywords_used(schema)
    for node in _nodes(schema):
        if isinstance(node.get("pattern"), str):
            used |= regex_features(node["pattern"])
        patterns = node.get("patternProperties")
        for key in patterns if isinstance(patterns, dict) else {}:
            used |= regex_features(key)
    return used


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for key in _SUB_ONE + ("items",):
            if isinstance(node.get(key), dict | list):
                yield from _nodes(node[key])
        for key in _SUB_LIST:
            subs = node.get(key)
            for sub in subs if isinstance(subs, list) else []:
                yield from _nodes(sub)
        for key in _SUB_MAP:
            if isinstance(node.get(key), dict):
                for sub in node[key].values():
                    yield from _nodes(sub)
    elif isinstance(node, list):
        for sub in node:
            yield from _nodes(sub)


def simplify(schema: dict[str, Any], drop: Collection[str], max_string: int = Limits.max_string) -> dict[str, Any]:
    """`schema` with the keywords in `drop` taken out (loosening; validation enforces them instead).

    Names are keywords (`oneOf` becomes `anyOf`, `allOf` is merged, `patternProperties` folds into
    `additionalProperties`), `format` or `format:<name>`, `pattern` or `pattern:<feature>`.
    """
    names = frozenset(drop)
    if not names:
        return schema
    result = _loosen(schema, names, max_string)
    return result if isinstance(result, dict) else schema


def _loosen(node: Any, drop: frozenset[str], max_string: int) -> Any:
    if isinstance(node, list):
        return [_loosen(v, drop, max_string) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUB_ONE or key == "items" or key in _SUB_LIST:
            out[key] = _loosen(value, drop, max_string)
        elif key in _SUB_MAP and isinstance(value, dict):
            out[key] = {k: _loosen(v, drop, max_string) for k, v in value.items()}
        elif key == "dependencies" and isinstance(value, dict):
            out[key] = {k: _loosen(v, drop, max_string) if isinstance(v, dict) else v for k, v in value.items()}
        else:
            out[key] = value
    if "allOf" in drop and isinstance(out.get("allOf"), list):
        merged: Any = {k: v for k, v in out.items() if k != "allOf"}
        for sub in out["allOf"]:
            merged, _ = merge(merged, sub)
        if isinstance(merged, dict):
            out = _loosen(merged, drop, max_string) if "allOf" in merged else merged
            if out.get("properties") and not any(k in out for k in _OPEN_KEYS):
                out["additionalProperties"] = False
    if "oneOf" in drop and "oneOf" in out:
        branches = out.pop("oneOf")
        if "anyOf" not in out:
            out["anyOf"] = branches
    if "patternProperties" in drop and isinstance(out.get("patternProperties"), dict):
        schemas = list(out.pop("patternProperties").values())
        extra = out.get("additionalProperties")
        if schemas and extra is not False:
            options = ([extra] if isinstance(extra, dict) else []) + schemas
            out["additionalProperties"] = options[0] if len(options) == 1 else {"anyOf": options}
    if "unevaluatedProperties" in drop and "unevaluatedProperties" in out:
        closed = out.pop("unevaluatedProperties") is False
        if closed and out.get("properties") and "additionalProperties" not in out and "allOf" not in out:
            out["additionalProperties"] = False
    for name in drop:
        for key in _PLAIN_DROP.get(name, ()):
            out.pop(key, None)
    widened = False
    fmt = out.get("format")
    if isinstance(fmt, str) and ("format" in drop or f"format:{fmt}" in drop):
        out.pop("format")
        widened = True
    pattern = out.get("pattern")
    if isinstance(pattern, str) and ("pattern" in drop or regex_features(pattern) & drop):
        out.pop("pattern")
        widened = True
    if widened and "string" in _types(out) and "maxLength" not in out and "enum" not in out and "const" not in out:
        out["maxLength"] = max(out.get("minLength") or 0, max_string)
    return out
