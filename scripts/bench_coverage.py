"""Benchmark real-world coverage: does `schemagen generate` get a valid pair out of each schema?

    .venv/bin/python scripts/bench_coverage.py                          # the 200-schema JSONSchemaBench sample
    .venv/bin/python scripts/bench_coverage.py --subset Github_hard --limit 5 --no-doc

For every schema: load it (metaschema check), build the decoding schema, try to compile it with each
engine (as is, then with that engine's loosening), then run the real pipeline (`generate`, embedded
SmolLM2 teacher loaded once, n pairs, a time budget, a hard timeout) and re-validate every emitted pair
against the original schema itself. Writes docs/coverage.json (per schema) and the `bench_coverage`
section of docs/BENCHMARKS.md (per subset), unless --no-doc.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench_md import update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = Path("/work/shared/bench/jsonschemabench")
ENGINE_NAMES = ("xgrammar", "llguidance", "outlines_core")
REASONS = ("metaschema", "load", "compile", "time", "all candidates invalid", "crash")


def schema_files(folder: Path, subsets: list[str] | None, limit: int | None) -> list[tuple[str, Path]]:
    """(subset, path) pairs: MANIFEST.json order when there is one, else `<subset>/*.json` sorted."""
    manifest = folder / "MANIFEST.json"
    if manifest.exists():
        files = [(f["subset"], folder / f["file"]) for f in json.loads(manifest.read_text())["files"]]
    else:
        files = [(p.parent.name, p) for p in sorted(folder.glob("*/*.json"))]
    if subsets:
        files = [f for f in files if f[0] in subsets]
    if limit is not None:
        per: Counter[str] = Counter()
        kept = []
        for sub, p in files:
            if per[sub] < limit:
                kept.append((sub, p))
                per[sub] += 1
        files = kept
    return files


# ---- work done in forked children (the teacher is loaded once, in the parent) ---------------------

_TEACHER: Any = None


def _in_child(conn: Connection, fn: Any, *args: Any) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # report everything: the parent classifies
        conn.send(("crash", f"{type(exc).__name__}: {exc}"[:400] + "\n" + traceback.format_exc()[-1500:]))
    finally:
        conn.close()


def run_forked(fn: Any, args: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
    """("ok", result) | ("crash", text) | ("timeout", None): `fn(*args)` in a forked child."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_in_child, args=(send, fn, *args), daemon=True)
    proc.start()
    send.close()
    try:
        if recv.poll(timeout):
            status, value = recv.recv()
            proc.join(5)
            return status, value
        return "timeout", None
    except EOFError:
        return "crash", f"child died (exit code {proc.exitcode})"
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()


def probe_engine(decoding: dict[str, Any], name: str, loosen: bool) -> dict[str, Any]:
    """Compile `decoding` with one engine (as is, or with its loosening ladder)."""
    from schema_specialist.engines import EngineError

    engines = _TEACHER.engines
    t0 = time.perf_counter()
    try:
        engines.pick(decoding, name, loosen=loosen)
    except EngineError as exc:
        return {"compiles": False, "error": str(exc)[:300], "seconds": round(time.perf_counter() - t0, 4)}
    last = engines.last
    return {"compiles": True, "dropped": last.dropped, "seconds": round(last.compile_seconds, 4)}


def run_generate(path: Path, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The real pipeline on one schema; the manifest's figures and the engine pick."""
    from schema_specialist.generate import GenerateConfig, generate

    cfg = GenerateConfig(progress=False, overwrite=True, **settings)
    manifest = generate(path, out, cfg, teacher=_TEACHER)
    last = _TEACHER.engines.last
    return {
        "engine": manifest["engine"]["name"], "engine_failures": manifest["engine"]["failures"][:4],
        "dropped": last.dropped if last else [], "compile_seconds": round(last.compile_seconds, 4) if last else None,
        "prepare_seconds": round(last.total_seconds, 4) if last else None,
        "accepted": manifest["counts"]["accepted"], "candidates": manifest["counts"]["candidates"],
        "repaired": manifest["counts"]["repaired"], "rejected_by_reason": manifest["counts"]["rejected_by_reason"],
        "wall_seconds": manifest["wall_seconds"], "completion_tokens": manifest["tokens"]["completion"],
    }


def warm(tmp: Path) -> None:
    """One tiny run in the parent, so that lazy imports and first-call setup are not paid per child."""
    path = tmp / "warm.json"
    path.write_text(json.dumps({"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}},
                                "required": ["name"]}))
    run_generate(path, tmp / "warm", {"n": 1, "max_candidates": 2, "batch_size": 2, "max_new_tokens": 24})
    for name in ENGINE_NAMES:  # engine backends built once (tokenizer tables), shared by the children
        _TEACHER.engines.get(name)


# ---- one schema ----------------------------------------------------------------------------------

def recheck(path: Path, out: Path) -> tuple[int, int, list[str]]:
    """(pairs emitted, pairs valid against the original schema, first rejection reasons) from disk."""
    from schema_specialist.schema import load_schema

    schema = load_schema(path)
    emitted = valid = 0
    for split in ("train", "val", "test"):
        f = out / f"{split}.jsonl"
        if not f.exists():
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            emitted += 1
            answer = json.loads(line)["messages"][-1]["content"]
            valid += schema.is_valid(json.loads(answer))
    reasons: list[str] = []
    rej = out / "rejected.jsonl"
    if rej.exists():
        for line in rej.read_text(encoding="utf-8").splitlines()[:6]:
            try:
                reasons.append(str(json.loads(line).get("reason", ""))[:200])
            except ValueError:
                continue
    return emitted, valid, reasons


def bench_one(subset: str, path: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from schema_specialist.errors import SchemagenError
    from schema_specialist.generate.grammar import decoding_schema, estimate_tokens
    from schema_specialist.schema import load_schema

    row: dict[str, Any] = {"subset": subset, "file": f"{path.parent.name}/{path.name}", "bytes": path.stat().st_size}
    try:
        schema = load_schema(path)
    except SchemagenError as exc:
        text = str(exc).split(": ", 1)[-1]
        row.update(loaded=False, covered=False, emitted=0, valid=0, error=text[:300],
                   reason="metaschema" if text.startswith(("invalid schema", "bad regex")) else "load")
        return row
    row["loaded"] = True
    t0 = time.perf_counter()
    decoding = decoding_schema(schema)
    row["decoding_seconds"] = round(time.perf_counter() - t0, 4)
    row["decoding_bytes"] = len(json.dumps(decoding))
    if not args.no_probe:
        probes: dict[str, Any] = {}
        for name in args.engines:
            status, res = run_forked(probe_engine, (decoding, name, False), args.probe_timeout)
            strict = res if status == "ok" else {"compiles": False, "error": status if status == "timeout"
                                                  else str(res)[:300], "seconds": args.probe_timeout}
            loose = strict
            if not strict["compiles"] and status != "timeout":
                status, res = run_forked(probe_engine, (decoding, name, True), args.probe_timeout)
                loose = res if status == "ok" else {"compiles": False, "error": status}
            probes[name] = {"strict": strict, "loosened": loose}
        row["engines"] = probes
    out = work / f"{subset}__{path.stem}"
    # A schema whose required content alone is long gets room to finish (and time to write it).
    estimate = estimate_tokens(decoding)
    tokens = args.max_new_tokens
    if 1.4 * estimate + 32 > tokens:
        tokens = min(args.max_tokens_cap, int(1.4 * estimate + 32))
    scale = tokens / args.max_new_tokens
    row.update(estimated_tokens=round(estimate), max_new_tokens=tokens)
    settings = {"n": args.n, "max_candidates": args.max_candidates, "batch_size": args.batch_size,
                "max_new_tokens": tokens, "time_budget": args.budget * scale, "seed": args.seed,
                "engine": args.engine}
    t0 = time.perf_counter()
    status, res = run_forked(run_generate, (path, out, settings), args.hard_timeout * scale)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    emitted, valid, reasons = recheck(path, out)
    row.update(emitted=emitted, valid=valid, covered=valid > 0, rejections=reasons)
    if status == "ok":
        row.update(res)
    elif status == "timeout":
        row["error"] = f"hard timeout after {args.hard_timeout:.0f} s"
    else:
        row["error"] = str(res)
    if not row["covered"]:
        if status == "timeout":
            row["reason"] = "time"
        elif status == "crash":
            row["reason"] = "compile" if "compile" in str(res) and "SchemagenError" in str(res) else "crash"
        elif res["candidates"] >= args.max_candidates:
            row["reason"] = "all candidates invalid"
        else:
            row["reason"] = "time"
    return row


# ---- report --------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def summarize(rows: list[dict[str, Any]], engines: list[str]) -> dict[str, Any]:
    """Figures for a group of schema rows."""
    loaded = [r for r in rows if r["loaded"]]
    comp = [r["compile_seconds"] for r in rows if r.get("compile_seconds") is not None]
    prep = [r["prepare_seconds"] for r in rows if r.get("prepare_seconds") is not None]
    per_engine: dict[str, dict[str, int]] = {}
    for name in engines:
        probed = [r["engines"][name] for r in loaded if name in (r.get("engines") or {})]
        per_engine[name] = {"strict": sum(p["strict"]["compiles"] for p in probed),
                            "loosened": sum(p["loosened"]["compiles"] for p in probed), "probed": len(probed)}
    any_engine = sum(any(p["loosened"]["compiles"] for p in (r.get("engines") or {}).values()) for r in loaded)
    return {
        "schemas": len(rows), "loaded": len(loaded), "covered": sum(r["covered"] for r in rows),
        "emitted": sum(r["emitted"] for r in rows), "valid": sum(r["valid"] for r in rows),
        "compiled_by": per_engine, "compiled_any": any_engine,
        "reasons": dict(Counter(r["reason"] for r in rows if not r["covered"])),
        "engine_used": dict(Counter(r["engine"] for r in rows if r.get("engine"))),
        "loosened": sum(bool(r.get("dropped")) for r in rows),
        "compile_p50": pct(comp, 0.5), "compile_p99": pct(comp, 0.99), "compile_max": max(comp, default=None),
        "prepare_p99": pct(prep, 0.99),
    }


def markdown(summary: dict[str, Any], args: argparse.Namespace, seconds: float) -> str:
    engines = args.engines
    head = ["subset", "schemas", "pass metaschema", *[f"{e} compiles (as is / loosened)" for e in engines],
            "any engine", "**valid pair**", "pairs (valid/emitted)", "compile p50 / p99 (s)", "not covered: reason"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = [*summary["subsets"].items(), ("**all**", summary["overall"])]
    for name, s in groups:
        cells = [name, str(s["schemas"]), str(s["loaded"])]
        cells += [f"{s['compiled_by'][e]['strict']} / {s['compiled_by'][e]['loosened']}" for e in engines]
        cov = f"{s['covered']} ({100 * s['covered'] / s['schemas']:.0f}%)" if s["schemas"] else "0"
        comp = (f"{s['compile_p50']:.3f} / {s['compile_p99']:.3f}" if s["compile_p50"] is not None else "-")
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["reasons"].items())) or "-"
        cells += [str(s["compiled_any"]), f"**{cov}**", f"{s['valid']}/{s['emitted']}", comp, reasons]
        lines.append("| " + " | ".join(cells) + " |")
    o = summary["overall"]
    misses = [r for r in summary["rows"] if not r["covered"]]
    lines += [
        "",
        f"Settings: n={args.n} pair per schema, max_candidates {args.max_candidates}, batch {args.batch_size}, "
        f"max_new_tokens {args.max_new_tokens} (raised up to {args.max_tokens_cap} where 1.4x the decoding "
        f"schema's estimated instance size is larger; budget and timeout scale with it), time budget {args.budget:.0f} s and hard timeout "
        f"{args.hard_timeout:.0f} s per schema, engine `{args.engine}`, seed {args.seed}, teacher: embedded "
        f"SmolLM2-135M-Instruct (loaded once, CPU, 1 thread). Whole run {seconds / 60:.0f} min.",
        "",
        f"**Coverage: {o['covered']}/{o['schemas']} schemas ({100 * o['covered'] / max(1, o['schemas']):.1f}%) "
        f"yielded at least one valid pair.** Every emitted pair was re-validated by this script against the "
        f"original schema (jsonschema + format checker): {o['valid']}/{o['emitted']} valid.",
        "",
        f"Engine used by `auto`: {', '.join(f'{k} {v}' for k, v in sorted(o['engine_used'].items()))}; "
        f"{o['loosened']} schemas compiled with keywords taken out of the grammar (validation enforced them). "
        f"Compile time of the chosen engine: p50 {o['compile_p50'] or 0:.3f} s, p99 {o['compile_p99'] or 0:.3f} s, "
        f"max {o['compile_max'] or 0:.3f} s (all attempts incl. failed ones: p99 {o['prepare_p99'] or 0:.3f} s).",
        "",
        "Columns: *compiles as is* = the engine compiles the decoding schema unchanged; *loosened* = after "
        "`EngineSet.pick` took out the keywords that engine rejects (then every keyword validation can "
        "enforce); probes time out after "
        f"{args.probe_timeout:.0f} s (outlines-core's regex index on long bounded strings). *valid pair* = "
        "the pipeline emitted at least one pair and it validates.",
    ]
    if misses:
        lines += ["", "Not covered:", ""]
        for r in misses:
            why = r.get("error") or (r.get("rejections") or [""])[0]
            lines.append(f"- `{r['file']}`: {r['reason']}" + (f" ({why[:160]})" if why else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    global _TEACHER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--subset", action="append", help="only this subset (repeatable)")
    parser.add_argument("--limit", type=int, help="at most this many schemas per subset")
    parser.add_argument("--file", action="append", help="only schemas whose path contains this (repeatable)")
    parser.add_argument("-n", type=int, default=1)
    parser.add_argument("--max-candidates", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=320)
    parser.add_argument("--max-tokens-cap", type=int, default=1024,
                        help="max_new_tokens grows up to this for schemas whose required content is long")
    parser.add_argument("--budget", type=float, default=15.0, help="generate's time budget per schema (s)")
    parser.add_argument("--hard-timeout", type=float, default=45.0, help="kill a schema's run after this (s)")
    parser.add_argument("--probe-timeout", type=float, default=8.0, help="per engine compile probe (s)")
    parser.add_argument("--no-probe", action="store_true", help="skip the per-engine compile probes")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "coverage.json")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    args.engines = list(ENGINE_NAMES)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(1)
    from schema_specialist.teachers.local import LocalTeacher

    files = schema_files(args.folder, args.subset, args.limit)
    if args.file:
        files = [f for f in files if any(s in str(f[1]) for s in args.file)]
    started = time.perf_counter()
    _TEACHER = LocalTeacher("smollm2", threads=1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-coverage-") as tmp:
        warm(Path(tmp))
        for i, (subset, path) in enumerate(files, 1):
            row = bench_one(subset, path, args, Path(tmp))
            rows.append(row)
            print(f"[{i}/{len(files)}] {row['file']}: {'ok' if row['covered'] else 'MISS ' + row['reason']} "
                  f"engine={row.get('engine')} dropped={row.get('dropped')} valid={row['valid']}/{row['emitted']} "
                  f"cand={row.get('candidates')} {row.get('seconds', 0)}s "
                  f"{'' if row['covered'] else (row.get('error') or row.get('rejections'))}", flush=True)
    seconds = time.perf_counter() - started
    subsets = sorted({r["subset"] for r in rows})
    summary = {"overall": summarize(rows, args.engines),
               "subsets": {s: summarize([r for r in rows if r["subset"] == s], args.engines) for s in subsets}}
    result = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "seconds": round(seconds, 1), "overall": summary["overall"], "subsets": summary["subsets"],
              "schemas": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    o = summary["overall"]
    print(f"covered {o['covered']}/{o['schemas']}; valid {o['valid']}/{o['emitted']}; reasons {o['reasons']}; "
          f"compile p50 {o['compile_p50']} p99 {o['compile_p99']}")
    if not args.no_doc:
        command = "python scripts/bench_coverage.py " + " ".join(argv if argv is not None else sys.argv[1:])
        update_section("bench_coverage", "Real-world coverage: JSONSchemaBench sample", command.strip(),
                       markdown({**summary, "rows": rows}, args, seconds))
    return 0 if o["valid"] == o["emitted"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
