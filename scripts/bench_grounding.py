"""Strings grounded in the request, side by side: adapter + grammar with and without `--grounded`.

    .venv/bin/python scripts/bench_grounding.py ADAPTER:REQUESTS.jsonl [ADAPTER:REQUESTS.jsonl ...]

For each adapter and its hand-written request file, `evaluate` runs twice in one process, the same
settings but `grounded`: adapter + grammar on every request of the file (`grammar_n` = its size) and the
guard (a constrained retry of each invalid free answer). The free answers are the same in both runs (no
grammar), so the table shows what grounding changes: the grammar answers' field accuracy, by path, and
the guarded figures. Reports go under `--work`; the section `bench_grounding` of docs/BENCHMARKS.md is
rewritten unless `--no-write`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _bench_md import update_section  # noqa: E402


def one(adapter: str, requests: str, grounded: bool, work: Path, threads: int | None,
        max_new_tokens: int = 256) -> dict[str, Any]:
    """One eval of `adapter` on `requests` (grounded or not): the section's systems and guard, and the time."""
    from schema_specialist.evaluate import evaluate
    from schema_specialist.evaluate.inputs import file_items
    from schema_specialist.evaluate.runner import load_adapter_meta

    n = len(file_items(requests, load_adapter_meta(adapter).schema, "requests"))
    t0 = time.perf_counter()
    report = evaluate(adapter, n=1, inputs=[requests], baselines=False, grammar_n=n, guard=True,
                      grounded=grounded, out_dir=work / f"{Path(adapter).name}-{'grounded' if grounded else 'plain'}",
                      threads=threads, progress="none", max_new_tokens=max_new_tokens)
    section = report.sections[0]
    return {"systems": section.systems, "guard": section.guard, "seconds": time.perf_counter() - t0}


def _rate(r: Any) -> str:
    return f"{r.rate:.3f}"


def table(adapter: str, requests: str, plain: dict[str, Any], grounded: dict[str, Any]) -> str:
    free = plain["systems"]["adapter"]
    rows = [f"`{adapter}` on `{requests}` (n={free.n}):", "",
            "| system | valid [95% CI] | field acc. | exact | s/answer |", "|---|---|---:|---:|---:|",
            f"| adapter, free (the same in both runs) | {free.validity.text()} | {_rate(free.fields)} | "
            f"{_rate(free.exact)} | {free.latency_s:.2f} |"]
    for label, run in (("adapter + schema grammar", plain), ("adapter + grammar, strings grounded", grounded)):
        g = run["systems"].get("adapter+grammar")
        if g is not None:
            rows.append(f"| {label} | {g.validity.text()} | **{_rate(g.fields)}** | {_rate(g.exact)} | "
                        f"{g.latency_s:.2f} |")
    for label, run in (("guard, schema grammar", plain), ("guard, strings grounded", grounded)):
        gd = run["guard"]
        if gd is not None:
            rows.append(f"| {label} ({gd.invalid.k} retried) | {gd.validity.text()} | {_rate(gd.fields)} | | "
                        f"{gd.retry_seconds:.2f} a retry |")
    before = plain["systems"].get("adapter+grammar")
    after = grounded["systems"].get("adapter+grammar")
    if before is not None and after is not None:
        paths = sorted(set(before.fields_by_path) | set(after.fields_by_path))
        changed = [(p, before.fields_by_path.get(p, {}).get("wrong", 0), after.fields_by_path.get(p, {}).get("wrong", 0),
                    (after.fields_by_path.get(p) or before.fields_by_path.get(p) or {}).get("total", 0)) for p in paths]
        changed = [c for c in changed if c[1] or c[2]]
        if changed:
            rows += ["", "Gold leaves wrong under the grammar, by path (schema grammar -> grounded):", "",
                     "| path | wrong, schema grammar | wrong, grounded | of |", "|---|---:|---:|---:|"]
            rows += [f"| `{p}` | {b} | {a} | {t} |" for p, b, a, t in sorted(changed, key=lambda c: -c[1])]
    rows += ["", f"Eval wall time: {plain['seconds']:.0f} s plain, {grounded['seconds']:.0f} s grounded "
                 f"(model load, free answers, grammar answers and the guard each)."]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="ADAPTER:REQUESTS", help="An adapter and its hand-written requests.")
    ap.add_argument("--work", default="runs/bench_grounding", help="Where the eval reports go.")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    ap.add_argument("--max-new-tokens", type=int, default=256, help="Answer length limit.")
    ap.add_argument("--no-write", action="store_true", help="Print only; leave docs/BENCHMARKS.md alone.")
    args = ap.parse_args(argv)
    parts = []
    for pair in args.pairs:
        adapter, _, requests = pair.partition(":")
        if not requests:
            ap.error(f"{pair}: expected ADAPTER:REQUESTS.jsonl")
        plain = one(adapter, requests, False, Path(args.work), args.threads, args.max_new_tokens)
        grounded = one(adapter, requests, True, Path(args.work), args.threads, args.max_new_tokens)
        parts.append(table(adapter, requests, plain, grounded))
        print(parts[-1], flush=True)
    if not args.no_write:
        body = ("Adapter + grammar decodes under the schema's own grammar; with `--grounded` (now the default of "
                "`schemagen eval`) each free-text string may only copy a run of the request's words "
                "(`generate/grounding.py`), the contract every training pair keeps.\n\n" + "\n\n".join(parts))
        update_section("bench_grounding", "Strings grounded in the request: adapter + grammar side by side",
                       "python scripts/bench_grounding.py " + " ".join(args.pairs), body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
