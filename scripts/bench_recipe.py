"""The recipe search: data size, epochs and question-style shares against hand-written requests.

    .venv/bin/python scripts/bench_recipe.py --schema schemas/support_ticket.json \\
        --grid "n=300,epochs=2" --grid "n=300,epochs=4" --grid "n=600,epochs=2" --jobs 2

Each grid point is `key=value` pairs: generate's `n`, `prose_share`, `drop_optional`, `seed`, and train's
`epochs`, `lr`, `lora_r`, `max_steps` (anything else is passed to `schemagen train` as `--key value`).
A point generates its dataset (cached by its generate settings), trains an adapter (cached by both), and
scores the adapter alone, unconstrained, on the schema's hand-written requests (`SCHEMA.requests.jsonl`
or `--inputs`), never on inputs the generator wrote. `--jobs 2` runs two points at once, one thread each
(two 1-thread processes beat one 2-thread process on this machine). Results go to the `bench_recipe`
section of docs/BENCHMARKS.md (`--no-doc` to skip) with the wall time of each stage.

Choose the defaults on a development schema's requests, then report the chosen recipe on others: the
request sets are test sets, and a recipe picked on one is only an honest figure on the rest.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_md import update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GENERATE_KEYS = {"n": "-n", "prose_share": "--prose-share", "drop_optional": "--drop-optional", "seed": "--seed",
                 "lengthen": "--lengthen", "phrases": "--phrases", "vary_shape": "--vary-shape",
                 "vary_numbers": "--vary-numbers"}
FLAGS = {"vary_shape", "vary_numbers"}  # on/off: vary_shape=0 is --no-vary-shape
DEFAULT_GEN = {"seed": "1"}


def parse_point(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"bench_recipe: bad grid point {text!r}: expected key=value pairs")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _key(d: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def _run(cmd: list[str], log: Path, core: int | None) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = (["taskset", "-c", str(core)] if core is not None else []) + cmd
    t = time.perf_counter()
    with log.open("a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(full) + "\n")
        fh.flush()
        rc = subprocess.run(full, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False).returncode
    if rc not in (0, 1):  # eval exits 1 below target: not an error here
        raise RuntimeError(f"{cmd[1]} failed (exit {rc}); see {log}")
    return time.perf_counter() - t


def run_point(point: dict[str, str], schema: Path, inputs: list[Path], work: Path, core: int | None) -> dict[str, Any]:
    """Generate, train and score one grid point; cached stages are skipped."""
    exe = str(ROOT / ".venv" / "bin" / "schemagen")
    gen = {**DEFAULT_GEN, **{k: v for k, v in point.items() if k in GENERATE_KEYS}}
    tr = {k: v for k, v in point.items() if k not in GENERATE_KEYS}
    data = work / f"data-{schema.stem}-{_key(gen)}"
    adapter = work / f"adapter-{schema.stem}-{_key({**gen, **tr})}"
    log = work / f"{adapter.name}.log"
    times: dict[str, float] = {}
    if not (data / "manifest.json").exists() or not json.loads((data / "manifest.json").read_text()).get("complete"):
        cmd = [exe, "generate", str(schema), "-o", str(data), "--workers", "1", "--quiet"]
        for k, v in gen.items():
            if k in FLAGS:
                cmd.append(GENERATE_KEYS[k] if v.lower() in ("1", "true", "on", "yes")
                           else GENERATE_KEYS[k].replace("--", "--no-", 1))
            else:
                cmd += [GENERATE_KEYS[k], v]
        times["generate"] = _run(cmd, log, core)
    if not (adapter / "adapter_model.safetensors").exists():
        cmd = [exe, "train", str(data), "-o", str(adapter), "--threads", "1", "--no-progress"]
        for k, v in tr.items():
            cmd += [f"--{k.replace('_', '-')}", v]
        times["train"] = _run(cmd, log, core)
    scores: dict[str, dict[str, float]] = {}
    for req in inputs:
        out = adapter / f"dev-{req.stem}"
        cmd = [exe, "eval", str(adapter), "-n", "1", "--no-baselines", "--grammar-n", "0", "--no-guard",
               "--inputs", str(req), "-o", str(out), "--threads", "1", "--progress", "none"]
        times[f"eval {req.stem}"] = _run(cmd, log, core)
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        for f in report["input_files"]:
            s = f["systems"]["adapter"]
            scores[f["name"]] = {m: s[m]["rate"] for m in ("parse", "validity", "fields")} | {
                "validity_lo": s["validity"]["ci95"][0], "n": s["validity"]["n"]}
    meta = json.loads((adapter / "schemagen.json").read_text(encoding="utf-8"))
    return {"point": point, "data": str(data), "adapter": str(adapter), "scores": scores, "seconds": times,
            "train_seconds": meta.get("metrics", {}).get("seconds"), "steps": meta.get("metrics", {}).get("steps"),
            "val_loss": meta.get("metrics", {}).get("val_loss")}


def table(results: list[dict[str, Any]]) -> str:
    names = sorted({n for r in results for n in r["scores"]})
    head = "| recipe | steps | val loss | " + " | ".join(f"{n}: valid [lo] / fields" for n in names) + " |"
    lines = [head, "|" + "---|" * (3 + len(names))]
    for r in results:
        cells = []
        for n in names:
            s = r["scores"].get(n)
            cells.append(f"{s['validity']:.3f} [{s['validity_lo']:.3f}] / {s['fields']:.3f} (n={s['n']})" if s else "")
        point = ", ".join(f"{k}={v}" for k, v in r["point"].items()) or "defaults"
        vl = f"{r['val_loss']:.4f}" if isinstance(r["val_loss"], float) else "n/a"
        lines.append(f"| {point} | {r['steps']} | {vl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schema", type=Path, default=ROOT / "schemas" / "support_ticket.json")
    ap.add_argument("--inputs", type=Path, action="append", default=None,
                    help="hand-written request files [default: SCHEMA.requests.jsonl]")
    ap.add_argument("--grid", action="append", default=None, help="one grid point: key=value,... (repeatable)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "recipe")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    inputs = args.inputs or [args.schema.with_name(args.schema.stem + ".requests.jsonl")]
    missing = [p for p in [args.schema, *inputs] if not p.is_file()]
    if missing:
        print(f"bench_recipe: {missing[0]}: no such file", file=sys.stderr)
        return 2
    points = [parse_point(g) for g in (args.grid or ["n=300,epochs=2"])]
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cores = [0, 1] if args.jobs > 1 else [None]
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = [pool.submit(run_point, p, args.schema, inputs, args.work, cores[i % len(cores)])
                for i, p in enumerate(points)]
        results = [f.result() for f in futs]
    (args.work / f"results-{args.schema.stem}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    body = table(results)
    print(body)
    print(f"bench_recipe: {len(results)} points in {time.perf_counter() - t0:.0f} s")
    if not args.no_doc:
        cmd = "python scripts/bench_recipe.py --schema " + str(args.schema.resolve().relative_to(ROOT)) + "".join(
            f' --grid "{g}"' for g in (args.grid or [])) + (f" --jobs {args.jobs}" if args.jobs > 1 else "")
        update_section(f"bench_recipe_{args.schema.stem}", f"The recipe search on {args.schema.stem}'s hand-written "
                       "requests (adapter alone, unconstrained)", cmd,
                       body + f"\n\nTotal wall time {time.perf_counter() - t0:.0f} s, {len(results)} points, "
                       f"{args.jobs} at a time, one thread each.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
