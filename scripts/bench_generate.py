"""Benchmark `generate`: pairs/min batched vs one stream, acceptance and faithfulness, engine costs.

Writes the `bench_generate` section of docs/BENCHMARKS.md. Usage:
    .venv/bin/python scripts/bench_generate.py [--schema schemas/agent_status.json] [--pairs 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_md import project_path, update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_generate(teacher: Any, schema: Path, n: int, batch: int, seed: int) -> dict[str, Any]:
    """One generate run; `teacher=None` lets generate start its default teacher (one worker per core)."""
    from schema_specialist.generate import GenerateConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        cfg = GenerateConfig(n=n, seed=seed, batch_size=batch, progress=False)
        return generate(schema, Path(tmp) / "out", cfg, teacher=teacher)


class _Timed:
    """Wraps a logits processor and accumulates the time spent computing masks."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        t0 = time.perf_counter()
        out = self.inner(input_ids, logits)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out

    def reset(self) -> None:
        self.inner.reset()


class _RowClock:
    """Makes row constraints whose fill (mask) and accept calls are timed together."""

    def __init__(self, factory: Any) -> None:
        self.factory, self.seconds, self.calls = factory, 0.0, 0

    def __call__(self) -> Any:
        clock, inner = self, self.factory()

        class Row:
            def fill(self, bitmask: Any, row: int) -> None:
                t0 = time.perf_counter()
                inner.fill(bitmask, row)
                clock.seconds += time.perf_counter() - t0
                clock.calls += 1

            def accept(self, token: int) -> bool:
                t0 = time.perf_counter()
                ok = bool(inner.accept(token))
                clock.seconds += time.perf_counter() - t0
                return ok

            def finished(self) -> bool:
                return bool(inner.finished())

        return Row()


def engine_costs(teacher: Any, schemas: list[Path], steps: int = 48) -> list[dict[str, Any]]:
    """Compile time per schema (fresh compile) and mask ms/token vs forward ms/token, one stream."""
    import torch
    from outlines.generator import SteerableGenerator
    from outlines.inputs import Chat

    from schema_specialist.engines import ENGINES, EngineSet
    from schema_specialist.generate.decoding import chat_ids, decode, stop_ids_of
    from schema_specialist.generate.grammar import decoding_schema
    from schema_specialist.prompts import teacher_messages
    from schema_specialist.schema import load_schema

    rows = []
    for name in ENGINES:
        engines = EngineSet(teacher.outlines_model)
        compile_s: list[float] = []
        mask_ms: list[float] = []
        fwd_ms: list[float] = []
        for path in schemas:
            schema = load_schema(path)
            dec = decoding_schema(schema)
            try:
                engine = engines.get(name)
                t0 = time.perf_counter()
                proc = engine.processor(dec)
                compile_s.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001  (report the engine's refusal)
                print(f"{name} {path.name}: {exc}", file=sys.stderr)
                continue
            messages = teacher_messages(dec, schema.title, schema.description, "a bank")
            factory = engine.row_constraint(proc)
            if factory is not None:  # what generate runs: decoding.decode with one matcher a row
                clock = _RowClock(factory)
                tok, model = teacher.loaded.tokenizer, teacher.loaded.model
                t0 = time.perf_counter()
                decode(model, [chat_ids(tok, messages)], stop_ids=stop_ids_of(model, tok), pad_id=0,
                       max_new_tokens=steps, temperature=1.0, seed=0, constraint=clock)
                total, calls, spent = time.perf_counter() - t0, clock.calls, clock.seconds
            else:  # outlines-core: outlines' logits processor inside transformers.generate
                timed = _Timed(proc)
                gen = SteerableGenerator.from_processor(teacher.outlines_model, timed)
                torch.manual_seed(0)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    gen(Chat(messages), max_new_tokens=steps, do_sample=True, temperature=1.0)
                total, calls, spent = time.perf_counter() - t0, timed.calls, timed.seconds
            if calls:
                mask_ms.append(1000 * spent / calls)
                fwd_ms.append(1000 * (total - spent) / calls)
        rows.append({
            "engine": name, "compiled": f"{len(compile_s)}/{len(schemas)}",
            "compile_p50_ms": 1000 * statistics.median(compile_s) if compile_s else None,
            "compile_max_ms": 1000 * max(compile_s) if compile_s else None,
            "mask_ms_per_token": statistics.mean(mask_ms) if mask_ms else None,
            "forward_ms_per_token": statistics.mean(fwd_ms) if fwd_ms else None,
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--schema", default=str(ROOT / "schemas" / "agent_status.json"))
    ap.add_argument("--pairs", type=int, default=128, help="pairs for the batched run")
    ap.add_argument("--single-pairs", type=int, default=6, help="pairs for the one-stream run")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import torch

    from schema_specialist.engines import rank_engines
    from schema_specialist.generate.grammar import decoding_schema
    from schema_specialist.schema import load_schema
    from schema_specialist.teachers.local import LocalTeacher

    torch.set_num_threads(args.threads)
    teacher = LocalTeacher("smollm2")
    schema = Path(args.schema)
    single = run_generate(teacher, schema, args.single_pairs, 1, seed=11)
    batched = run_generate(None, schema, args.pairs, args.batch, seed=12)
    workers = batched["teacher"].get("workers", 1)
    schemas = sorted((ROOT / "schemas").glob("*.json"))
    costs = engine_costs(teacher, schemas)
    auto = {p.name: rank_engines(decoding_schema(load_schema(p)))[0] for p in schemas}

    def fmt(x: Any, nd: int = 2) -> str:
        return "-" if x is None else f"{x:.{nd}f}"

    speedup = (batched["pairs_per_minute"] or 0) / max(1e-9, single["pairs_per_minute"] or 0)
    lines = [
        f"Teacher: embedded SmolLM2-135M-Instruct ({teacher.describe()['dtype']}), {args.threads} torch thread(s), "
        f"schema `{project_path(schema)}`, engine "
        f"`{batched['engine']['name']}` (auto).", "",
        "| run | pairs | wall s | pairs/min | acceptance | faithfulness | completion tokens/pair |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, m in (("one stream (batch 1, 1 thread)", single),
                     (f"batched ({workers} worker(s) x batch {args.batch}, 1 thread each)", batched)):
        acc = m["counts"]["accepted"]
        lines.append(f"| {label} | {acc} | {m['wall_seconds']} | {m['pairs_per_minute']} | "
                     f"{m['acceptance_rate']} | {m['faithfulness']['rate']} | "
                     f"{m['tokens']['completion'] / max(1, m['counts']['candidates']):.0f} |")
    lines += ["", f"Batched / one stream: **{speedup:.1f}x** pairs per minute.", "",
              f"Engine costs over the {len(schemas)} example schemas (fresh compile each; one stream, "
              "48 sampled tokens, the decoding path generate uses: `decoding.decode` with one matcher a row for "
              "llguidance and xgrammar, outlines' logits processor for outlines-core; mask = filling the row's "
              "bitmask and consuming the chosen token; forward = the rest of a decoding step):", "",
              "| engine | compiled | compile p50 ms | compile max ms | mask ms/token | forward ms/token | mask/forward |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in costs:
        ratio = (r["mask_ms_per_token"] / r["forward_ms_per_token"] * 100
                 if r["mask_ms_per_token"] is not None and r["forward_ms_per_token"] else None)
        lines.append(f"| {r['engine']} | {r['compiled']} | {fmt(r['compile_p50_ms'], 1)} | "
                     f"{fmt(r['compile_max_ms'], 1)} | {fmt(r['mask_ms_per_token'], 3)} | "
                     f"{fmt(r['forward_ms_per_token'], 1)} | {fmt(ratio, 2)}% |")
    lines += ["", "`auto` picks: " + ", ".join(f"{k} -> {v}" for k, v in auto.items()) + "."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        update_section("bench_generate", "generate: throughput, acceptance, engine costs",
                       "python scripts/bench_generate.py " + " ".join(sys.argv[1:]), body)


if __name__ == "__main__":
    main()
