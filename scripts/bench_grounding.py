"""Values grounded in the request, side by side: adapter + grammar plain, strings grounded, and strings and
numbers grounded (`--grounded`, the default).

    .venv/bin/python scripts/bench_grounding.py ADAPTER:REQUESTS.jsonl [ADAPTER:REQUESTS.jsonl ...]

For each adapter and its hand-written request file, `evaluate` runs three times in one process, the same
settings but `grounded` (False, "strings", True): adapter + grammar on every request of the file
(`grammar_n` = its size) and the guard (a constrained retry of each invalid free answer). The free
answers are the same in every run (no grammar), so the table shows what grounding changes: the grammar
answers' field accuracy, by path, and the guarded figures. Reports go under `--work`; the section
`bench_grounding` of docs/BENCHMARKS.md is rewritten unless `--no-write`.
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

MODES: list[tuple[str, bool | str, str]] = [  # (report folder, `grounded`, label)
    ("plain", False, "schema grammar"), ("strings", "strings", "strings grounded"),
    ("grounded", True, "strings and numbers grounded")]


def one(adapter: str, requests: str, grounded: bool | str, work: Path, threads: int | None,
        max_new_tokens: int = 256, folder: str = "grounded") -> dict[str, Any]:
    """One eval of `adapter` on `requests` (grounded as asked): the section's systems and guard, and the
    time."""
    from schema_specialist.evaluate import evaluate
    from schema_specialist.evaluate.inputs import file_items
    from schema_specialist.evaluate.runner import load_adapter_meta

    n = len(file_items(requests, load_adapter_meta(adapter).schema, "requests"))
    t0 = time.perf_counter()
    report = evaluate(adapter, n=1, inputs=[requests], baselines=False, grammar_n=n, guard=True,
                      grounded=grounded, out_dir=work / f"{Path(adapter).name}-{folder}",
                      threads=threads, progress="none", max_new_tokens=max_new_tokens)
    section = report.sections[0]
    return {"systems": section.systems, "guard": section.guard, "seconds": time.perf_counter() - t0}


def _rate(r: Any) -> str:
    return f"{r.rate:.3f}"


def table(adapter: str, requests: str, runs: list[dict[str, Any]]) -> str:
    """The side-by-side table of one adapter's runs, one a mode of `MODES`."""
    free = runs[0]["systems"]["adapter"]
    rows = [f"`{adapter}` on `{requests}` (n={free.n}):", "",
            "| system | valid [95% CI] | field acc. | exact | s/answer |", "|---|---|---:|---:|---:|",
            f"| adapter, free (the same in every run) | {free.validity.text()} | {_rate(free.fields)} | "
            f"{_rate(free.exact)} | {free.latency_s:.2f} |"]
    for (_, _, label), run in zip(MODES, runs, strict=True):
        g = run["systems"].get("adapter+grammar")
        if g is not None:
            rows.append(f"| adapter + grammar, {label} | {g.validity.text()} | **{_rate(g.fields)}** | "
                        f"{_rate(g.exact)} | {g.latency_s:.2f} |")
    for (_, _, label), run in zip(MODES, runs, strict=True):
        gd = run["guard"]
        if gd is not None:
            rows.append(f"| guard, {label} ({gd.invalid.k} retried) | {gd.validity.text()} | {_rate(gd.fields)} | | "
                        f"{gd.retry_seconds:.2f} a retry |")
    systems = [run["systems"].get("adapter+grammar") for run in runs]
    if all(s is not None for s in systems):
        paths = sorted({p for s in systems for p in s.fields_by_path})
        wrong = [(p, [s.fields_by_path.get(p, {}).get("wrong", 0) for s in systems],
                  max(s.fields_by_path.get(p, {}).get("total", 0) for s in systems)) for p in paths]
        wrong = [w for w in wrong if any(w[1])]
        if wrong:
            rows += ["", "Gold leaves wrong under the grammar, by path:", "",
                     "| path | " + " | ".join(label for _, _, label in MODES) + " | of |",
                     "|---|" + "---:|" * (len(MODES) + 1)]
            rows += [f"| `{p}` | " + " | ".join(str(k) for k in ks) + f" | {t} |"
                     for p, ks, t in sorted(wrong, key=lambda w: -w[1][0])]
    rows += ["", "Eval wall time: " + ", ".join(f"{run['seconds']:.0f} s {label}" for (_, _, label), run
                                                 in zip(MODES, runs, strict=True))
             + " (model load, free answers, grammar answers and the guard each)."]
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
        runs = [one(adapter, requests, grounded, Path(args.work), args.threads, args.max_new_tokens, folder)
                for folder, grounded, _ in MODES]
        parts.append(table(adapter, requests, runs))
        print(parts[-1], flush=True)
    if not args.no_write:
        body = ("Adapter + grammar decodes under the schema's own grammar; with `--grounded` (the default of "
                "`schemagen eval` and `schemagen serve`) each free-text string may only copy a run of the "
                "request's words and each number may only be one the request writes (`generate/grounding.py`), "
                "the contract every training pair keeps. The middle run grounds the strings alone, as "
                "`--grounded` did before numbers were.\n\n" + "\n\n".join(parts))
        update_section("bench_grounding", "Values grounded in the request: adapter + grammar side by side",
                       "python scripts/bench_grounding.py " + " ".join(args.pairs), body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
