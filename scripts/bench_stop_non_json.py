"""The schema-in-prompt baseline with and without the stop at a first character no JSON starts with.

Both runs answer the same requests with the same greedy decoding; the script checks that every answer
scores the same (parse, validity, failure kind, field accuracy) and reports tokens and seconds.

    .venv/bin/python scripts/bench_stop_non_json.py [--adapter adapters/agent_status] [-n 20] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default=str(ROOT / "adapters" / "agent_status"))
    ap.add_argument("--inputs", default=None, help="requests JSONL [default: the schema's hand-written file]")
    ap.add_argument("-n", type=int, default=20, help="requests from the held-out split and from --inputs each")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = ap.parse_args(argv)

    from schema_specialist import evaluate as ev
    from schema_specialist.errors import SchemagenError
    from schema_specialist.evaluate.inputs import file_items, test_items
    from schema_specialist.evaluate.runner import starts_no_json
    from schema_specialist.evaluate.scoring import score

    try:
        info = ev.load_adapter_meta(args.adapter)
        schema = info.schema
        items = test_items(info.dataset)[:args.n]
        requests = args.inputs or str(ROOT / "schemas" / f"{info.name}.requests.jsonl")
        if Path(requests).is_file():
            items += file_items(requests, schema)[:args.n]
        runner = ev.ModelRunner(info, threads=args.threads)
    except SchemagenError as exc:
        print(f"bench_stop_non_json: {exc}", file=sys.stderr)
        return 2
    rows = []
    answers = {}
    for stop in (False, True):  # the old way first: its run also warms the kernels for the same shapes
        runner.stop_non_json = stop
        t0 = time.perf_counter()
        gens = runner.prompted_generator(items)
        seconds = time.perf_counter() - t0
        scored = [score(it, g, schema) for it, g in zip(items, gens, strict=True)]
        answers[stop] = scored
        rows.append({"stop": stop, "seconds": seconds, "tokens": sum(g.completion_tokens for g in gens),
                     "stopped": sum(starts_no_json(g.text) for g in gens),
                     "parse": sum(s.parsed for s in scored), "valid": sum(s.valid for s in scored)})
    same = all((a.parsed, a.valid, a.failure and a.failure[0], a.fields) ==
               (b.parsed, b.valid, b.failure and b.failure[0], b.fields)
               for a, b in zip(answers[False], answers[True], strict=True))
    body = [f"Adapter `{Path(args.adapter).name}` (its base model, adapter off), the schema in the prompt, greedy, "
            f"{len(items)} requests ({min(args.n, len(items))} from the held-out split, the rest hand-written), "
            "one batch, the two settings one after the other in one process. Every answer scores the same "
            f"in both: **{'yes' if same else 'NO'}**.", "",
            "| free answers | answers that start with no JSON character | completion tokens | parse | valid | "
            "seconds |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = "stop at a first character no JSON starts with" if r["stop"] else "decode to max_new_tokens (before)"
        body.append(f"| {name} | {r['stopped']} / {len(items)} | {r['tokens']} | {r['parse']} | {r['valid']} | "
                    f"{r['seconds']:.1f} |")
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        from _bench_md import update_section

        update_section("bench_stop_non_json", "eval: free answers stop where they can no longer parse",
                       f"python scripts/bench_stop_non_json.py --adapter {args.adapter} -n {args.n}", text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
