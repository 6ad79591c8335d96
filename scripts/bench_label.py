"""Labelling the user's own requests (`generate --inputs`): the teacher's answers with and without grounding.

    .venv/bin/python scripts/bench_label.py [SCHEMA ...]     # default: schemas/agent_status.json

For each schema, its hand-written requests (`SCHEMA.requests.jsonl`, gold answers set aside) are answered
by the local teacher the way `generate --inputs` does (greedy, `prompts.label_messages`, under the
schema's grammar), once with the plain grammar (`Teacher.complete`) and twice with each request's own
grounded grammar (`Teacher.label`): strings grounded alone, then strings and numbers (the default). Each answer is judged as `generate` judges it (`label.judge_answer`:
valid after repair, every value stated in the request), and its leaves are compared with the gold answer.
Writes the `bench_label` section of docs/BENCHMARKS.md unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _bench_md import update_section  # noqa: E402

MODES = ("plain", "strings grounded", "grounded")  # grounded: strings and numbers (`Teacher.label`'s default)


def measure(teacher: Any, schema_path: Path, limit: int | None, max_new_tokens: int) -> dict[str, Any]:
    """Each mode over one schema's hand-written requests: accepted, valid, fields right, seconds."""
    from schema_specialist.evaluate.inputs import file_items
    from schema_specialist.evaluate.metrics import field_match
    from schema_specialist.generate.label import judge_answer
    from schema_specialist.prompts import label_messages
    from schema_specialist.schema import load_schema

    schema = load_schema(schema_path)
    items = [it for it in file_items(schema_path.with_suffix(".requests.jsonl"), schema, "requests") if it.has_gold]
    items = items[:limit] if limit else items
    title = str(schema.raw.get("title") or schema_path.stem)
    prompts = [label_messages(schema.raw, title, it.question) for it in items]
    teacher.prepare(schema.raw)
    out: dict[str, Any] = {"n": len(items)}
    for mode in MODES:
        t0 = time.perf_counter()
        if mode == "plain":
            done = teacher.complete(prompts, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
        else:
            teacher.ground_numbers = mode == "grounded"
            done = teacher.label(prompts, [it.question for it in items], max_new_tokens=max_new_tokens, seed=0)
        seconds = time.perf_counter() - t0
        accepted = valid = right = total = 0
        reasons: Counter[str] = Counter()
        for it, c in zip(items, done, strict=True):
            _, _, why = judge_answer(c.text, it.question, schema)
            if why is None:
                accepted += 1
            else:
                reasons[why.split(":")[0]] += 1
            try:
                got, parsed = json.loads(c.text), True
            except ValueError:
                got, parsed = None, False
            valid += bool(parsed and schema.is_valid(got))
            k, n = field_match(got, it.gold, parsed)
            right, total = right + k, total + n
        out[mode] = {"accepted": accepted, "valid": valid, "fields": right / total if total else 0.0,
                     "seconds": seconds / max(1, len(items)), "rejected": reasons}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("schemas", nargs="*", default=["schemas/agent_status.json"])
    ap.add_argument("--teacher", default="smollm2", help="A local model (path or name).")
    ap.add_argument("--limit", type=int, default=None, help="First N requests of each file.")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--no-write", action="store_true", help="Print only; leave docs/BENCHMARKS.md alone.")
    args = ap.parse_args(argv)

    from schema_specialist.teachers.local import LocalTeacher

    teacher = LocalTeacher(args.teacher, dtype=args.dtype)
    rows = ["| schema | n | grammar | accepted (valid, grounded) | valid | fields right vs gold | s/answer | rejected |",
            "|---|---:|---|---:|---:|---:|---:|---|"]
    for path in args.schemas:
        r = measure(teacher, Path(path), args.limit, args.max_new_tokens)
        for mode in MODES:
            m = r[mode]
            why = ", ".join(f"{k} {v}" for k, v in sorted(m["rejected"].items())) or "-"
            rows.append(f"| `{Path(path).stem}` | {r['n']} | {mode} | {m['accepted']} | {m['valid']} | "
                        f"{m['fields']:.3f} | {m['seconds']:.2f} | {why} |")
    table = "\n".join(rows)
    print(table)
    if not args.no_write:
        body = (f"Teacher: `{args.teacher}` ({teacher.describe().get('dtype', args.dtype)}), greedy, the schema's own "
                "grammar, the request in `prompts.label_messages`; plain = `Teacher.complete`, grounded = "
                "`Teacher.label` (each request's free-text strings only as runs of its words and, unless 'strings "
                "grounded', its numbers only ones it writes). Accepted = what "
                "`generate --inputs` keeps (`label.judge_answer`). Fields are against the hand-written gold "
                "answers, which the teacher never sees.\n\n" + table)
        update_section("bench_label", "Labelling the user's requests: plain vs grounded grammar",
                       "python scripts/bench_label.py " + " ".join(args.schemas), body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
