"""Benchmark `schemagen eval`: the specialist free and under the grammar vs the base model with the schema in
its prompt vs the base model under the grammar, on the main inputs and on hand-written request files.

    .venv/bin/python scripts/bench_eval.py                      # adapters/agent_status, n=300, baselines on 100
    .venv/bin/python scripts/bench_eval.py --inputs schemas/agent_status.requests.jsonl
    .venv/bin/python scripts/bench_eval.py --adapter DIR -n 20 --baseline-n 10 --no-doc

Writes the `bench_eval` section of docs/BENCHMARKS.md (unless --no-doc): validity with its Wilson 95%
interval, field accuracy, prompt tokens and seconds per answer for each system, on the same inputs
(held-out test split, then hypothesis-drawn questions; each --inputs file its own table), the prompt
length whole and beyond the question, the guard, the adapter's failure kinds and fields, and the gate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench_md import update_section  # noqa: E402

from schema_specialist.errors import SchemagenError  # noqa: E402
from schema_specialist.evaluate import Report, SystemResult, evaluate  # noqa: E402


def _rows(systems: dict[str, SystemResult]) -> list[str]:
    rows = ["| system | n | validity [95% CI] | field accuracy | exact | prompt tokens | s/answer |",
            "|---|---|---|---|---|---|---|"]
    for s in systems.values():
        label = s.label + (f" ({s.engine})" if s.engine else "")
        rows.append(f"| {label} | {s.n} | {s.validity.text()} | {s.fields.text() if s.fields.n else '-'} | "
                    f"{f'{s.exact.rate:.3f}' if s.exact.n else '-'} | {s.prompt_tokens:.0f} | {s.latency_s:.3f} |")
    return rows


def markdown(report: Report, seconds: float) -> str:
    """The benchmark section's body."""
    st = report.settings
    lines = [f"Adapter `{report.adapter_path}` ({report.schema_title}), base `{st['base']}`, {st['dtype']}; "
             f"n={report.n} inputs ({', '.join(f'{k} {v}' for k, v in report.inputs.items())}), baselines on "
             f"{st['baseline_n']} of them and adapter + grammar on {st['grammar_n']} (evenly spread); "
             f"greedy={st['temperature'] == 0}, max_new_tokens={st['max_new_tokens']}, batch {st['batch_size']}, "
             f"seed {st['seed']}; whole run {seconds:.0f} s.", "", *_rows(report.systems), ""]
    red, over = report.prompt_reduction(), report.overhead_reduction()
    if red is not None:
        text = f"The adapter's prompt is {red[2]:.0f}% shorter in all ({red[0]:.0f} vs {red[1]:.0f} tokens)"
        if over is not None:
            text += (f", {over[2]:.0f}% shorter beyond the question's own data ({over[0]:.0f} vs {over[1]:.0f} "
                     f"tokens of template and instructions a request)")
        lines.append(text + ".")
    if report.guard is not None:
        lines.append(f"The {report.guard.text()}.")
    fails = report.adapter.failures
    if fails:
        lines.append("Adapter failures: " + ", ".join(f"{k} {g['count']}" for k, g in fails.items()) + "; by field: "
                     + ", ".join(f"`{p}` {g['count']}" for p, g in list(report.adapter.failures_by_path.items())[:6])
                     + ".")
    for sec in report.sections:
        lines += ["", f"On `{sec.path}` ({sec.n} requests, {sec.answered} with a gold answer):", "",
                  *_rows(sec.systems), ""]
        a = sec.systems.get("adapter")
        if a is not None and a.by_style:
            lines.append("Adapter by style (validity / field accuracy): " + ", ".join(
                f"{name} {d['validity']['rate']:.2f} / {d['fields']['rate']:.2f} (n={d['n']})"
                for name, d in a.by_style.items()) + ".")
        if sec.guard is not None:
            lines.append(f"The {sec.guard.text()}.")
    lines += ["", f"Gate: {report.gate.message}", "",
              "s/answer is batch wall time divided by batch size (CPU). Validity = parses as JSON and "
              "validates against the schema, formats checked."]
    lines += [f"Note: {n}" for n in report.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="adapters/agent_status", help="adapter directory")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--baseline-n", type=int, default=100)
    parser.add_argument("--grammar-n", type=int, default=100, help="inputs of each source for adapter + grammar")
    parser.add_argument("--inputs", action="append", default=[], help="a hand-written request file (repeatable)")
    parser.add_argument("--fresh", action="store_true", help="ignore the saved answers")
    parser.add_argument("--target", type=float, default=0.999)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="report directory [default: ADAPTER/report]")
    parser.add_argument("--no-doc", action="store_true", help="print the section instead of writing the doc")
    args = parser.parse_args(argv)
    if not Path(args.adapter).is_dir():
        print(f"bench_eval: no adapter at {args.adapter} (train one first, or pass --adapter DIR)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        report = evaluate(args.adapter, n=args.n, target=args.target, baseline_n=args.baseline_n,
                          grammar_n=args.grammar_n, inputs=args.inputs, batch_size=args.batch_size,
                          max_new_tokens=args.max_new_tokens, seed=args.seed, threads=args.threads,
                          out_dir=args.out, progress="auto", fresh=args.fresh)
    except SchemagenError as exc:
        print(f"bench_eval: error: {exc}", file=sys.stderr)
        return 2
    body = markdown(report, time.perf_counter() - t0)
    print(report.text())
    command = (f"python scripts/bench_eval.py --adapter {args.adapter} -n {args.n} "
               f"--baseline-n {args.baseline_n} --grammar-n {args.grammar_n} --target {args.target:g}"
               + "".join(f" --inputs {x}" for x in args.inputs))
    if args.no_doc:
        print("\n" + body)
    else:
        update_section("bench_eval", "schemagen eval: specialist (free, grammar) vs schema-in-prompt vs constrained",
                       command, body)
        print("\nwrote the bench_eval section of docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
