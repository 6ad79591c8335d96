"""`evaluate()`: select inputs, run each system in batches (resumably), score, measure the guard, gate,
write the report."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from ..generate.grounding import kinds
from .guard import Guard, measure
from .inputs import Generation, Generator, Item, file_items, file_labels, select_inputs, subset, unique_items
from .metrics import ADAPTER, ADAPTER_GRAMMAR, CONSTRAINED, PROMPTED, SYSTEMS, Rate, check_target, gate
from .progress import Progress
from .report import Report, Section
from .resume import AnswerLog, MemoryLog
from .runner import AdapterMeta, ModelRunner, load_adapter_meta
from .scoring import Scored, SystemResult, score, summarize
from .workers import WORKERS_DIR, Job, Pool, deal, merge, threads_each

GATE_ON = ("main", "inputs", "all")
MAIN = "main"
DEFAULT_SUBSET = 100  # baselines and adapter+grammar: inputs per source unless told


def _batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_system(generate: Generator, items: Sequence[Item], batch_size: int,
               progress: Callable[[int], None] | None = None,
               on_batch: Callable[[Sequence[Item], list[Generation]], None] | None = None) -> list[Generation]:
    """Answer all items in batches; a generator must return one answer per item. `on_batch` sees each
    batch as it finishes (the answer log appends it there)."""
    gens: list[Generation] = []
    for batch in _batches(items, batch_size):
        out = generate(batch)
        if len(out) != len(batch):
            raise RuntimeError(f"generator returned {len(out)} answers for {len(batch)} inputs")
        if on_batch is not None:
            on_batch(batch, out)
        gens.extend(out)
        if progress is not None:
            progress(len(batch))
    return gens


@dataclass
class Source:
    """One input source: the main inputs (held-out + property-based) or one `--inputs` file."""

    name: str
    path: str
    items: list[Item]
    base_items: list[Item]  # baselines run on these
    grammar_items: list[Item]  # adapter + grammar runs on these (and on every invalid free answer: the guard)


def _log_settings(info: AdapterMeta, seed: int, max_new_tokens: int, temperature: float, dtype: str,
                  injected: Sequence[str] | None, grounded: bool | str = False) -> dict[str, Any]:
    """What decides an answer: resuming with anything else would mix two systems' answers."""
    from ..generate.grammar import answer_schema
    from ..prompts import schema_messages, task_messages

    probe = json.dumps([task_messages("?"), schema_messages("?", info.schema.raw), info.system_prompt])
    grammar = json.dumps(answer_schema(info.schema), sort_keys=True)
    return {"schema_sha256": info.schema.sha256, "adapter_weights_sha256": info.weights_sha256(),
            "base": info.base, "prompts_sha256": hashlib.sha256(probe.encode()).hexdigest()[:16],
            "grammar_sha256": hashlib.sha256(grammar.encode()).hexdigest()[:16],
            "seed": seed, "max_new_tokens": max_new_tokens, "temperature": temperature, "dtype": dtype,
            "injected_generators": sorted(injected) if injected is not None else None,
            "grounded": ", ".join(kinds(grounded)) or False}


def _resolved_dtype(dtype: str) -> str:
    if dtype != "auto":
        return dtype
    from ..models import fast_dtype

    return fast_dtype()


class _Counter:
    """Question tokens (prompt minus this = template and instructions) from the tokenizer alone."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._tok: Any = None

    def __call__(self, question: str) -> int:
        if self._tok is None:
            from transformers import AutoTokenizer

            from ..models import resolve_model_path
            from ..quiet import quiet_libraries

            with quiet_libraries():
                self._tok = AutoTokenizer.from_pretrained(resolve_model_path(self.base))
        return len(self._tok(question, add_special_tokens=False)["input_ids"])


def evaluate(adapter_dir: str | Path, *, n: int = 300, target: float | None = None, strict: bool = False,
             data: str | Path | None = None, base: str | None = None, seed: int = 0,
             hypothesis_share: float | None = None, baselines: bool = True, baseline_n: int | None = None,
             grammar_n: int | None = None, guard: bool = True, inputs: Sequence[str | Path] = (),
             gate_on: str = MAIN, batch_size: int = 32, max_new_tokens: int = 256, temperature: float = 0.0,
             realistic: bool = True, out_dir: str | Path | None = None, write: bool = True,
             show_progress: bool = False, progress: str | None = None, threads: int | None = None,
             dtype: str = "auto", fresh: bool = False, grounded: bool | str = True,
             generators: dict[str, Generator] | None = None, workers: int = 1) -> Report:
    """Evaluate an adapter: inputs, systems, metrics, the guard, the gate; write the report unless `write=False`.

    Systems: the adapter free (`adapter`), the adapter under the schema's grammar (`adapter+grammar`), the
    base model with the schema in its prompt (`base+schema-prompt`) and under the grammar (`constrained`).
    The adapter answers every input; the others a spread subset of each source (`baseline_n`,
    `grammar_n`, default 100). With `guard`, every invalid free answer is retried with adapter + grammar.
    With `grounded`, the grammar systems' free-text strings can only copy runs of the request's words and
    their numbers can only be ones it writes (`generate.grounding`), as in every training pair; "strings"
    grounds the strings alone.
    `inputs` are the user's own JSONL request files, each reported as its own section; the gate reads
    the adapter's free validity on `gate_on`: `main` (held-out + property-based), `inputs` (the files
    pooled) or `all`. Answers go to `answers.jsonl` in the report directory as they come, so a rerun
    with the same settings resumes (`fresh=True` starts again). `generators` replaces the model-backed
    systems: tests use it to score known answers without loading a model. `workers` > 1 deals the
    inputs out to that many processes, each with its own model and `threads / workers` threads
    (`evaluate.workers`).
    """
    t_start = time.perf_counter()
    check_target(target)
    if n < 1:
        raise SchemagenError(f"-n must be at least 1, got {n}")
    if hypothesis_share is not None and not 0 <= hypothesis_share <= 1:
        raise SchemagenError(f"--hypothesis-share must be in [0, 1], got {hypothesis_share}")
    if max_new_tokens < 1 or batch_size < 1:
        raise SchemagenError("--max-new-tokens and --batch-size must be at least 1")
    if (baseline_n is not None and baseline_n < 0) or (grammar_n is not None and grammar_n < 0):
        raise SchemagenError("--baseline-n and --grammar-n must be at least 0")
    if workers < 1:
        raise SchemagenError(f"--workers must be at least 1, got {workers}")
    if gate_on not in GATE_ON:
        raise SchemagenError(f"--gate-on must be one of {', '.join(GATE_ON)}, got {gate_on!r}")
    if gate_on == "inputs" and not inputs:
        raise SchemagenError("--gate-on inputs needs at least one --inputs FILE")
    if generators is not None and ADAPTER not in generators:
        raise ValueError("generators must include the adapter")
    info = load_adapter_meta(adapter_dir, data, base)
    schema = info.schema
    labels = file_labels(list(inputs))
    files = [(label, str(path), file_items(path, schema, label)) for label, path in zip(labels, inputs, strict=True)]
    report_dir = Path(out_dir) if out_dir is not None else info.path / "report"
    log_dir = report_dir if write or out_dir is not None else None
    cache = log_dir / "hypothesis-instances.json" if log_dir is not None else None
    if cache is not None:
        log_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    items, counts, notes = select_inputs(schema, info.dataset, n, seed, hypothesis_share, realistic, cache)
    if not items:
        raise SchemagenError("no inputs: the test split is empty and no hypothesis instances were drawn",
                             info.dataset)
    bn = baseline_n if baseline_n is not None else DEFAULT_SUBSET
    gn = grammar_n if grammar_n is not None else DEFAULT_SUBSET
    sources = [Source(name, path, its, subset(its, min(len(its), bn)) if baselines and bn > 0 else [],
                      subset(its, min(len(its), gn)) if gn > 0 else [])
               for name, path, its in [(MAIN, "", items), *files]]

    dtype_used = _resolved_dtype(dtype) if generators is None else dtype
    settings_key = _log_settings(info, seed, max_new_tokens, temperature, dtype_used,
                                 list(generators) if generators is not None else None, grounded)
    mode = progress or ("bar" if show_progress else "none")
    bar = Progress(mode)
    log: AnswerLog = AnswerLog(log_dir, settings_key, fresh=fresh) if log_dir is not None else MemoryLog()
    if log.note:
        notes.append(log.note)
        bar.message(f"eval: {log.note}")
    if log.resumed:
        bar.message(f"eval: resuming: {log.resumed} answers found in {log.path}")
    sharded = workers > 1 and generators is None
    every_item = {it.key: it for src in sources for it in src.items}
    scratch = Path(tempfile.mkdtemp(prefix="schemagen-eval-")) if sharded and log_dir is None else None
    work_root = log_dir if log_dir is not None else scratch or Path(os.devnull)
    if log_dir is not None:  # answers a killed run's workers wrote (merged with or without --workers now)
        moved = merge(log, work_root, settings_key, every_item)
        if moved:
            notes.append(f"{moved} answers resumed from {work_root / WORKERS_DIR}")
            bar.message(f"eval: resuming: {moved} answers found in {work_root / WORKERS_DIR}")
    runner: ModelRunner | None = None
    pool: Pool | None = None
    available = set(generators) if generators is not None else (
        {ADAPTER, ADAPTER_GRAMMAR} | ({PROMPTED, CONSTRAINED} if baselines else set()))
    grammar_failed: str | None = None

    def generator(name: str) -> Generator:
        nonlocal runner
        if generators is not None:
            return generators[name]
        if runner is None:
            runner = ModelRunner(info, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                 threads=threads_each(threads, workers) if sharded else threads, dtype=dtype,
                                 grounded=grounded)
            runner.on_row = bar.update  # progress answer by answer, not batch by batch
            if pool is not None:
                on_pool = pool

                def row_done(n: int) -> None:
                    bar.update(n)
                    on_pool.drain()  # the workers' rows too, while this process decodes its share

                runner.on_row = row_done
        return runner.generator_for(name)

    def answer(name: str, todo: Sequence[Item]) -> None:
        """Decode what the log does not hold yet; append each batch as it finishes."""
        nonlocal grammar_failed
        wanted = unique_items(todo)
        pending = [it for it in wanted if log.get(name, it) is None]
        if not pending:
            return
        gen = generator(name)  # loads the models on first use
        bar.stage(name, len(pending), sum((name, it.key) in log.loaded for it in wanted))
        engine = None
        if name in (ADAPTER_GRAMMAR, CONSTRAINED) and runner is not None:
            try:
                engine = runner.engine_label()
            except SchemagenError as exc:
                grammar_failed = str(exc)
                bar.update(len(pending))
                return

        def keep(batch: Sequence[Item], out: list[Generation]) -> None:
            for it, g in zip(batch, out, strict=True):
                log.add(name, it, g, engine)

        run_system(gen, pending, batch_size, bar.update if runner is None else None, keep)

    from ..quiet import quiet_libraries

    try:
        with quiet_libraries():
            plan = [(PROMPTED, [it for s in sources for it in s.base_items]),
                    (CONSTRAINED, [it for s in sources for it in s.base_items]),
                    (ADAPTER, [it for s in sources for it in s.items]),
                    (ADAPTER_GRAMMAR, [it for s in sources for it in s.grammar_items])]
            plan = [(name, its) for name, its in plan if name in available and its]
            bar.add_total(sum(sum(log.get(name, it) is None for it in unique_items(its)) for name, its in plan))
            # Baselines first: the adapter is then merged into the weights for the rest of the run.
            if sharded:
                shares = deal(plan, lambda name, it: log.get(name, it) is not None, workers)
                jobs = [Job(str(info.path), str(data) if data is not None else None, base, settings_key,
                            str(work_root / WORKERS_DIR / str(k)), share, max_new_tokens, temperature, seed,
                            threads_each(threads, workers), dtype, grounded, batch_size)
                        for k, share in enumerate(shares) if k > 0 and share]
                pool = Pool(jobs, bar.update) if jobs else None
                plan = shares[0]
            for name, its in plan:
                answer(name, its)
            if pool is not None:
                pool.wait()
                merge(log, work_root, settings_key, every_item)
            if guard and ADAPTER_GRAMMAR in available and grammar_failed is None:
                retry = [it for s in sources for it in s.items
                         if not score(it, log.answers[(ADAPTER, it.key)], schema).valid]
                bar.add_total(sum(log.get(ADAPTER_GRAMMAR, it) is None for it in unique_items(retry)))
                answer(ADAPTER_GRAMMAR, retry)
    finally:
        if pool is not None:
            pool.stop()
        bar.close()
        log.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if grammar_failed is not None:
        notes.append(f"no grammar for this schema ({grammar_failed}): adapter + grammar, the constrained "
                     f"baseline and the guard skipped")
        available -= {ADAPTER_GRAMMAR, CONSTRAINED}
    if log.resumed:
        notes.append(f"{log.resumed} answers resumed from {log.path}")

    counter = runner.question_tokens if runner is not None else (_Counter(info.base) if generators is None else None)
    scored_cache: dict[tuple[str, int], Scored] = {}

    def scored(name: str, its: Sequence[Item]) -> list[Scored]:
        out = []
        for it in its:
            key = (name, id(it))
            if key not in scored_cache:
                scored_cache[key] = score(it, log.answers[(name, it.key)], schema)
            out.append(scored_cache[key])
        return out

    def results(src: Source) -> tuple[dict[str, SystemResult], Guard | None]:
        systems: dict[str, SystemResult] = {}
        for name in SYSTEMS:
            if name not in available:
                continue
            its = src.items if name == ADAPTER else src.grammar_items if name == ADAPTER_GRAMMAR else src.base_items
            if not its:
                continue
            engine = log.engines.get(name) if name in (ADAPTER_GRAMMAR, CONSTRAINED) else None
            note = None
            if name == CONSTRAINED and runner is not None and runner.engine_failures:
                note = "; ".join(runner.engine_failures)[:300]
            systems[name] = summarize(name, scored(name, its), engine=engine, note=note, question_tokens=counter)
        g = None
        if guard and ADAPTER_GRAMMAR in available:
            free = scored(ADAPTER, src.items)
            bad = [s.item for s in free if not s.valid]
            g = measure(free, {s.item.key: s for s in scored(ADAPTER_GRAMMAR, bad)})
        return systems, g

    main_systems, main_guard = results(sources[0])
    sections = []
    for src in sources[1:]:
        systems, g = results(src)
        sections.append(Section(src.name, src.path, len(src.items), sum(it.has_gold for it in src.items),
                                _styles(src.items), systems, g))
    pooled = {MAIN: [sources[0]], "inputs": sources[1:], "all": sources}[gate_on]
    free_all = [s for src in pooled for s in scored(ADAPTER, src.items)]
    rate = Rate(sum(s.valid for s in free_all), len(free_all))
    result = gate(rate.rate, rate.ci95[0], rate.n, target, strict)
    if gate_on != MAIN:
        result.message += f" [gate on {gate_on}: " + ", ".join(src.name for src in pooled) + "]"
    every = [s for src in sources for s in scored(ADAPTER, src.items)]
    from .failures import fields_by_path, group_by_path

    answers = []
    for src in sources:
        retried = ({s.item.key for s in scored(ADAPTER, src.items) if not s.valid}
                   if guard and ADAPTER_GRAMMAR in available else set())
        for s in scored(ADAPTER, src.items):
            rec: dict[str, Any] = {
                "id": s.item.key, "source": s.item.source, "style": s.item.style, "question": s.item.question,
                "gold": s.item.gold if s.item.has_gold else None, "answer": s.gen.text, "valid": s.valid,
                "failure": s.failure and s.failure[0], "paths": sorted({site[0] for site in s.sites}),
                "fields": list(s.fields), "prompt_tokens": s.gen.prompt_tokens, "truncated": s.gen.truncated}
            if s.item.key in retried:
                r = log.answers[(ADAPTER_GRAMMAR, s.item.key)]
                rec["retry"] = {"answer": r.text, "valid": score(s.item, r, schema).valid}
            answers.append(rec)
    report = Report(
        adapter_path=str(info.path), adapter_name=info.name, schema_title=schema.title,
        schema_sha256=schema.sha256, dataset=str(info.dataset), n=len(items), inputs=counts, systems=main_systems,
        gate=result, notes=notes, answers=answers,
        settings={"seed": seed, "max_new_tokens": max_new_tokens, "temperature": temperature,
                  "batch_size": batch_size, "baseline_n": len(sources[0].base_items),
                  "grammar_n": len(sources[0].grammar_items), "guard": guard, "base": info.base,
                  "dtype": dtype_used, "strict": strict, "gate_on": gate_on, "realistic_hypothesis": realistic,
                  "inputs": [src.path for src in sources[1:]], "resumed_answers": log.resumed},
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), sections=sections, guard=main_guard,
        failures_by_path=group_by_path(every), fields_by_path=fields_by_path(every),
        seconds=time.perf_counter() - t_start)
    if write:
        report.write(report_dir, info.path)
    return report


def _styles(items: Sequence[Item]) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in items:
        if it.style is not None:
            out[it.style] = out.get(it.style, 0) + 1
    return dict(sorted(out.items()))
