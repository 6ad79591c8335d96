"""The synthesis pipeline: teacher instance under constraints -> validate/repair -> question -> round trip.

1. The teacher writes a realistic instance under grammar-constrained decoding (titles and descriptions
   in its prompt steer the content, a random topic per candidate spreads it).
2. Every candidate is validated against the *original* schema with the format checker; bounds an
   engine ignored are repaired; what stays invalid is rejected with its reason.
3. Free-text strings are tidied and judged plausible (`plausible`); enum and boolean values are drawn
   again (`balance`), list lengths spread, a share of free-text strings swapped for drawn phrases of
   1-8 words or identifiers (`phrases`: the teacher writes two plain words), some dates' years drawn
   over 1900-2099 and some strings given codes among their words (`widen`: what the teacher never
   writes), and some optional fields left out. The question is written from the instance and the
   schema's words, mostly in prose (`questions`, `prose`), and the round trip is checked: every value of
   the answer must be recoverable from the question (faithfulness).
   With `--paraphrase SHARE`, that share of accepted template questions is rewritten by the teacher and
   a rewrite kept only when the same round trip holds (`paraphrase`); the template stays otherwise.
4. Exact and near-duplicates are dropped; accepted pairs are appended and fsynced one by one to
   train/val/test (80/10/10 by acceptance order), so an interrupted run resumes with nothing lost.

`--inputs FILE` labels the user's own requests first (`label`: answered under the grammar, validated,
grounded in the request); `-n` synthetic pairs top up the total. `--focus REPORT.json` leans new
candidates toward what an eval found failing (`focus`) and freezes the test split: new pairs go to
train/val only, so a before/after eval reads the same held-out inputs.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..dataset import (
    MANIFEST,
    REJECTED,
    SPLITS,
    JsonlAppender,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    split_for,
)
from ..engines import EngineError
from ..errors import SchemagenError
from ..prompts import label_messages, pair_record, teacher_messages
from ..schema import Schema, canonical_json, load_schema
from ..teachers import Teacher, make_teacher
from . import paraphrase
from .balance import (
    FieldPool,
    NumberPool,
    ShapePool,
    drop_optional,
    fill_optional,
    rebalance,
    vary_numbers,
    vary_shape,
)
from .diversity import Diversity, NearDuplicates
from .focus import Focus
from .grammar import Limits, decoding_schema
from .label import SOURCE as INPUTS
from .label import file_summary, judge_answer, read_requests
from .phrases import rephrase
from .plausible import implausible, tidy_strings
from .questions import SchemaNav, answer_text, missing_facts, render, title_of
from .repair import repair
from .widen import widen

TOPICS = [
    "a small business", "a hospital", "a university lab", "an online shop", "a logistics company",
    "a bank", "a video game studio", "a city council", "a farm", "a airline", "a research team",
    "a restaurant chain", "a software startup", "a museum", "a football club", "a library",
    "a weather station", "a hotel", "a cloud platform", "a school", "a car factory", "a newspaper",
    "a music festival", "a pharmacy", "a space agency", "a charity", "a law firm", "a bakery",
    "an energy utility", "a film crew", "a shipping port", "a data centre", "a travel agency",
]


# The recipe search (scripts/bench_recipe.py, docs/BENCHMARKS.md): on hand-written requests, 600 distinct
# pairs for 2 epochs beat 300 pairs for 4 (same steps); the demo fits its 20 minutes with it.
DEFAULT_PAIRS = 600


@dataclass
class GenerateConfig:
    """How many pairs, from which teacher and engine, and the decoding budget."""

    n: int = DEFAULT_PAIRS
    seed: int = 0
    teacher: str = "smollm2"
    engine: str = "auto"
    batch_size: int = 32
    dtype: str = "auto"  # teacher weights: bfloat16 where the CPU has AVX512-BF16/AMX, else float32
    temperature: float = 1.0
    max_new_tokens: int = 320
    max_candidates: int | None = None  # default 4n + 64
    overwrite: bool = False
    allow_remote_refs: bool = False
    threads: int | None = None
    workers: int = 0  # local teacher processes of 1 thread each; 0 = one per core (1 with CUDA)
    limits: Limits = field(default_factory=Limits)
    progress: bool = True
    time_budget: float | None = None  # seconds; stop early (resumable) when spent
    balance: bool = True  # draw enum/boolean values again uniformly (`balance.rebalance`)
    vary_shape: bool = True  # list lengths drawn uniformly, free text lowercased or lengthened (`balance.vary_shape`)
    lengthen: float = 0.0  # with vary_shape: chance a free-text string gets another pair's words added
    phrases: float = 0.6  # chance a free-text string is swapped for a drawn phrase or identifier (`generate.phrases`)
    vary_numbers: bool = False  # a number that fills over 10% of its field drawn again (`balance.vary_numbers`)
    shuffle_fields: float = 0.0  # share of list-style questions stating top-level fields in a random order
    plausible: bool = True  # reject free-text strings that are debris or placeholders (`generate.plausible`)
    prose_share: float = 0.8  # share of questions written in prose (`generate.prose`); the rest are lists
    fill_optional: float = 1.0  # top of the chance (per instance, uniform below it) that an optional property
    # the teacher left out is added from another accepted instance (`balance.fill_optional`)
    drop_optional: float = 0.25  # chance that each optional property is left out of an instance
    widen: float = 0.15  # chance each free-text string gets codes among its words (`generate.widen`)
    widen_dates: float = 0.15  # chance each date or date-time gets its year drawn over 1900-2099 (`generate.widen`)
    inputs: list[str] = field(default_factory=list)  # the user's request files, labelled before -n tops up
    focus: str | None = None  # an eval report.json whose failures new candidates lean toward
    focus_share: float = 0.75  # share of new candidates bent toward a failing path (and of styles drawn)
    paraphrase: float | None = None  # share of template questions the teacher rewrites; None: by teacher kind


@dataclass
class _State:
    accepted: int = 0
    candidates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    faithful: int = 0
    faithfulness_checked: int = 0
    repaired: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_seconds: float = 0.0
    splits: Counter[str] = field(default_factory=Counter)
    styles: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    inputs_done: set[str] = field(default_factory=set)  # keys of requests answered (accepted or rejected)
    inputs: Counter[str] = field(default_factory=Counter)  # accepted / teacher / file / rejected
    inputs_rejected: Counter[str] = field(default_factory=Counter)
    focus: dict[str, Counter[str]] = field(default_factory=dict)  # round -> "pairs" and leaned paths
    paraphrase: Counter[str] = field(default_factory=Counter)  # asked / kept
    paraphrase_rejected: Counter[str] = field(default_factory=Counter)


class _Run:
    """One (possibly resumed) generation into one directory."""

    def __init__(self, schema: Schema, out: Path, cfg: GenerateConfig, teacher: Teacher | None,
                 requests: list[Any] | None = None, focus: Focus | None = None) -> None:
        self.schema, self.out, self.cfg, self.teacher = schema, out, cfg, teacher
        self.requests, self.focus = requests or [], focus
        self.state = _State()
        self.dups = NearDuplicates()
        self.instances: set[str] = set()
        self.diversity = Diversity()
        self.shapes = ShapePool(schema)
        self.numbers = NumberPool()
        self.fields = FieldPool(schema)
        self.previous: dict[str, Any] = {}
        self.engine = ""
        self.compile_seconds = 0.0
        self.engine_failures: list[str] = []
        self.decoding: dict[str, Any] = {}
        self.nav = SchemaNav(schema)
        self.input_files: list[dict[str, Any]] = []
        self.focus_start = 0  # pairs the dataset held when this focus round began
        self.t0 = self.started = 0.0
        self.writers: dict[str, JsonlAppender] = {}
        self.rejected: Any = None
        self.bar: Any = None

    # ---- resume -------------------------------------------------------------------------------
    def load_existing(self) -> None:
        manifest = self.out / MANIFEST
        if manifest.exists():
            try:
                self.previous = json.loads(manifest.read_text(encoding="utf-8"))
            except ValueError:
                self.previous = {}
            old = (self.previous.get("schema") or {}).get("sha256")
            if old and old != self.schema.sha256:
                raise SchemagenError("holds a dataset of another version of the schema; pass --overwrite "
                                     "to start again", self.out)
            self.state.wall_seconds = float(self.previous.get("wall_seconds", 0.0))
            tok = self.previous.get("tokens") or {}
            self.state.prompt_tokens = int(tok.get("prompt", 0))
            self.state.completion_tokens = int(tok.get("completion", 0))
            self.state.faithfulness_checked = int((self.previous.get("faithfulness") or {}).get("checked", 0))
            self.state.faithful = int((self.previous.get("faithfulness") or {}).get("faithful", 0))
            self.state.repaired = int((self.previous.get("counts") or {}).get("repaired", 0))
        last = -1
        for split in SPLITS:
            path = self.out / f"{split}.jsonl"
            if not path.exists():
                continue
            for _, rec in read_jsonl(path, strict=False):
                msgs = rec.get("messages") or []
                meta = rec.get("schemagen") or {}
                question, answer = msgs[-2]["content"], msgs[-1]["content"]
                self.dups.check(question)
                value = json.loads(answer)
                self.instances.add(canonical_json(value))
                self.diversity.add(question, value)
                self.shapes.add(value)
                self.numbers.add(value)
                self.fields.add(value)
                self.state.accepted += 1
                self.state.splits[split] += 1
                if meta.get("style"):
                    self.state.styles[str(meta["style"])] += 1
                self.count_source(meta)
                last = max(last, int(meta.get("candidate", last)))
        if (self.out / REJECTED).exists():
            for _, rec in read_jsonl(self.out / REJECTED, strict=False):
                self.count_rejected(rec)
                last = max(last, int(rec.get("candidate", last)))
        self.state.candidates = last + 1

    def count_rejected(self, rec: dict[str, Any]) -> None:
        """Count one rejected candidate: its reason, its request (inputs), the rewrite it was asked for."""
        s = self.state
        reason = str(rec.get("reason", "unknown")).split(":")[0]
        s.rejected[reason] += 1
        if rec.get("input"):
            s.inputs_done.add(str(rec["input"]))
            s.inputs["rejected"] += 1
            s.inputs_rejected[reason] += 1
        paraphrase.count(rec.get("paraphrase"), s.paraphrase, s.paraphrase_rejected, pair_kept=False)

    def count_source(self, meta: dict[str, Any]) -> None:
        """Count one accepted pair's source, its request (inputs), its rewrite and its focus round."""
        s = self.state
        s.sources[str(meta.get("source") or "template")] += 1
        paraphrase.count(meta.get("paraphrase"), s.paraphrase, s.paraphrase_rejected)
        if meta.get("input"):
            s.inputs_done.add(str(meta["input"]))
            s.inputs["accepted"] += 1
            s.inputs[str(meta.get("answered_by") or "teacher")] += 1
        if meta.get("focus"):
            counts = s.focus.setdefault(str(meta["focus"]), Counter())
            counts["pairs"] += 1
            if meta.get("leaned"):
                counts[str(meta["leaned"])] += 1

    @property
    def frozen_test(self) -> bool:
        """After a focus round the test split is the fixed held-out set: new pairs go to train/val."""
        return self.focus is not None or bool(self.previous.get("focus"))

    def next_split(self) -> str:
        if not self.frozen_test:
            return split_for(self.state.accepted)
        return "val" if (self.state.splits["train"] + self.state.splits["val"]) % 9 == 8 else "train"

    def pending_requests(self) -> list[Any]:
        return [r for r in self.requests if r.key not in self.state.inputs_done]

    # ---- one candidate ------------------------------------------------------------------------
    def judge(self, text: str, candidate: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(accepted record, None) or (None, rejected record) for one teacher completion."""
        rng = random.Random(f"{self.cfg.seed}:{candidate}:q")

        def reject(reason: str, **extra: Any) -> tuple[None, dict[str, Any]]:
            return None, {"candidate": candidate, "reason": reason, "output": text[:2000], **extra}

        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return reject(f"not JSON: {exc.msg} (truncated at max_new_tokens?)")
        repaired = False
        if not self.schema.is_valid(value):
            value, remaining = repair(value, self.schema)
            if remaining:
                return reject(f"invalid: {remaining[0]}", errors=remaining[:5])
            repaired = True
        tidied = tidy_strings(value, self.nav, None, self.decoding)
        if tidied != value and self.schema.is_valid(tidied):
            value = tidied
        problem = implausible(value, self.nav) if self.cfg.plausible else None
        if problem:
            return reject(f"implausible: {problem}")
        if self.cfg.balance:
            value = rebalance(value, self.schema, random.Random(f"{self.cfg.seed}:{candidate}:b"))
        if self.cfg.vary_shape:
            self.shapes.add(value)
            value = vary_shape(value, self.schema, random.Random(f"{self.cfg.seed}:{candidate}:s"), self.shapes,
                               extend=self.cfg.lengthen)
        if self.cfg.phrases:
            value = rephrase(value, self.schema, random.Random(f"{self.cfg.seed}:{candidate}:p"), self.cfg.phrases)
        if self.cfg.vary_numbers:
            value = vary_numbers(value, self.schema, random.Random(f"{self.cfg.seed}:{candidate}:n"), self.numbers)
        if self.cfg.fill_optional:
            self.fields.add(value)
            frng = random.Random(f"{self.cfg.seed}:{candidate}:g")
            value = fill_optional(value, self.schema, frng, self.fields, self.cfg.fill_optional * frng.random())
        if self.cfg.widen or self.cfg.widen_dates:
            value = widen(value, self.schema, random.Random(f"{self.cfg.seed}:{candidate}:w"), self.cfg.widen,
                          self.cfg.widen_dates)
        whole = value
        value = drop_optional(value, self.schema, random.Random(f"{self.cfg.seed}:{candidate}:o"),
                              self.cfg.drop_optional)
        leaned, style = None, None
        if self.focus is not None:
            frng = random.Random(f"{self.cfg.seed}:{candidate}:f")
            value, leaned = self.focus.apply(value, whole, frng)
            style = self.focus.style(frng)
        key = canonical_json(value)
        if key in self.instances:
            return reject("duplicate: same instance as an accepted pair")
        rendered = render(value, self.schema, rng, self.cfg.shuffle_fields, self.cfg.prose_share, style)
        question, answer = rendered.question, rendered.answer
        self.state.faithfulness_checked += 1
        missing = missing_facts(question, value, self.schema)
        if missing:
            return reject(f"not faithful: the question does not state {', '.join(missing[:3])}",
                          question=question)
        self.state.faithful += 1
        self.instances.add(key)  # the question's near-duplicate check comes in `admit`, after a rewrite
        return {"question": question, "answer": answer, "value": value, "style": rendered.style,
                "repaired": repaired, "leaned": leaned, "key": key, "source": "template"}, None

    def admit(self, ok: dict[str, Any]) -> str | None:
        """Book an accepted record's question for the near-duplicate check and diversity; the reason
        when it is a near-duplicate of an accepted question."""
        dup = self.dups.check(ok["question"])
        if dup:
            return f"duplicate: {dup}"
        self.diversity.add(ok["question"], ok.get("value"))
        return None

    def judge_request(self, item: Any, text: str | None, candidate: int) -> tuple[dict[str, Any] | None,
                                                                                dict[str, Any] | None]:
        """(accepted record, None) or (None, rejected record) for one of the user's requests: its own
        answer (`text` None) or the teacher's."""
        if text is None:
            value, repaired, problem = item.gold, False, None
        else:
            value, repaired, problem = judge_answer(text, item.question, self.schema)
        dup = None if problem else self.admit({"question": item.question, "value": value})
        if problem or dup:
            return None, {"candidate": candidate, "reason": problem or dup, "input": item.key,
                          "file": item.source, "question": item.question[:2000], "output": (text or "")[:2000]}
        self.instances.add(canonical_json(value))
        return {"question": item.question, "answer": answer_text(value, self.schema), "style": item.style or INPUTS,
                "repaired": repaired, "input": item.key, "file": item.source,
                "answered_by": "file" if text is None else "teacher"}, None

    # ---- the loop -----------------------------------------------------------------------------
    def prompt_for(self, candidate: int) -> list[dict[str, str]]:
        rng = random.Random(f"{self.cfg.seed}:{candidate}:topic")
        words = [w for w in _schema_words(self.schema.raw) if len(w) > 3]
        topic = rng.choice(TOPICS)
        if words and rng.random() < 0.5:
            topic += f" and {rng.choice(words)}"
        return teacher_messages(self.decoding, self.schema.title, self.schema.description, topic)

    def prepare(self, first: dict[str, Any], fallback: dict[str, Any]) -> dict[str, Any]:
        """Compile `first` for the teacher, or `fallback` where an engine cannot take it; the one used."""
        assert self.teacher is not None
        try:
            prep, used = self.teacher.prepare(first, self.cfg.engine), first
        except EngineError as first_error:
            try:  # the narrowed schema can trip an engine the original does not, and the other way round
                prep, used = self.teacher.prepare(fallback, self.cfg.engine), fallback
            except EngineError:
                raise SchemagenError(str(first_error), self.schema.path) from None
        self.engine, self.compile_seconds, self.engine_failures = prep.engine, prep.compile_seconds, prep.failures
        return used

    def complete(self, prompts: list[list[dict[str, str]]], temperature: float, first: int) -> list[str]:
        assert self.teacher is not None
        return self._texts(self.teacher.complete(prompts, temperature=temperature,
                                                 max_new_tokens=self.cfg.max_new_tokens,
                                                 seed=self.cfg.seed * 1_000_003 + first))

    def _texts(self, completions: list[Any]) -> list[str]:
        self.state.prompt_tokens += sum(c.prompt_tokens for c in completions)
        self.state.completion_tokens += sum(c.completion_tokens for c in completions)
        return [c.text for c in completions]

    def teacher_label(self, prompts: list[list[dict[str, str]]], requests: list[str], first: int) -> list[str]:
        """The teacher's answers to the user's requests (`Teacher.label`: greedy, grounded where it can)."""
        assert self.teacher is not None
        return self._texts(self.teacher.label(prompts, requests, max_new_tokens=self.cfg.max_new_tokens,
                                              seed=self.cfg.seed * 1_000_003 + first))

    def width(self) -> int:
        return self.cfg.batch_size * max(1, int(getattr(self.teacher, "workers", 1)))

    def out_of_time(self) -> bool:
        return self.cfg.time_budget is not None and time.perf_counter() - self.started > self.cfg.time_budget

    def tick(self) -> None:
        """Book the wall time since the last tick and write the manifest (a batch is done)."""
        now = time.perf_counter()
        self.state.wall_seconds += now - self.t0
        self.t0 = now
        self.write_manifest(final=False)

    def accept(self, ok: dict[str, Any], cand: int, source: str) -> None:
        split = self.next_split()
        meta = {"id": f"c{cand:06d}", "candidate": cand, "split": split, "source": source, "style": ok["style"],
                "repaired": ok["repaired"]}
        if ok.get("answered_by") != "file":
            meta["engine"] = self.engine
        meta.update({k: ok[k] for k in ("input", "file", "answered_by", "paraphrase") if ok.get(k) is not None})
        if self.focus is not None and source != INPUTS:
            meta["focus"] = self.focus.round
            if ok.get("leaned"):
                meta["leaned"] = ok["leaned"]
        self.writers[split].append(pair_record(ok["question"], ok["answer"], meta))
        self.state.accepted += 1
        self.state.splits[split] += 1
        self.state.styles[ok["style"]] += 1
        self.state.repaired += bool(ok["repaired"])
        self.count_source(meta)
        self.bar.update(1)

    def reject(self, bad: dict[str, Any]) -> None:
        self.rejected.append(bad)
        self.count_rejected(bad)

    def label(self, pending: list[Any]) -> None:
        """Answer the user's requests (greedy, under the schema's grammar), then judge each answer."""
        title = title_of(self.schema)
        width = self.width()
        for start in range(0, len(pending), width):
            if self.out_of_time():
                break
            chunk = pending[start:start + width]
            ask = [r for r in chunk if not r.has_gold]
            first = self.state.candidates
            texts: dict[str, str] = {}
            if ask:
                answers = self.teacher_label([label_messages(self.schema.raw, title, r.question) for r in ask],
                                             [r.question for r in ask], first)
                texts = {r.key: t for r, t in zip(ask, answers, strict=True)}
            for i, item in enumerate(chunk):
                self.state.candidates = first + i + 1
                ok, bad = self.judge_request(item, texts.get(item.key), first + i)
                if ok is not None:
                    self.accept(ok, first + i, INPUTS)
                elif bad is not None:
                    self.reject(bad)
            self.bar.set_postfix(accepted=self.state.accepted, rejected=sum(self.state.rejected.values()))
            self.tick()

    def synthesize(self) -> None:
        """Teacher instances, judged and written as questions, until -n pairs or the budget is spent."""
        cfg = self.cfg
        budget = (cfg.max_candidates if cfg.max_candidates is not None else 4 * cfg.n + 64) \
            + self.state.inputs["accepted"] + self.state.inputs["rejected"]
        while self.state.accepted < cfg.n and self.state.candidates < budget and not self.out_of_time():
            needed = cfg.n - self.state.accepted
            size = min(self.width(), budget - self.state.candidates, needed + (needed + 3) // 4)
            first = self.state.candidates
            texts = self.complete([self.prompt_for(first + i) for i in range(size)], cfg.temperature, first)
            oks: list[tuple[int, dict[str, Any]]] = []
            for i, text in enumerate(texts):
                if self.state.accepted + len(oks) >= cfg.n:
                    break
                cand = first + i
                self.state.candidates = cand + 1
                ok, bad = self.judge(text, cand)
                if ok is not None:
                    oks.append((cand, ok))
                elif bad is not None:
                    self.reject(bad)
            self.rewrite(oks, first)
            for cand, ok in oks:
                dup = self.admit(ok)
                if dup is None:
                    self.accept(ok, cand, ok["source"])
                    continue
                self.instances.discard(ok["key"])
                self.reject({"candidate": cand, "reason": dup, "question": ok["question"],
                             "output": ok["answer"][:2000],
                             **({"paraphrase": ok["paraphrase"]} if "paraphrase" in ok else {})})
            self.bar.set_postfix(accepted=self.state.accepted, rejected=sum(self.state.rejected.values()))
            self.tick()

    @property
    def paraphrase_share(self) -> float:
        share = self.cfg.paraphrase
        return paraphrase.default_share(self.cfg.teacher) if share is None else share

    def rewrite(self, oks: list[tuple[int, dict[str, Any]]], first: int) -> None:
        """Send the chosen share of accepted template questions to the teacher; keep each faithful rewrite."""
        assert self.teacher is not None
        asked = [ok for cand, ok in oks if paraphrase.chosen(self.cfg.seed, cand, self.paraphrase_share)]
        if not asked:
            return
        done = self.teacher.paraphrase([ok["question"] for ok in asked], temperature=paraphrase.TEMPERATURE,
                                       max_new_tokens=self.cfg.max_new_tokens,
                                       seed=self.cfg.seed * 1_000_003 + first + 500_009)
        for ok, c in zip(asked, done, strict=True):
            if c is not None:
                self.state.prompt_tokens += c.prompt_tokens
                self.state.completion_tokens += c.completion_tokens
            paraphrase.apply(ok, None if c is None else c.text, self.schema)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.teacher is None:
            raise RuntimeError("_Run.run needs a teacher")
        pending = self.pending_requests()
        self.decoding = decoding_schema(self.schema, cfg.limits)
        self.t0 = time.perf_counter()
        if pending:  # the user's requests are answered under the schema's own grammar
            self.prepare(self.schema.raw, self.decoding)
        else:
            self.decoding = self.prepare(self.decoding, self.schema.raw)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "schema.json", self.schema.raw)
        self.writers = {s: JsonlAppender(self.out / f"{s}.jsonl") for s in SPLITS}
        self.rejected = JsonlAppender(self.out / REJECTED)
        self.bar = _progress(max(cfg.n, self.state.accepted + len(pending)), self.state.accepted, cfg.progress)
        self.started = time.perf_counter()
        try:
            if pending:
                self.label(pending)
                if self.state.accepted < cfg.n and not self.out_of_time():
                    self.decoding = self.prepare(self.decoding, self.schema.raw)
            self.synthesize()
        finally:
            self.state.wall_seconds += time.perf_counter() - self.t0
            self.bar.close()
            for w in [*self.writers.values(), self.rejected]:
                w.close()
            self.write_manifest(final=True)
        write_card(self.out)
        return json.loads((self.out / MANIFEST).read_text(encoding="utf-8"))

    def write_manifest(self, final: bool) -> None:
        s, cfg = self.state, self.cfg
        n_rej = sum(s.rejected.values())
        checked = s.faithfulness_checked
        path = self.schema.path
        manifest = {
            "format": "schemagen-dataset/1",
            "tool": {"name": "schemagen", "version": __version__},
            "schema": {
                "name": self.schema.name, "title": self.schema.title, "draft": self.schema.draft,
                "sha256": self.schema.sha256, "path": str(path) if path else None,
                "path_from_dataset": _relpath(path, self.out) if path else None,
            },
            "teacher": self.teacher.describe() if self.teacher else self.previous.get("teacher", {}),
            "engine": {"name": self.engine, "choice": cfg.engine, "compile_seconds": round(self.compile_seconds, 4),
                       "failures": self.engine_failures},
            "seed": cfg.seed,
            "settings": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "overwrite")},
            "requested": cfg.n,
            "complete": s.accepted >= cfg.n and not self.pending_requests(),
            "counts": {"accepted": s.accepted, **{k: s.splits.get(k, 0) for k in SPLITS},
                       "rejected": n_rej, "rejected_by_reason": dict(s.rejected), "candidates": s.candidates,
                       "repaired": s.repaired},
            "acceptance_rate": round(s.accepted / s.candidates, 4) if s.candidates else None,
            "faithfulness": {"rate": round(s.faithful / checked, 4) if checked else None,
                             "checked": checked, "faithful": s.faithful,
                             "method": "every scalar of the answer is stated in the question (round trip)"},
            "validity": {"checked_with": "jsonschema + format checker against the original schema",
                         "emitted_valid": s.accepted},
            "tokens": {"prompt": s.prompt_tokens, "completion": s.completion_tokens},
            "wall_seconds": round(s.wall_seconds, 2),
            "pairs_per_minute": round(60 * s.accepted / s.wall_seconds, 2) if s.wall_seconds else None,
            "diversity": self.diversity.summary(),
            "question_styles": dict(s.styles),
            "sources": dict(s.sources),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        inputs = self.inputs_section()
        if inputs:
            manifest["inputs"] = inputs
        if self.paraphrase_share > 0 or s.paraphrase["asked"]:
            manifest["paraphrase"] = paraphrase.section(self.paraphrase_share, s.paraphrase,
                                                        s.paraphrase_rejected)
        rounds = self.focus_rounds()
        if rounds:
            manifest["focus"] = rounds
        review = _review_section(self.out) if final else self.previous.get("review")
        if review:  # decisions made in `schemagen review` outlive a resumed run
            manifest["review"] = review
        atomic_write_json(self.out / MANIFEST, manifest)


    def inputs_section(self) -> dict[str, Any] | None:
        """What `--inputs` did: the files (every run's) and what became of their requests."""
        s = self.state
        files = list((self.previous.get("inputs") or {}).get("files") or [])
        files += [f for f in self.input_files if f not in files]
        if not files and not s.inputs:
            return None
        return {"files": files, "accepted": s.inputs["accepted"], "answered_by_teacher": s.inputs["teacher"],
                "answers_from_file": s.inputs["file"], "rejected": s.inputs["rejected"],
                "rejected_by_reason": dict(s.inputs_rejected), "pending": len(self.pending_requests()),
                "grounding": "every string, number, boolean and empty value of a teacher's answer is stated "
                             "in the request; a file's own answers are validated and kept as they are"}

    def focus_rounds(self) -> list[dict[str, Any]]:
        """Every `--focus` round of this dataset: its report (path, sha256), what it leaned on, its pairs."""
        rounds = [dict(r) for r in self.previous.get("focus") or [] if isinstance(r, dict)]
        if self.focus is not None and not any(r.get("sha256") == self.focus.sha256 for r in rounds):
            rounds.append({**self.focus.describe(), "pairs_before": self.focus_start})
        for r in rounds:
            counts = self.state.focus.get(str(r.get("sha256", ""))[:12], Counter())
            r["pairs"] = counts["pairs"]
            r["leaned"] = {k: v for k, v in sorted(counts.items()) if k != "pairs"}
        return rounds


def _relpath(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def _schema_words(node: Any) -> list[str]:
    words: list[str] = []
    if isinstance(node, dict):
        for key in ("title", "description"):
            if isinstance(node.get(key), str):
                words.extend(w.strip(".,;:()").lower() for w in node[key].split())
        for v in node.values():
            words.extend(_schema_words(v))
    elif isinstance(node, list):
        for v in node:
            words.extend(_schema_words(v))
    return words


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="pair", dynamic_ncols=True,
                desc="generate")


def default_out_dir(schema: Schema) -> Path:
    return Path("generated") / schema.name


def generate(schema_path: str | Path, out_dir: str | Path | None = None, config: GenerateConfig | None = None,
             teacher: Teacher | None = None) -> dict[str, Any]:
    """Generate (or resume) a dataset for one schema; returns its manifest."""
    cfg = config or GenerateConfig()
    if cfg.n < (0 if cfg.inputs else 1):
        raise SchemagenError(f"-n must be at least {0 if cfg.inputs else 1}, got {cfg.n}")
    schema = load_schema(schema_path, allow_remote=cfg.allow_remote_refs)
    out = Path(out_dir) if out_dir else default_out_dir(schema)
    if out.exists() and not out.is_dir():
        raise SchemagenError("exists and is not a directory", out)
    # every input is read before anything is written: a bad file loses nothing
    requests = read_requests(cfg.inputs, schema) if cfg.inputs else []
    focus = Focus(schema, cfg.focus, cfg.focus_share) if cfg.focus else None
    if focus is not None and (cfg.overwrite or not (out / MANIFEST).exists()):
        raise SchemagenError("--focus extends a generated dataset: generate it first, and no --overwrite", out)
    if cfg.overwrite and out.exists():
        for name in [*(f"{s}.jsonl" for s in SPLITS), REJECTED, MANIFEST, "card.md", "schema.json"]:
            (out / name).unlink(missing_ok=True)
    run = _Run(schema, out, cfg, teacher, requests, focus)
    run.input_files = file_summary(cfg.inputs, requests)
    run.load_existing()
    run.focus_start = run.state.accepted
    if focus is not None and run.state.accepted >= cfg.n and not any(
            r.get("sha256") == focus.sha256 for r in run.previous.get("focus") or []):
        raise SchemagenError(f"already holds {run.state.accepted} pairs: with --focus, -n is the new total "
                             f"(e.g. -n {run.state.accepted + max(100, run.state.accepted // 2)})", out)
    if run.state.accepted >= cfg.n and not run.pending_requests():  # nothing to do: no model is loaded
        run.decoding = decoding_schema(schema, cfg.limits)
        run.engine = str((run.previous.get("engine") or {}).get("name", ""))
        run.write_manifest(final=True)
        write_card(out)
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    if teacher is not None:
        return run.run()
    run.teacher = make_teacher(cfg.teacher, threads=cfg.threads, dtype=cfg.dtype, workers=default_workers(cfg))
    try:
        return run.run()
    finally:
        run.teacher.close()


def default_workers(cfg: GenerateConfig) -> int:
    """Worker processes for a local teacher: one per core on a CPU, one with CUDA or explicit threads."""
    if cfg.workers > 0:
        return cfg.workers
    if cfg.threads or cfg.teacher.startswith("openai:"):
        return 1
    import torch

    return 1 if torch.cuda.is_available() else max(1, min(os.cpu_count() or 1, 8))


def _review_section(out: Path) -> dict[str, Any] | None:
    from ..review.summary import review_section

    return review_section(out)


def _review_lines(out: Path) -> list[str]:
    from ..review import review_card_lines

    lines = review_card_lines(out)
    return [*lines, ""] if lines else []


def _paraphrase_lines(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return []
    reasons = ", ".join(f"{k} {v}" for k, v in p["rejected_by_reason"].items()) or "none"
    return [f"Paraphrases by the teacher (share {p['share']}): {p['asked']} asked, {p['kept']} kept "
            f"(template kept otherwise: {reasons}).", ""]


def write_card(out: Path, examples: int = 5) -> None:
    """card.md: the figures of the manifest, an example of each question source and five random pairs."""
    m = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    pairs: list[tuple[str, str]] = []
    by_source: dict[str, tuple[str, str]] = {}
    for split in SPLITS:
        p = out / f"{split}.jsonl"
        if p.exists():
            for _, r in read_jsonl(p, strict=False):
                pair = (r["messages"][-2]["content"], r["messages"][-1]["content"])
                pairs.append(pair)
                by_source.setdefault(str((r.get("schemagen") or {}).get("source") or "template"), pair)
    rng = random.Random(m.get("seed", 0))
    sample = rng.sample(pairs, min(examples, len(pairs)))
    sources = m.get("sources") or {}
    focus = ["Focus rounds: " + "; ".join(
        f"`{r['report']}` (sha256 `{str(r['sha256'])[:12]}`): {r['pairs']} pairs, leaning on "
        + (", ".join(x["path"] for x in r["paths"][:5]) or "question styles") for r in m.get("focus") or []), ""]
    c, f, d = m["counts"], m["faithfulness"], m["diversity"]
    lines = [
        f"# Dataset card: {m['schema']['title']}", "",
        f"Generated by schemagen {m['tool']['version']} from `{m['schema']['path']}` "
        f"(sha256 `{m['schema']['sha256'][:16]}...`, {m['schema']['draft']}).", "",
        "| figure | value |", "|---|---|",
        f"| pairs (train / val / test) | {c['accepted']} ({c['train']} / {c['val']} / {c['test']}) |",
        f"| candidates / rejected | {c['candidates']} / {c['rejected']} |",
        f"| acceptance rate | {m['acceptance_rate']} |",
        f"| faithfulness rate | {f['rate']} ({f['faithful']}/{f['checked']}) |",
        f"| repaired then accepted | {c['repaired']} |",
        f"| teacher | {m['teacher'].get('spec') or m['teacher'].get('url')} ({m['teacher']['kind']}) |",
        f"| engine | {m['engine']['name']} (choice: {m['engine']['choice']}) |",
        f"| seed | {m['seed']} |",
        f"| tokens (prompt / completion) | {m['tokens']['prompt']} / {m['tokens']['completion']} |",
        f"| wall time | {m['wall_seconds']} s ({m['pairs_per_minute']} pairs/min) |",
        f"| distinct-1 / distinct-2 of questions | {d['distinct_1']} / {d['distinct_2']} |",
        f"| mean distinct-value ratio per field | {d['mean_field_distinct_ratio']} |",
        "", "Rejections by reason: " + (", ".join(f"{k} {v}" for k, v in c["rejected_by_reason"].items())
                                         or "none"),
        "", "Question sources: " + (", ".join(f"{k} {v}" for k, v in sources.items()) or "none"), "",
        *_paraphrase_lines(m.get("paraphrase")),
        *(focus if m.get("focus") else []), *_review_lines(out), "## An example of each source", "",
    ]
    for name, (q, a) in sorted(by_source.items()):
        lines += [f"- *{name}*: {json.dumps(q, ensure_ascii=False)} -> `{a}`"]
    lines += [""]
    lines += ["## Five random pairs", ""]
    for q, a in sample:
        lines += ["**Q:** " + q.replace("\n", "  \n"), "", f"**A:** `{a}`", ""]
    atomic_write_text(out / "card.md", "\n".join(lines))

