"""One answer checked (`score`), and a system's answers summed into rates (`summarize`)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..generate.questions import leaves
from ..schema import Schema, schema_hash
from .inputs import Generation, Item
from .metrics import FAILURE_KINDS, SYSTEM_LABELS, Rate, classify_failure, field_match, parse_json


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


def score(item: Item, gen: Generation, schema: Schema) -> Scored:
    """Parse, validate, classify and field-match one answer."""
    parsed, value = parse_json(gen.text)
    failure = classify_failure(gen.text, schema, gen.truncated)
    fields = field_match(value, item.gold, parsed)
    exact = parsed and (schema_hash(value) == schema_hash(item.gold) or (
        fields[0] == fields[1] and {p for p, _ in leaves(value)} == {p for p, _ in leaves(item.gold)}))
    return Scored(item, gen, parsed, failure is None, bool(exact), fields, failure)


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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "n": self.n}
        for key in ("parse", "validity", "fields", "exact"):
            out[key] = getattr(self, key).to_dict()
        out.update(failures=self.failures, prompt_tokens_mean=self.prompt_tokens,
                   completion_tokens_mean=self.completion_tokens, overhead_tokens_mean=self.overhead_tokens,
                   latency_s_per_answer=self.latency_s,
                   by_source=self.by_source, engine=self.engine, note=self.note)
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
        group = failures.setdefault(kind, {"count": 0, "example": {
            "question": s.item.question[:300], "answer": s.gen.text[:300], "detail": detail, "source": s.item.source}})
        group["count"] += 1
    failures = {k: failures[k] for k in FAILURE_KINDS if k in failures}
    by_source: dict[str, dict[str, Any]] = {}
    for src in sorted({s.item.source for s in scored}):
        sub = [s for s in scored if s.item.source == src]
        by_source[src] = {"validity": Rate(sum(s.valid for s in sub), len(sub)).to_dict(),
                          "fields": Rate(sum(s.fields[0] for s in sub), sum(s.fields[1] for s in sub)).to_dict()}
    mean = statistics.fmean
    return SystemResult(
        name=name, label=SYSTEM_LABELS.get(name, name), n=n,
        parse=Rate(sum(s.parsed for s in scored), n), validity=Rate(sum(s.valid for s in scored), n),
        fields=Rate(sum(s.fields[0] for s in scored), sum(s.fields[1] for s in scored)),
        exact=Rate(sum(s.exact for s in scored), n), failures=failures,
        prompt_tokens=mean([s.gen.prompt_tokens for s in scored]) if n else 0.0,
        completion_tokens=mean([s.gen.completion_tokens for s in scored]) if n else 0.0,
        latency_s=mean([s.gen.seconds for s in scored]) if n else 0.0,
        by_source=by_source, engine=engine, note=note,
        overhead_tokens=mean([s.gen.prompt_tokens - question_tokens(s.item.question) for s in scored])
        if n and question_tokens is not None else None)


