"""`schemagen eval`: how often a format specialist answers with valid JSON, against baselines, with a gate.

    report = evaluate("adapters/agent_status", n=300, target=0.999)
    report.adapter.validity.rate, report.gate.passed

Inputs are the dataset's held-out test split, then property-based inputs (hypothesis-jsonschema
instances rendered as questions). Systems: the adapter (short prompt, free decoding), the base model
with the schema in its prompt, and the base model under the schema's grammar (constrained decoding).
The metric and gate logic are pure functions (`wilson`, `classify_failure`, `field_match`, `gate`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import SchemagenError
from .questions import leaves
from .schema import Schema, schema_from_dict, schema_hash

Z95 = 1.959963984540054
ADAPTER, PROMPTED, CONSTRAINED = "adapter", "base+schema-prompt", "constrained"
SYSTEM_LABELS = {ADAPTER: "adapter (no schema in prompt)", PROMPTED: "base, schema in prompt",
                 CONSTRAINED: "base, schema grammar (constrained)"}
FAILURE_KINDS = ("not_json", "truncated", "missing_required", "wrong_type", "enum", "bounds",
                 "pattern_format", "extra_property", "other")
_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
           "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "minContains",
           "maxContains", "uniqueItems"}
_KIND_OF = {"required": "missing_required", "dependentRequired": "missing_required", "type": "wrong_type",
            "enum": "enum", "const": "enum", "pattern": "pattern_format", "format": "pattern_format",
            "additionalProperties": "extra_property", "unevaluatedProperties": "extra_property",
            **dict.fromkeys(_BOUNDS, "bounds")}


# -- pure metric and gate functions ----------------------------------------------------------------


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
    from .testing import same_scalar as _same

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


# -- inputs ----------------------------------------------------------------------------------------


@dataclass
class Item:
    """One evaluation input: a question and the gold JSON value its answer must equal."""

    question: str
    gold: Any
    source: str  # "test" or "hypothesis"


@dataclass
class Generation:
    """One system's raw answer to one item."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated: bool = False
    seconds: float = 0.0


# A generator answers a batch of items; evaluate() calls it with successive batches.
Generator = Callable[[Sequence[Item]], list[Generation]]


def hypothesis_instances(schema: Schema, count: int, seed: int, *, realistic: bool = True) -> list[Any]:
    """`count` distinct schema instances, reproducible for a given seed (raises on unsupported schemas)."""
    if count <= 0:
        return []
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    from .schema import canonical_json
    from .testing import instances

    strategy = instances(schema, realistic=realistic)
    found: dict[str, Any] = {}
    for attempt in range(4):
        drawn: list[Any] = []

        @hseed(seed * 7919 + attempt)
        @settings(database=None, max_examples=max(20, 2 * count + 10), deadline=None, derandomize=False,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @given(strategy)
        def collect(value: Any) -> None:
            drawn.append(value)  # noqa: B023  (runs before the next loop turn rebinds it)

        collect()
        for value in drawn:
            found.setdefault(canonical_json(value), value)
        if len(found) >= count:
            break
    return list(found.values())[:count]


def hypothesis_items(schema: Schema, count: int, seed: int, *, realistic: bool = True,
                     shuffle: float = 0.0) -> list[Item]:
    """Property-based items: instances rendered as faithful questions (seeded, reproducible), with the
    field order the dataset's questions used (`shuffle`, from its manifest)."""
    from .questions import missing_facts, render_question

    items = []
    for i, value in enumerate(hypothesis_instances(schema, count, seed, realistic=realistic)):
        question = render_question(value, schema, random.Random(seed * 1_000_003 + i), shuffle)
        if not missing_facts(question, value):
            items.append(Item(question, value, "hypothesis"))
    return items


def test_items(dataset: Path) -> list[Item]:
    """The held-out test split as items (question = the last user turn)."""
    from .dataset import load_split

    path = dataset / "test.jsonl"
    if not path.exists():
        raise SchemagenError("no held-out test split (test.jsonl)", dataset)
    items = []
    for messages, answer in load_split(dataset, "test"):
        user = [m["content"] for m in messages if m.get("role") == "user"]
        try:
            gold = json.loads(answer)
        except ValueError:
            raise SchemagenError("a test answer is not valid JSON", path) from None
        items.append(Item(user[-1] if user else messages[-1]["content"], gold, "test"))
    return items


# -- the adapter -----------------------------------------------------------------------------------


@dataclass
class AdapterMeta:
    """What `schemagen.json` says about an adapter, checked."""

    path: Path
    meta: dict[str, Any]
    schema: Schema
    dataset: Path
    base: str
    system_prompt: str | None

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)


def _resolve_dir(value: str, adapter_dir: Path) -> Path:
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    alt = adapter_dir / p
    return alt if alt.exists() else p


def load_adapter_meta(adapter_dir: str | Path, data: str | Path | None = None,
                      base: str | None = None) -> AdapterMeta:
    """Read and check an adapter's `schemagen.json` and its dataset's manifest (one-line errors)."""
    from .dataset import load_manifest

    path = Path(adapter_dir)
    if not path.is_dir():
        raise SchemagenError("no such adapter directory", path)
    meta_path = path / "schemagen.json"
    if not meta_path.is_file():
        raise SchemagenError("no schemagen.json (not an adapter made by `schemagen train`)", path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"unreadable: {str(exc).splitlines()[0]}", meta_path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("schema"), dict):
        raise SchemagenError("no `schema` object", meta_path)
    schema = schema_from_dict(meta["schema"], path=None)
    stated = meta.get("schema_sha256")
    if stated and stated != schema.sha256:
        raise SchemagenError("schema_sha256 does not match the schema it holds", meta_path)
    if data is not None:
        dataset = Path(data)
    else:
        ds = meta.get("dataset")
        ds_path = ds.get("path") if isinstance(ds, dict) else ds if isinstance(ds, str) else None
        if not ds_path:
            raise SchemagenError("schemagen.json names no dataset: pass --data DIR", meta_path)
        dataset = _resolve_dir(str(ds_path), path)
    if not dataset.is_dir():
        raise SchemagenError("dataset directory not found (pass --data DIR)", dataset)
    manifest = load_manifest(dataset)
    ds_hash = (manifest.get("schema") or {}).get("sha256") if isinstance(manifest.get("schema"), dict) else None
    if ds_hash and ds_hash != schema.sha256:
        raise SchemagenError(f"dataset schema {str(ds_hash)[:12]} does not match the adapter's schema "
                             f"{schema.sha256[:12]}: wrong --data for this adapter", dataset)
    if base is None:
        bp = str(meta.get("base_model_path") or "")
        base = bp if bp and Path(bp).is_dir() else str(meta.get("base_model") or "") or None
    if base is None:
        raise SchemagenError("schemagen.json names no base model: pass --base", meta_path)
    sp = meta.get("system_prompt")
    return AdapterMeta(path, meta, schema, dataset, base, sp if isinstance(sp, str) and sp else None)


class ModelRunner:
    """The base model with the adapter loaded once; batched generators for the three systems."""

    def __init__(self, info: AdapterMeta, *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0, threads: int | None = None, dtype: str = "auto") -> None:
        from .decoding import stop_ids_of
        from .models import load_model

        if not (info.path / "adapter_config.json").is_file():
            raise SchemagenError("no adapter_config.json (PEFT weights missing)", info.path)
        loaded = load_model(info.base, threads=threads, dtype=dtype)
        self.tokenizer = loaded.tokenizer
        self.hf_model = loaded.model
        try:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.hf_model, str(info.path), is_trainable=False)
        except Exception as exc:  # PEFT raises many types for a broken adapter
            raise SchemagenError(f"adapter does not load: {str(exc).splitlines()[0][:200]}", info.path) from None
        self.model.eval()
        self.info = info
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.stop_ids = stop_ids_of(self.hf_model, self.tokenizer)
        self._outlines: Any = None
        self._merged = False
        self.engine: str | None = None
        self.engine_failures: list[str] = []

    def _sampling(self) -> dict[str, Any]:
        if self.temperature > 0:
            return {"do_sample": True, "temperature": self.temperature}
        return {"do_sample": False}

    def adapter_messages(self, question: str) -> list[dict[str, str]]:
        from .prompts import task_messages

        messages = task_messages(question)
        if self.info.system_prompt:
            messages[0] = {"role": "system", "content": self.info.system_prompt}
        return messages

    def _run(self, messages: Sequence[list[dict[str, str]]], adapter: bool,
             constraint: Callable[[], Any] | None = None) -> list[Generation]:
        """Batched decoding (`decoding.decode`) with the adapter merged in, or disabled for a baseline."""
        from .decoding import chat_ids, decode, pad_id_of

        tok = self.tokenizer
        ids = [chat_ids(tok, m) for m in messages]
        if adapter and not self._merged:
            self.model.merge_adapter()  # the LoRA product folded into the weights: base-model speed
            self._merged = True
        ctx = contextlib.nullcontext() if adapter else self.model.disable_adapter()
        with ctx:
            decoded = decode(self.model.get_base_model(), ids, stop_ids=self.stop_ids, pad_id=pad_id_of(tok),
                             max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed,
                             batch_size=len(ids), constraint=constraint)
        if not adapter:
            self._merged = False  # PEFT unmerges a disabled adapter
        return [Generation(tok.decode(d.tokens, skip_special_tokens=True), d.prompt_tokens, len(d.tokens),
                           d.truncated or bool(d.error), d.seconds) for d in decoded]

    def question_tokens(self, question: str) -> int:
        """Tokens of the question alone (prompt minus this = template and instructions)."""
        return len(self.tokenizer(question, add_special_tokens=False)["input_ids"])

    def adapter_generator(self, batch: Sequence[Item]) -> list[Generation]:
        return self._run([self.adapter_messages(it.question) for it in batch], adapter=True)

    def prompted_generator(self, batch: Sequence[Item]) -> list[Generation]:
        from .prompts import schema_messages

        return self._run([schema_messages(it.question, self.info.schema.raw) for it in batch], adapter=False)

    def constrained_processor(self) -> Any:
        """(outlines model, processor) for the schema's grammar; raises SchemagenError when none compiles."""
        if self._outlines is None:
            import outlines

            from .engines import EngineSet
            from .grammar import decoding_schema

            om = outlines.from_transformers(self.hf_model, self.tokenizer)
            engines = EngineSet(om)
            engine, processor, failures = engines.pick(decoding_schema(self.info.schema))
            self._outlines = (om, processor, engines.get(engine).row_constraint(processor))
            self.engine, self.engine_failures = engine, failures
        return self._outlines

    def constrained_generator(self, batch: Sequence[Item]) -> list[Generation]:
        from .prompts import schema_messages

        om, processor, rows = self.constrained_processor()
        messages = [schema_messages(it.question, self.info.schema.raw) for it in batch]
        if rows is not None:
            gens = self._run(messages, adapter=False, constraint=rows)
        else:
            gens = self._constrained_outlines(om, processor, messages)
        for g in gens:  # under the grammar, output that does not parse can only be a cut-off
            g.truncated = g.truncated or not parse_json(g.text)[0]
        return gens

    def _constrained_outlines(self, om: Any, processor: Any,
                              messages: list[list[dict[str, str]]]) -> list[Generation]:
        """Engines without a row matcher (outlines-core): outlines and `transformers.generate`."""
        import torch
        from outlines.generator import SteerableGenerator
        from outlines.inputs import Chat

        prompt_tokens = [len(self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=True,
                                                                return_dict=True)["input_ids"]) for m in messages]
        generator = SteerableGenerator.from_processor(om, processor)
        torch.manual_seed(self.seed)
        t0 = time.perf_counter()
        with self.model.disable_adapter(), torch.inference_mode():
            texts = generator.batch([Chat(m) for m in messages], max_new_tokens=self.max_new_tokens,
                                    pad_token_id=self.tokenizer.pad_token_id, **self._sampling())
        self._merged = False
        per = (time.perf_counter() - t0) / len(messages)
        gens = []
        for text, p in zip(texts, prompt_tokens, strict=True):
            n = len(self.tokenizer.encode(str(text), add_special_tokens=False))
            gens.append(Generation(str(text), p, min(n, self.max_new_tokens), n >= self.max_new_tokens, per))
        return gens


# -- scoring ---------------------------------------------------------------------------------------


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


# -- the report ------------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything one eval run measured."""

    adapter_path: str
    adapter_name: str
    schema_title: str
    schema_sha256: str
    dataset: str
    n: int
    inputs: dict[str, int]
    systems: dict[str, SystemResult]
    gate: Gate
    settings: dict[str, Any]
    notes: list[str]
    answers: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    out_dir: str = ""

    @property
    def adapter(self) -> SystemResult:
        return self.systems[ADAPTER]

    @property
    def exit_code(self) -> int:
        return self.gate.exit_code

    def _baseline(self) -> SystemResult | None:
        other = self.systems.get(PROMPTED) or self.systems.get(CONSTRAINED)
        return other if other is not None and other.prompt_tokens else None

    def prompt_reduction(self) -> tuple[float, float, float] | None:
        """(adapter tokens, schema-prompt tokens, % shorter) when a schema-prompt baseline ran."""
        other = self._baseline()
        if other is None:
            return None
        a, b = self.adapter.prompt_tokens, other.prompt_tokens
        return a, b, 100.0 * (1 - a / b)

    def overhead_reduction(self) -> tuple[float, float, float] | None:
        """The same for the prompt minus the question: what the schema costs on every request."""
        other, a = self._baseline(), self.adapter.overhead_tokens
        if other is None or a is None or not other.overhead_tokens:
            return None
        return a, other.overhead_tokens, 100.0 * (1 - a / other.overhead_tokens)

    def to_dict(self) -> dict[str, Any]:
        red, over = self.prompt_reduction(), self.overhead_reduction()
        return {
            "format": "schemagen-eval/1", "created": self.created, "adapter": self.adapter_path,
            "name": self.adapter_name, "schema_title": self.schema_title, "schema_sha256": self.schema_sha256,
            "dataset": self.dataset, "n": self.n, "inputs": self.inputs, "settings": self.settings,
            "systems": {k: v.to_dict() for k, v in self.systems.items()},
            "gate": asdict(self.gate),
            "prompt_reduction": None if red is None else
            {"adapter_tokens": red[0], "schema_prompt_tokens": red[1], "percent_shorter": red[2]},
            "overhead_reduction": None if over is None else
            {"adapter_tokens": over[0], "schema_prompt_tokens": over[1], "percent_shorter": over[2]},
            "notes": self.notes, "answers": self.answers,
        }

    def summary(self, report_path: str) -> dict[str, Any]:
        """The short `eval.json` the registry reads."""
        v = self.adapter.validity
        return {"validity": v.rate, "n": v.n, "ci95": list(v.ci95), "target": self.gate.target,
                "passed": self.gate.passed, "report": report_path, "created": self.created,
                "field_accuracy": self.adapter.fields.rate, "strict": self.gate.strict}

    def table(self) -> list[list[str]]:
        rows = [["system", "n", "parse", "validity [95% CI]", "field acc.", "exact", "prompt tok", "s/answer"]]
        for s in self.systems.values():
            rows.append([s.label + (f" [{s.engine}]" if s.engine else ""), str(s.n), f"{s.parse.rate:.3f}",
                         s.validity.text(), f"{s.fields.rate:.3f}", f"{s.exact.rate:.3f}",
                         f"{s.prompt_tokens:.0f}", f"{s.latency_s:.3f}"])
        return rows

    def text(self) -> str:
        """The console report."""
        rows = self.table()
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = [f"schemagen eval: {self.adapter_name} ({self.schema_title}), n={self.n} "
                 f"({', '.join(f'{k} {v}' for k, v in self.inputs.items())})", ""]
        for i, r in enumerate(rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        red = self.prompt_reduction()
        if red is not None:
            lines += ["", f"adapter prompt: {red[0]:.0f} tokens vs {red[1]:.0f} with the schema in the prompt "
                          f"({red[2]:.0f}% shorter)"]
            over = self.overhead_reduction()
            if over is not None:
                lines.append(f"beyond the question itself: {over[0]:.0f} tokens vs {over[1]:.0f} "
                             f"({over[2]:.0f}% shorter)")
        fails = self.adapter.failures
        if fails:
            lines += ["", "adapter failures:"]
            for kind, g in fails.items():
                lines.append(f"  {kind}: {g['count']}  e.g. {g['example']['detail']}  "
                             f"answer {json.dumps(g['example']['answer'][:80])}")
        for note in self.notes:
            lines.append(f"note: {note}")
        lines += ["", self.gate.message]
        return "\n".join(lines)

    def markdown(self) -> str:
        """report.md: the table, prompt savings, failures with examples, the gate."""
        rows = self.table()
        md = [f"# Eval: {self.adapter_name}", "",
              f"- schema: {self.schema_title} (`{self.schema_sha256[:12]}`)", f"- adapter: `{self.adapter_path}`",
              f"- dataset: `{self.dataset}`",
              f"- inputs: n={self.n} ({', '.join(f'{k} {v}' for k, v in self.inputs.items())})",
              f"- settings: {', '.join(f'{k}={v}' for k, v in self.settings.items())}",
              f"- created: {self.created}", "", "| " + " | ".join(rows[0]) + " |",
              "|" + "---|" * len(rows[0])]
        md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        red = self.prompt_reduction()
        if red is not None:
            md += ["", f"The adapter's prompt is **{red[2]:.0f}% shorter**: {red[0]:.0f} tokens instead of "
                       f"{red[1]:.0f} with the schema in the prompt."]
            over = self.overhead_reduction()
            if over is not None:
                md[-1] += (f" Beyond the question itself (chat template and instructions, what every request "
                           f"pays), {over[0]:.0f} tokens instead of {over[1]:.0f}: **{over[2]:.0f}% shorter**.")
        md += ["", "Validity = valid JSON that validates against the schema (formats checked); field acc. = "
                   "share of gold leaf values reproduced at the same path; intervals are Wilson 95%."]
        for s in self.systems.values():
            if not s.failures:
                continue
            md += ["", f"## Failures: {s.label}", "", "| kind | count | example |", "|---|---|---|"]
            for kind, g in s.failures.items():
                ex = g["example"]
                cell = f"{ex['detail']}<br>answer: `{ex['answer'][:120]}`".replace("|", "\\|").replace("\n", " ")
                md.append(f"| {kind} | {g['count']} | {cell} |")
        if self.notes:
            md += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        md += ["", "## Gate", "", self.gate.message, ""]
        return "\n".join(md)

    def chart(self, path: Path) -> None:
        """report.png: validity and field accuracy per system with intervals; prompt tokens."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        systems = list(self.systems.values())
        names = [s.name for s in systems]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
        x = list(range(len(systems)))
        for offset, metric, colour in ((-0.2, "validity", "#2b8cbe"), (0.2, "fields", "#fdae6b")):
            rates = [getattr(s, metric).rate for s in systems]
            lo = [max(0.0, r - getattr(s, metric).ci95[0]) for r, s in zip(rates, systems, strict=True)]
            hi = [max(0.0, getattr(s, metric).ci95[1] - r) for r, s in zip(rates, systems, strict=True)]
            ax1.bar([i + offset for i in x], rates, 0.4, yerr=[lo, hi], capsize=4, color=colour,
                    label="validity" if metric == "validity" else "field accuracy")
        if self.gate.target is not None:
            ax1.axhline(self.gate.target, color="red", linestyle="--", linewidth=1,
                        label=f"target {self.gate.target:g}")
        ax1.set_xticks(x, names)
        ax1.set_ylim(0, 1.05)
        ax1.set_title(f"{self.adapter_name}: n={self.n} (95% Wilson)")
        ax1.legend(loc="lower right", fontsize=8)
        ax2.bar(x, [s.prompt_tokens for s in systems], color="#74c476")
        ax2.set_xticks(x, names, rotation=15)
        ax2.set_title("prompt tokens per answer")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def write(self, out_dir: str | Path, adapter_dir: str | Path | None = None) -> dict[str, Path]:
        """Write report.json/.md/.png into `out_dir` and eval.json into the adapter directory."""
        from .dataset import atomic_write_json, atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
        self.out_dir = str(out)
        atomic_write_json(paths["json"], self.to_dict())
        atomic_write_text(paths["md"], self.markdown())
        self.chart(paths["png"])
        if adapter_dir is not None:
            paths["eval"] = Path(adapter_dir) / "eval.json"
            atomic_write_json(paths["eval"], self.summary(str(paths["json"])))
        return paths


# -- the run ---------------------------------------------------------------------------------------


def _batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_system(generate: Generator, items: Sequence[Item], batch_size: int,
               progress: Callable[[int], None] | None = None) -> list[Generation]:
    """Answer all items in batches; a generator must return one answer per item."""
    gens: list[Generation] = []
    for batch in _batches(items, batch_size):
        out = generate(batch)
        if len(out) != len(batch):
            raise RuntimeError(f"generator returned {len(out)} answers for {len(batch)} inputs")
        gens.extend(out)
        if progress is not None:
            progress(len(batch))
    return gens


def subset(items: Sequence[Item], k: int) -> list[Item]:
    """k items spread evenly over `items` (keeps the held-out/hypothesis mix)."""
    n = len(items)
    if k >= n:
        return list(items)
    return [items[(i * n) // k] for i in range(k)]


def select_inputs(schema: Schema, dataset: Path, n: int, seed: int, hypothesis_share: float | None,
                  realistic: bool = True) -> tuple[list[Item], dict[str, int], list[str]]:
    """Held-out items first, hypothesis items for the rest (or `hypothesis_share` of n)."""
    notes: list[str] = []
    held = test_items(dataset)
    if hypothesis_share is None:
        n_test = min(n, len(held))
    else:
        n_test = min(len(held), n - round(n * hypothesis_share))
    n_hyp = n - n_test
    hyp: list[Item] = []
    if n_hyp > 0:
        try:
            from .dataset import load_manifest

            settings = load_manifest(dataset).get("settings") or {}
            shuffle = float(settings.get("shuffle_fields") or 0.0) if isinstance(settings, dict) else 0.0
            hyp = hypothesis_items(schema, n_hyp, seed, realistic=realistic, shuffle=shuffle)
        except Exception as exc:  # hypothesis-jsonschema raises many types for schemas it cannot handle
            why = " ".join(str(exc).split())[:160] or type(exc).__name__
            notes.append(f"hypothesis-jsonschema cannot generate instances of this schema ({why}): "
                         f"held-out inputs only")
            hyp = []
        if len(hyp) < n_hyp and hyp:
            notes.append(f"hypothesis produced {len(hyp)} distinct faithful instances of the {n_hyp} asked")
        if not hyp and not notes:
            notes.append("hypothesis produced no instances of this schema: held-out inputs only")
    if not hyp:
        n_test = min(n, len(held))
    items = held[:n_test] + hyp
    if len(items) < n:
        notes.append(f"only {len(items)} inputs available of the {n} asked (test split has {len(held)})")
    counts = {"test": n_test, "hypothesis": len(hyp)}
    return items, counts, notes


def evaluate(adapter_dir: str | Path, *, n: int = 300, target: float | None = None, strict: bool = False,
             data: str | Path | None = None, base: str | None = None, seed: int = 0,
             hypothesis_share: float | None = None, baselines: bool = True, baseline_n: int | None = None,
             batch_size: int = 32, max_new_tokens: int = 256, temperature: float = 0.0,
             realistic: bool = True, out_dir: str | Path | None = None, write: bool = True,
             show_progress: bool = False, threads: int | None = None, dtype: str = "auto",
             generators: dict[str, Generator] | None = None) -> Report:
    """Evaluate an adapter: inputs, systems, metrics, gate; write the report unless `write=False`.

    `generators` replaces the model-backed systems (`adapter`, and optionally `base+schema-prompt`
    and `constrained`): tests use it to score known answers without loading a model.
    """
    check_target(target)
    if n < 1:
        raise SchemagenError(f"-n must be at least 1, got {n}")
    if hypothesis_share is not None and not 0 <= hypothesis_share <= 1:
        raise SchemagenError(f"--hypothesis-share must be in [0, 1], got {hypothesis_share}")
    if max_new_tokens < 1 or batch_size < 1:
        raise SchemagenError("--max-new-tokens and --batch-size must be at least 1")
    info = load_adapter_meta(adapter_dir, data, base)
    schema = info.schema
    items, counts, notes = select_inputs(schema, info.dataset, n, seed, hypothesis_share, realistic)
    if not items:
        raise SchemagenError("no inputs: the test split is empty and no hypothesis instances were drawn",
                             info.dataset)
    bn = min(len(items), baseline_n if baseline_n is not None else min(len(items), 100))
    base_items = subset(items, bn) if baselines and bn > 0 else []

    runner: ModelRunner | None = None
    if generators is None:
        runner = ModelRunner(info, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                             threads=threads, dtype=dtype)
        generators = {ADAPTER: runner.adapter_generator}
        if base_items:
            generators[PROMPTED] = runner.prompted_generator
            generators[CONSTRAINED] = runner.constrained_generator
    # Baselines first: the adapter is then merged into the weights for its own (longest) run.
    plan: list[tuple[str, Sequence[Item]]] = []
    if base_items:
        plan += [(name, base_items) for name in (PROMPTED, CONSTRAINED) if name in generators]
    plan.append((ADAPTER, items))

    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(x) for _, x in plan), desc="eval", unit="answer", leave=False)
    systems: dict[str, SystemResult] = {}
    answers: list[dict[str, Any]] = []
    try:
        for name, its in plan:
            if bar is not None:
                bar.set_description(name)
            engine = note = None
            if name == CONSTRAINED and runner is not None:
                try:
                    runner.constrained_processor()
                except SchemagenError as exc:
                    notes.append(f"constrained baseline skipped: {exc}")
                    if bar is not None:
                        bar.update(len(its))
                    continue
                engine = runner.engine
                if runner.engine_failures:
                    note = "; ".join(runner.engine_failures)[:300]
            gens = run_system(generators[name], its, batch_size, bar.update if bar is not None else None)
            scored = [score(it, g, schema) for it, g in zip(its, gens, strict=True)]
            systems[name] = summarize(name, scored, engine=engine, note=note,
                                      question_tokens=runner.question_tokens if runner is not None else None)
            if name == ADAPTER:
                answers = [{"source": s.item.source, "question": s.item.question, "gold": s.item.gold,
                            "answer": s.gen.text, "valid": s.valid, "failure": s.failure and s.failure[0],
                            "fields": list(s.fields), "prompt_tokens": s.gen.prompt_tokens,
                            "truncated": s.gen.truncated} for s in scored]
    finally:
        if bar is not None:
            bar.close()
    systems = {name: systems[name] for name in (ADAPTER, PROMPTED, CONSTRAINED) if name in systems}
    a = systems[ADAPTER].validity
    result = gate(a.rate, a.ci95[0], a.n, target, strict)
    report = Report(
        adapter_path=str(info.path), adapter_name=info.name, schema_title=schema.title,
        schema_sha256=schema.sha256, dataset=str(info.dataset), n=len(items), inputs=counts, systems=systems,
        gate=result, notes=notes, answers=answers,
        settings={"seed": seed, "max_new_tokens": max_new_tokens, "temperature": temperature,
                  "batch_size": batch_size, "baseline_n": len(base_items), "base": info.base,
                  "strict": strict, "realistic_hypothesis": realistic},
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    if write:
        report.write(Path(out_dir) if out_dir is not None else info.path / "report", info.path)
    return report
