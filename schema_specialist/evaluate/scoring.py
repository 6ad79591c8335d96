"""One answer checked (`score`), and a system's answers summed into rates (`summarize`)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..generate.questions import leaves
from ..schema import Schema, schema_hash
from .failures import ROOT, Site, error_sites, fields_by_path, group_by_path, normalise
from .inputs import Generation, Item
from .metrics import FAILURE_KINDS, SYSTEM_LABELS, Rate, classify_failure, parse_json, same_scalar

EXAMPLES = 3


@dataclass
class Scored:
    """One answer, checked."""

    item: Item
    gen: Generation
    parsed: bool
    valid: bool
    exact: bool
    fields: tuple[int, int]
    failure: tuple[str, str] | None
    sites: tuple[Site, ...] = ()  # where it breaks the schema (`failures.error_sites`)
    leaf_results: tuple[tuple[str, bool], ...] = ()  # (normalised gold leaf path, reproduced)


def score(item: Item, gen: Generation, schema: Schema) -> Scored:
    """Parse, validate, classify, locate and field-match one answer (no gold: validity only)."""
    parsed, value = parse_json(gen.text)
    failure = classify_failure(gen.text, schema, gen.truncated)
    sites: tuple[Site, ...] = ()
    if failure is not None:
        sites = tuple(error_sites(value, schema)) if parsed else ()
        if not sites:
            sites = ((ROOT, ROOT, failure[0], failure[1]),)
    if not item.has_gold:
        return Scored(item, gen, parsed, failure is None, False, (0, 0), failure, sites)
    got = dict(leaves(value)) if parsed else {}
    missing = object()
    results = tuple((normalise(p), parsed and same_scalar(got.get(p, missing), v)) for p, v in leaves(item.gold))
    fields = (sum(r for _, r in results), len(results))
    exact = parsed and (schema_hash(value) == schema_hash(item.gold) or (
        fields[0] == fields[1] and set(got) == {p for p, _ in leaves(item.gold)}))
    return Scored(item, gen, parsed, failure is None, bool(exact), fields, failure, sites, results)


@dataclass
class SystemResult:
    """Metrics of one system over its inputs."""

    name: str
    label: str
    n: int
    parse: Rate
    validity: Rate
    fields: Rate
    exact: Rate
    failures: dict[str, dict[str, Any]]
    prompt_tokens: float
    completion_tokens: float
    latency_s: float
    by_source: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: str | None = None
    note: str | None = None
    overhead_tokens: float | None = None  # prompt tokens beyond the question itself (template, instructions)
    by_style: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures_by_path: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields_by_path: dict[str, dict[str, int]] = field(default_factory=dict)
    answered: int = 0  # inputs with a gold answer (field accuracy and exact are over these)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "n": self.n}
        for key in ("parse", "validity", "fields", "exact"):
            out[key] = getattr(self, key).to_dict()
        out.update(failures=self.failures, prompt_tokens_mean=self.prompt_tokens,
                   completion_tokens_mean=self.completion_tokens, overhead_tokens_mean=self.overhead_tokens,
                   latency_s_per_answer=self.latency_s, answered=self.answered,
                   by_source=self.by_source, by_style=self.by_style, engine=self.engine, note=self.note,
                   failures_by_path=self.failures_by_path, fields_by_path=self.fields_by_path)
        return out


def _breakdown(scored: Sequence[Scored], key: Callable[[Scored], str | None]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({k for s in scored if (k := key(s)) is not None}):
        sub = [s for s in scored if key(s) == name]
        out[name] = {"n": len(sub), "validity": Rate(sum(s.valid for s in sub), len(sub)).to_dict(),
                     "fields": Rate(sum(s.fields[0] for s in sub), sum(s.fields[1] for s in sub)).to_dict()}
    return out


def summarize(name: str, scored: Sequence[Scored], *, engine: str | None = None, note: str | None = None,
              question_tokens: Callable[[str], int] | None = None) -> SystemResult:
    """Aggregate scored answers into rates with intervals, failure groups with examples, cost."""
    n = len(scored)
    failures: dict[str, dict[str, Any]] = {}
    for s in scored:
        if s.failure is None:
            continue
        kind, detail = s.failure
        example = {"question": s.item.question[:300], "answer": s.gen.text[:300], "detail": detail,
                   "source": s.item.source, "style": s.item.style}
        group = failures.setdefault(kind, {"count": 0, "example": example, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < EXAMPLES:
            group["examples"].append(example)
    failures = {k: failures[k] for k in FAILURE_KINDS if k in failures}
    gold = [s for s in scored if s.item.has_gold]
    mean = statistics.fmean
    return SystemResult(
        name=name, label=SYSTEM_LABELS.get(name, name), n=n,
        parse=Rate(sum(s.parsed for s in scored), n), validity=Rate(sum(s.valid for s in scored), n),
        fields=Rate(sum(s.fields[0] for s in scored), sum(s.fields[1] for s in scored)),
        exact=Rate(sum(s.exact for s in gold), len(gold)), failures=failures,
        prompt_tokens=mean([s.gen.prompt_tokens for s in scored]) if n else 0.0,
        completion_tokens=mean([s.gen.completion_tokens for s in scored]) if n else 0.0,
        latency_s=mean([s.gen.seconds for s in scored]) if n else 0.0,
        by_source=_breakdown(scored, lambda s: s.item.source), engine=engine, note=note,
        overhead_tokens=mean([s.gen.prompt_tokens - question_tokens(s.item.question) for s in scored])
        if n and question_tokens is not None else None,
        by_style=_breakdown(scored, lambda s: s.item.style),
        failures_by_path=group_by_path(scored), fields_by_path=fields_by_path(scored), answered=len(gold))
