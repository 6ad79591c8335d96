"""`evaluate()`: select inputs, run each system in batches, score, gate, write the report."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from .inputs import Generation, Generator, Item, select_inputs, subset
from .metrics import ADAPTER, CONSTRAINED, PROMPTED, check_target, gate
from .report import Report
from .runner import ModelRunner, load_adapter_meta
from .scoring import SystemResult, score, summarize


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
