"""`schemagen check` on the JSONSchemaBench sample: which real-world schemas the pre-commit hook fails, and why.

    .venv/bin/python scripts/bench_check.py [--bench ../shared/bench/jsonschemabench] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(ROOT.parent / "shared" / "bench" / "jsonschemabench"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    from schema_specialist.checks.schemas import check_schema_file

    files = sorted(Path(args.bench).glob("*/*.json"))
    if not files:
        print(f"bench_check: no schemas under {args.bench}", file=sys.stderr)
        return 2
    failed: Counter[str] = Counter()
    warned: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    n_failed = 0
    for f in files:
        report = check_schema_file(f, compile=False)
        n_failed += report.failed()
        errors = [i for i in report.issues if i.severity == "error"]
        for code in {i.code for i in errors}:
            failed[code] += 1
        for code in {i.code for i in report.issues if i.severity == "warning"}:
            warned[code] += 1
        for i in errors:
            what = i.message.split(" is enforced")[0].split(" risks ")[0]
            what = (what if len(what) <= 70 else what[:67] + "...").replace("|", "\\|")
            causes[what] += 1
            examples.setdefault(what, f"{f.parent.name}/{f.name}")
    body = [f"`check_schema_file(..., compile=False)` (what `schemagen check --no-compile` runs) on each of the "
            f"{len(files)} schemas of the sample. **{n_failed} of {len(files)} fail** (an error).", "",
            "| issue code | schemas with it as an error | schemas with it as a warning |", "|---|---:|---:|"]
    for code in sorted(set(failed) | set(warned)):
        body.append(f"| `{code}` | {failed[code]} | {warned[code]} |")
    body += ["", "The errors, by what they name:", "", "| keyword or format | schemas | e.g. |", "|---|---:|---|"]
    for what, count in causes.most_common():
        body.append(f"| {what} | {count} | `{examples[what]}` |")
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        from _bench_md import update_section

        update_section("bench_check", "schemagen check on real-world schemas (JSONSchemaBench sample)",
                       "python scripts/bench_check.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
