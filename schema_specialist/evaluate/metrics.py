"""Pure metrics and the gate: Wilson intervals, failure kinds, field matching, n needed."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import SchemagenError
from ..generate.questions import leaves
from ..schema import Schema

Z95 = 1.959963984540054
ADAPTER, PROMPTED, CONSTRAINED = "adapter", "base+schema-prompt", "constrained"
ADAPTER_GRAMMAR = "adapter+grammar"  # the adapter decoding under the schema's grammar: what production runs
SYSTEMS = (ADAPTER, ADAPTER_GRAMMAR, PROMPTED, CONSTRAINED)  # report order
SYSTEM_LABELS = {ADAPTER: "adapter (no schema in prompt)", ADAPTER_GRAMMAR: "adapter + schema grammar",
                 PROMPTED: "base, schema in prompt", CONSTRAINED: "base, schema grammar (constrained)"}
FAILURE_KINDS = ("not_json", "truncated", "missing_required", "wrong_type", "enum", "bounds",
                 "pattern_format", "extra_property", "other")
_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
           "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "minContains",
           "maxContains", "uniqueItems"}
_KIND_OF = {"required": "missing_required", "dependentRequired": "missing_required", "type": "wrong_type",
            "enum": "enum", "const": "enum", "pattern": "pattern_format", "format": "pattern_format",
            "additionalProperties": "extra_property", "unevaluatedProperties": "extra_property",
            **dict.fromkeys(_BOUNDS, "bounds")}


def kind_of(validator: str) -> str:
    """The failure kind of a jsonschema validator keyword (`FAILURE_KINDS`)."""
    return _KIND_OF.get(validator, "other")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (95% by default); n = 0 gives (0, 1)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside 0..{n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


@dataclass
class Rate:
    """k of n, with its Wilson 95% interval."""

    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "rate": self.rate, "ci95": list(self.ci95)}

    def text(self, digits: int = 3) -> str:
        lo, hi = self.ci95
        return f"{self.rate:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if self.n else "-"


def parse_json(text: str) -> tuple[bool, Any]:
    """(parsed, value) of an answer: the whole stripped text must be one JSON value."""
    try:
        return True, json.loads(text.strip())
    except (TypeError, ValueError):
        return False, None


def looks_unterminated(text: str) -> bool:
    """JSON that stops mid-way: it opens an object/array/string it never closes."""
    s = text.strip()
    if not s or s[0] not in "[{":
        return False
    try:
        json.loads(s)
        return False
    except json.JSONDecodeError as exc:
        return exc.pos >= len(s) - 1 or "Unterminated string" in exc.msg


def classify_failure(text: str, schema: Schema, truncated: bool = False) -> tuple[str, str] | None:
    """(kind, detail) of an invalid answer, None for a valid one. Kinds: `FAILURE_KINDS`."""
    ok, value = parse_json(text)
    if not ok:
        if looks_unterminated(text) or (truncated and text.lstrip()[:1] in ("{", "[", '"')):
            return "truncated", "stopped before the JSON was complete" + (" (hit max_new_tokens)" if truncated else "")
        return "not_json", "not a JSON value"
    errors = schema.errors(value)
    if not errors:
        return None
    import jsonschema

    best = jsonschema.exceptions.best_match(errors)
    where = "/" + "/".join(str(p) for p in best.absolute_path) if best.absolute_path else "(root)"
    kind = _KIND_OF.get(str(best.validator), "other")
    if kind == "other" and any(_KIND_OF.get(str(e.validator)) for e in errors):
        kind = next(k for e in errors if (k := _KIND_OF.get(str(e.validator))))
    message = " ".join(str(best.message).split())
    return kind, f"{where}: {message[:200]} [{best.validator}]"


def same_scalar(got: Any, want: Any) -> bool:
    """JSON scalar equality: 1 == 1.0, but true != 1."""
    from ..testing import same_scalar as _same

    return _same(got, want)


def field_match(predicted: Any, gold: Any, parsed: bool = True) -> tuple[int, int]:
    """(matched, total) gold leaf paths whose scalar is at the same path in the prediction."""
    gold_leaves = list(leaves(gold))
    if not parsed:
        return 0, len(gold_leaves)
    got = dict(leaves(predicted))
    missing = object()
    return sum(same_scalar(got.get(p, missing), v) for p, v in gold_leaves), len(gold_leaves)


def n_needed(target: float) -> int | None:
    """Rule of three: the smallest n whose zero-failure 95% upper bound 3/n reaches 1 - target."""
    if target >= 1.0:
        return None
    return math.ceil(3 / (1 - target) - 1e-9)


def check_target(target: float | None) -> None:
    """A target must lie in (0, 1]."""
    if target is not None and (not isinstance(target, int | float) or math.isnan(target) or not 0 < target <= 1):
        raise SchemagenError(f"--target must be in (0, 1], got {target}")


@dataclass
class Gate:
    """The outcome of comparing validity with a target."""

    target: float | None
    strict: bool
    value: float  # what was compared: the rate, or the interval's lower bound with `strict`
    passed: bool | None
    meaningful: bool
    needed_n: int | None
    message: str

    @property
    def exit_code(self) -> int:
        return 1 if self.passed is False else 0


def gate(rate: float, lo: float, n: int, target: float | None, strict: bool = False) -> Gate:
    """Pass when validity (or, with `strict`, its Wilson lower bound) reaches `target`; say when n is too small."""
    check_target(target)
    value = lo if strict else rate
    if target is None:
        return Gate(None, strict, value, None, True, None, "no target")
    needed = n_needed(target)
    what = "validity lower bound (95%)" if strict else "validity"
    passed = value >= target - 1e-12
    verdict = "PASS" if passed else "FAIL"
    message = f"{verdict}: {what} {value:.4f} {'>=' if passed else '<'} target {target:g} (n={n})"
    meaningful = needed is not None and n >= needed
    if needed is None:
        message += ("; note: no finite n proves a validity of 1.0 (zero failures in n answers only bounds "
                    "the failure rate by about 3/n)")
    elif not meaningful:
        message += (f"; note: n={n} is too small for target {target:g} to mean anything (rule of three: "
                    f"zero failures in n answers bound the failure rate by 3/n); use n >= {needed}")
    return Gate(target, strict, value, passed, meaningful, needed, message)


