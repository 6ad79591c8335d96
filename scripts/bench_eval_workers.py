"""Benchmark `schemagen eval --workers`: the demo's eval in one process, then dealt out to two.

    .venv/bin/python scripts/bench_eval_workers.py                   # adapters/agent_status, the demo's eval
    .venv/bin/python scripts/bench_eval_workers.py -n 40 --baseline-n 4 --grammar-n 8 --no-write

Runs the same `evaluate()` call (the demo's options: n=300, baselines on 20, adapter + grammar on 40, the
schema's hand-written requests) from scratch, first with one process using every core, then with
`--workers 2` (one thread each), into two fresh report directories. Prints and writes (unless
--no-write) the `bench_eval_workers` section of docs/BENCHMARKS.md: wall seconds of each, and how many
answers and scores the two runs share.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from schema_specialist.errors import SchemagenError  # noqa: E402
from schema_specialist.evaluate import Report, evaluate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default=str(ROOT / "adapters" / "agent_status"))
    parser.add_argument("--inputs", default=None, help="hand-written requests [default: the schema's, if any]")
    parser.add_argument("--no-inputs", action="store_true", help="no hand-written request file")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--baseline-n", type=int, default=20)
    parser.add_argument("--grammar-n", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave the doc alone")
    args = parser.parse_args()
    name = Path(args.adapter).name
    requests = args.inputs or str(ROOT / "schemas" / f"{name}.requests.jsonl")
    inputs = [requests] if Path(requests).is_file() and not args.no_inputs else []
    runs: dict[int, tuple[Report, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for workers in (1, args.workers):
                t0 = time.perf_counter()
                report = evaluate(args.adapter, n=args.n, baseline_n=args.baseline_n, grammar_n=args.grammar_n,
                                  inputs=inputs, out_dir=Path(tmp) / f"w{workers}", fresh=True, workers=workers)
                runs[workers] = (report, time.perf_counter() - t0)
    except SchemagenError as exc:
        print(f"bench_eval_workers: {exc}", file=sys.stderr)
        return 2
    (one, t1), (many, tn) = runs[1], runs[args.workers]
    same_text = sum(a["answer"] == b["answer"] for a, b in zip(one.answers, many.answers, strict=True))
    same_valid = sum(a["valid"] == b["valid"] for a, b in zip(one.answers, many.answers, strict=True))
    rows = ["| run | wall s | adapter free: valid / fields | hand-written free: valid / fields |",
            "|---|---:|---|---|"]
    for label, (rep, secs) in (("1 process, every core", runs[1]),
                               (f"--workers {args.workers}, 1 thread each", runs[args.workers])):
        hand = rep.sections[0].systems["adapter"] if rep.sections else None
        hw = f"{hand.validity.rate:.3f} / {hand.fields.rate:.3f}" if hand else "-"
        rows.append(f"| {label} | {secs:.0f} | {rep.adapter.validity.rate:.3f} / {rep.adapter.fields.rate:.3f} "
                    f"| {hw} |")
    body = "\n".join([
        f"Adapter `{name}`, the demo's eval (n={args.n}, baselines on {args.baseline_n} of each source, adapter + "
        f"grammar on {args.grammar_n}, the guard{', ' + Path(requests).name if inputs else ''}), each run from "
        "scratch into its own report directory, one after the other.", "", *rows, "",
        f"{args.workers} processes took {tn / t1:.2f}x the time of one ({t1 - tn:+.0f} s saved). Of "
        f"{len(one.answers)} free adapter answers, {same_text} are the same text in both runs and {same_valid} "
        "score the same validity (a row decoded in another batch can differ in its last bf16 bits)."])
    print(body)
    if not args.no_write:
        from _bench_md import project_path, update_section

        update_section("bench_eval_workers", "eval: one process vs workers",
                       f"python scripts/bench_eval_workers.py --adapter {project_path(args.adapter)} -n {args.n} "
                       f"--baseline-n {args.baseline_n} --grammar-n {args.grammar_n} --workers {args.workers}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
