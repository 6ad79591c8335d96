"""Reliability at the size a 0.999 target needs: the adapter's free validity on n=3000 inputs, with the guard.

    .venv/bin/python scripts/bench_reliability.py                          # adapters/agent_status, n=3000
    .venv/bin/python scripts/bench_reliability.py --label before --no-doc  # kill it, rerun: it resumes
    .venv/bin/python scripts/bench_reliability.py --adapter adapters/agent_status-focus --label after \\
        --compare adapters/agent_status/reliability/report.json            # one focus round, same inputs

Runs `evaluate` (held-out + property-based inputs, no baselines, no adapter + grammar row: the guard still
retries every invalid answer under the grammar) into ADAPTER/reliability, where the answers are logged as
they come: an interrupted run resumes with the same settings (--fresh starts again). Prints and writes
(the `bench_reliability` section of docs/BENCHMARKS.md, or `bench_reliability_LABEL` with --label) the
validity with its Wilson 95% interval, the gate, the time taken, the guard, and the failures by kind and
by field path. `report.json`'s `failures_by_path` there is what a focus round reads
(`schema_specialist.evaluate.read_failures_by_path`); `--compare OTHER/report.json` sets the failure
counts of two runs on the same inputs side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench_md import update_section  # noqa: E402

from schema_specialist.errors import SchemagenError  # noqa: E402
from schema_specialist.evaluate import Report, evaluate  # noqa: E402


def run(adapter: str | Path, n: int = 3000, *, target: float = 0.999, out: str | Path | None = None,
        batch_size: int = 32, max_new_tokens: int = 256, seed: int = 0, threads: int | None = None,
        fresh: bool = False, inputs: list[str] | None = None) -> Report:
    """The reliability eval (the hook a focus round calls before and after): free validity on n inputs."""
    return evaluate(adapter, n=n, target=target, strict=False, baselines=False, grammar_n=0, guard=True,
                    inputs=inputs or [], batch_size=batch_size, max_new_tokens=max_new_tokens, seed=seed,
                    threads=threads, out_dir=out if out is not None else Path(adapter) / "reliability",
                    progress="auto", fresh=fresh)


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Markdown lines: validity and failure counts of two report.json files, by field path."""
    ids_b = {a["id"] for a in before.get("answers", []) if a.get("source") in ("test", "hypothesis")}
    ids_a = {a["id"] for a in after.get("answers", []) if a.get("source") in ("test", "hypothesis")}
    va, vb = after["systems"]["adapter"]["validity"], before["systems"]["adapter"]["validity"]
    lines = [f"Before -> after: validity {vb['rate']:.4f} ({vb['n'] - vb['k']} failures of {vb['n']}) -> "
             f"{va['rate']:.4f} ({va['n'] - va['k']} of {va['n']}); "
             + ("the same inputs." if ids_a == ids_b else
                f"NOT the same inputs ({len(ids_a & ids_b)} shared of {len(ids_b)} and {len(ids_a)}).")]
    paths = list(dict.fromkeys([*before.get("failures_by_path", {}), *after.get("failures_by_path", {})]))
    if paths:
        lines += ["", "| field | failures before | after |", "|---|---|---|"]
        for p in paths[:15]:
            b = before.get("failures_by_path", {}).get(p, {}).get("count", 0)
            a = after.get("failures_by_path", {}).get(p, {}).get("count", 0)
            lines.append(f"| `{p}` | {b} | {a} |")
    return lines


def markdown(report: Report, seconds: float, comparison: list[str] | None = None) -> str:
    """The benchmark section's body."""
    a, st = report.adapter, report.settings
    lo, hi = a.validity.ci95
    decode = a.latency_s * a.n + (report.guard.retry_seconds * report.guard.invalid.k if report.guard else 0.0)
    lines = [f"Adapter `{report.adapter_path}` ({report.schema_title}), base `{st['base']}`, {st['dtype']}, "
             f"n={report.n} ({', '.join(f'{k} {v}' for k, v in report.inputs.items())}), greedy, "
             f"max_new_tokens={st['max_new_tokens']}, batch {st['batch_size']}, seed {st['seed']}.", "",
             f"- free validity: **{a.validity.k}/{a.validity.n} = {a.validity.rate:.4f}**, Wilson 95% "
             f"[{lo:.4f}, {hi:.4f}] (lower bound {lo:.4f}); field accuracy {a.fields.rate:.4f}",
             f"- gate: {report.gate.message}",
             f"- time: this run {seconds:.0f} s wall ({st['resumed_answers']} answers resumed from an earlier run); "
             f"decoding all answers {decode:.0f} s ({a.latency_s:.3f} s an answer, batch wall time / batch size)"]
    if report.guard is not None:
        lines.append(f"- {report.guard.text()}")
    if a.failures:
        lines += ["", "| failure kind | count | example |", "|---|---|---|"]
        for kind, g in a.failures.items():
            ex = g["example"]
            lines.append(f"| {kind} | {g['count']} | {ex['detail'][:100]} |".replace("\n", " "))
    if a.failures_by_path:
        lines += ["", "| field | answers failing there | kinds | sources |", "|---|---|---|---|"]
        for path, g in list(a.failures_by_path.items())[:15]:
            kinds = ", ".join(f"{k} {c}" for k, c in g["kinds"].items())
            sources = ", ".join(f"{k} {c}" for k, c in g["sources"].items())
            lines.append(f"| `{path}` | {g['count']} | {kinds} | {sources} |")
    if comparison:
        lines += ["", *comparison]
    lines += [f"Note: {n}" for n in report.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--adapter", default="adapters/agent_status", help="adapter directory")
    parser.add_argument("-n", type=int, default=3000, help="inputs: held-out split first, then hypothesis")
    parser.add_argument("--target", type=float, default=0.999)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="report directory [default: ADAPTER/reliability]")
    parser.add_argument("--fresh", action="store_true", help="ignore the saved answers; start again")
    parser.add_argument("--inputs", action="append", default=[], help="also a request file (repeatable)")
    parser.add_argument("--label", default=None, help="doc section bench_reliability_LABEL (e.g. before, after)")
    parser.add_argument("--compare", default=None, help="another run's report.json: failures side by side")
    parser.add_argument("--no-doc", action="store_true", help="print the section instead of writing the doc")
    args = parser.parse_args(argv)
    if not Path(args.adapter).is_dir():
        print(f"bench_reliability: no adapter at {args.adapter} (train one first, or pass --adapter DIR)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        report = run(args.adapter, args.n, target=args.target, out=args.out, batch_size=args.batch_size,
                     max_new_tokens=args.max_new_tokens, seed=args.seed, threads=args.threads, fresh=args.fresh,
                     inputs=args.inputs)
        comparison = None
        if args.compare:
            try:
                other = json.loads(Path(args.compare).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemagenError(f"not a readable report: {exc}", args.compare) from None
            comparison = compare(other, report.to_dict())
    except SchemagenError as exc:
        print(f"bench_reliability: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_reliability: interrupted; the answers so far are kept (rerun to resume)", file=sys.stderr)
        return 130
    body = markdown(report, time.perf_counter() - t0, comparison)
    print(report.text())
    print(f"\nreport: {report.out_dir}/report.json (failures_by_path for a focus round)")
    if args.no_doc:
        print("\n" + body)
        return 0
    name = "bench_reliability" + (f"_{args.label}" if args.label else "")
    command = (f"python scripts/bench_reliability.py --adapter {args.adapter} -n {args.n} --target {args.target:g}"
               + (f" --label {args.label}" if args.label else "") + (f" --compare {args.compare}" if args.compare else ""))
    title = f"Reliability at n={args.n}" + (f" ({args.label})" if args.label else "")
    update_section(name, title, command, body)
    print(f"\nwrote the {name} section of docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
