"""The batcher's prefill thread, side by side in one process: with it and without it, batched and one at a time.

    .venv/bin/python scripts/bench_batcher.py          # writes the `bench_batcher` section of docs/BENCHMARKS.md

Four Routers on the same registry (`--adapters`, default `adapters/`: the demo's `agent_status` and
`log_config`): `max_batch` 16 and 1, each with the prefill thread (`prefill_thread=True`, the default) and
without it (the decoding thread prefills between its steps). The requests are bench_serve's mix of the
hand-written sets (strict, full answers, greedy), sent by `--clients` threads straight to `Router.submit`
(no HTTP), closed loop. The batched pair runs twice: cold (the prefix caches empty) and warm (the same
requests again: their prompts are cached, so the second round measures decoding alone).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _bench_md import update_section  # noqa: E402
from bench_serve import load_requests  # noqa: E402


def run(router: Any, requests: list[Any], clients: int) -> dict[str, Any]:
    """`requests` through `router` from `clients` threads; wall time, answers and the batcher's split."""
    before = router.batcher.stats()

    def one(req: Any) -> Any:
        return router.submit(router.plan(req.question, req.schema, strict=True)).wait()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, requests))
    wall = time.perf_counter() - t0
    after = router.batcher.stats()
    split = {k: after[k] - before[k] for k in ("prefill_seconds", "join_seconds", "step_seconds", "steps")}
    return {"wall": wall, "rps": len(requests) / wall, "valid": sum(a.valid is not False for a in answers),
            "texts": [a.json_text for a in answers], **split}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapters", default="adapters", help="Registry with the two trained adapters.")
    ap.add_argument("--clients", type=int, default=16, help="Concurrent clients.")
    ap.add_argument("--batched", type=int, default=96, help="Requests for each batched run.")
    ap.add_argument("--serial", type=int, default=48, help="Requests for each max_batch=1 run.")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    ap.add_argument("--no-write", action="store_true", help="Print only; leave docs/BENCHMARKS.md alone.")
    args = ap.parse_args()

    from schema_specialist.serve.router import Router

    routers = {(mb, th): Router(args.adapters, None, threads=args.threads, max_batch=mb, prefill_thread=th)
               for mb in (16, 1) for th in (False, True)}
    probe = routers[(16, False)]
    if len(probe.names) < 2:
        raise SystemExit(f"{args.adapters}: needs two trained adapters (found {probe.names})")
    requests = load_requests(dict(probe.by_hash))
    plan = [("batched, cold", 16, args.batched), ("one at a time", 1, args.serial), ("batched, warm", 16, args.batched)]
    results: dict[tuple[str, bool], dict[str, Any]] = {}
    for label, mb, n in plan:
        for threaded in (False, True):  # back to back: the pair shares the machine's state of the moment
            res = results[(label, threaded)] = run(routers[(mb, threaded)], requests[:n], args.clients)
            print(label, "prefill thread" if threaded else "inline", {k: v for k, v in res.items() if k != "texts"},
                  flush=True)
    for r in routers.values():
        r.close()

    rows = ["| run | requests | prefill | req/s | wall (s) | prefill (s) | joining (s) | steps (s) | steps | "
            "valid | gain |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, _, n in plan:
        base = results[(label, False)]
        for threaded in (False, True):
            res = results[(label, threaded)]
            gain = f"{res['rps'] / base['rps']:.2f}x" if threaded else "-"
            rows.append(f"| {label} | {n} | {'its own thread' if threaded else 'between steps'} | "
                        f"{res['rps']:.3f} | {res['wall']:.1f} | {res['prefill_seconds']:.1f} | "
                        f"{res['join_seconds']:.1f} | {res['step_seconds']:.1f} | {res['steps']} | "
                        f"{res['valid']}/{n} | {gain} |")
    same = {label: sum(a == b for a, b in zip(results[(label, False)]["texts"], results[(label, True)]["texts"],
                                              strict=True)) for label, _, _ in plan}
    gains = {label: results[(label, True)]["rps"] / results[(label, False)]["rps"] for label, _, _ in plan}
    ratio = {th: results[("batched, cold", th)]["rps"] / results[("one at a time", th)]["rps"] for th in (False, True)}
    body = "\n".join([
        f"Base: embedded SmolLM2-135M-Instruct ({probe.dtype}, CPU, torch threads {args.threads}); adapters "
        f"{', '.join(probe.names)}; bench_serve's request mix (hand-written requests, 20% for schemas with no "
        f"adapter), strict, full answers, greedy; {args.clients} client threads calling `Router.submit` (no HTTP). "
        "Each pair runs back to back in one process.",
        "",
        *rows,
        "",
        "- Answers identical with and without the prefill thread: "
        + "; ".join(f"{label} {same[label]}/{n}" for label, _, n in plan)
        + " (bf16: batched rows join at other steps beside other rows, so their sums "
          "run in another order).",
        f"- Batched / one at a time (cold): {ratio[False]:.2f}x between steps, {ratio[True]:.2f}x with the "
        f"prefill thread (the thread's gain: batched {gains['batched, cold']:.2f}x, one at a time "
        f"{gains['one at a time']:.2f}x).",
        "- The prefill thread's seconds overlap the steps; under the GIL each thread slows the other "
        "(`batcher.SWITCH_INTERVAL`).",
    ])
    cmd = "python scripts/bench_batcher.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    print(body)
    if not args.no_write:
        update_section("bench_batcher", "Serving: the batcher's prefill thread, side by side", cmd, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
