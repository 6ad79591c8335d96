"""Write the README demo's figures (generate -> train -> eval) into docs/BENCHMARKS.md.

Reads only the artifacts the demo wrote: generated/<name>/manifest.json, adapters/<name>/schemagen.json
and reports/<name>/report.json. Usage, after `bash scripts/demo.sh`:
    .venv/bin/python scripts/bench_demo.py [--name agent_status] [--command "..."]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_md import update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", default="agent_status")
    ap.add_argument("--command", default="bash scripts/demo.sh", help="the command that produced the artifacts")
    ap.add_argument("--eval-seconds", type=float, default=None, help="wall time of the eval step, if timed")
    ap.add_argument("--stage-seconds", type=float, nargs=3, default=None, metavar=("GENERATE", "TRAIN", "EVAL"),
                    help="wall seconds of the three demo commands, as demo.sh prints them")
    args = ap.parse_args()
    m = json.loads((ROOT / "generated" / args.name / "manifest.json").read_text())
    a = json.loads((ROOT / "adapters" / args.name / "schemagen.json").read_text())
    r = json.loads((ROOT / "reports" / args.name / "report.json").read_text())
    c, met = m["counts"], a["metrics"]
    lines = [
        f"Schema `{m['schema']['path']}` ({m['schema']['title']}), embedded SmolLM2-135M-Instruct as teacher and base.", "",
        "| stage | figures |", "|---|---|",
        f"| generate | {c['accepted']} pairs ({c['train']}/{c['val']}/{c['test']}), {c['candidates']} candidates, "
        f"acceptance {m['acceptance_rate']}, faithfulness {m['faithfulness']['rate']}, engine {m['engine']['name']}, "
        f"{m['wall_seconds']:.0f} s ({m['pairs_per_minute']} pairs/min), teacher {m['teacher'].get('dtype', '')} x "
        f"{m['teacher'].get('workers', 1)} worker(s) |",
        f"| train | backend {a['backend']} ({a.get('dtype')}), {met['steps']} steps / {met['epochs']} epochs, "
        f"train loss {met['train_loss']:.4f}, val loss {met['val_loss']:.4f}, {met['tokens_per_s']:.0f} tokens/s, "
        f"peak RSS {met['peak_rss_mb']:.0f} MB, {met['seconds']:.0f} s |",
        f"| eval | n={r['n']} ({', '.join(f'{k} {v}' for k, v in r['inputs'].items())})"
        + (f", {args.eval_seconds:.0f} s" if args.eval_seconds else "") + " |",
        "", "| system | n | parse | validity [95% CI] | field acc. | prompt tokens | s/answer |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for s in r["systems"].values():
        v = s["validity"]
        lines.append(f"| {s['label']}{' [' + s['engine'] + ']' if s.get('engine') else ''} | {s['n']} | "
                     f"{s['parse']['rate']:.3f} | {v['rate']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] | "
                     f"{s['fields']['rate']:.3f} | {s['prompt_tokens_mean']:.0f} | {s['latency_s_per_answer']:.2f} |")
    red = r.get("prompt_reduction")
    if red:
        lines += ["", f"Adapter prompt: {red['adapter_tokens']:.0f} tokens vs {red['schema_prompt_tokens']:.0f} with "
                      f"the schema in the prompt ({red['percent_shorter']:.0f}% shorter)."]
    over = r.get("overhead_reduction")
    if over:
        lines[-1] += (f" Beyond the question itself (chat template and instructions): {over['adapter_tokens']:.0f} "
                      f"tokens vs {over['schema_prompt_tokens']:.0f} ({over['percent_shorter']:.0f}% shorter).")
    if args.stage_seconds:
        g, t, e = args.stage_seconds
        lines += ["", f"Wall time of `bash scripts/demo.sh` (model loads included): generate {g:.0f} s, train "
                      f"{t:.0f} s, eval {e:.0f} s, **total {(g + t + e) / 60:.1f} min**."]
    fails = r["systems"]["adapter"]["failures"] if "adapter" in r["systems"] else {}
    if fails:
        lines += ["", "Adapter failures: " + ", ".join(f"{k} {g['count']}" for k, g in fails.items()) + "."]
    by_source = r["systems"].get("adapter", {}).get("by_source") or {}
    if by_source:
        lines += ["", "Adapter validity by input source: " + ", ".join(
            f"{k} {v['validity']['rate']:.3f} (n={v['validity']['n']})" for k, v in by_source.items()) + "."]
    for sec in r.get("input_files") or []:  # requests written by hand: the honest test
        lines += ["", f"Hand-written requests `{sec['path']}` (n={sec['n']}, never written by the generator):", "",
                  "| system | n | parse | validity [95% CI] | field acc. |", "|---|---:|---:|---|---:|"]
        for s in sec["systems"].values():
            v, f = s["validity"], s["fields"]
            acc = f"{f['rate']:.3f}" if f["n"] else "-"
            lines.append(f"| {s['label']} | {s['n']} | {s['parse']['rate']:.3f} | {v['rate']:.3f} "
                         f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] | {acc} |")
        g = sec.get("guard")
        if g:
            lines.append(f"\nGuard (constrained retry of invalid free answers): {g['fixed']['k']}/{g['invalid']['k']} "
                         f"fixed, validity with the guard {g['validity']['rate']:.3f}, field accuracy {g['fields']['rate']:.3f}, "
                         f"{g['retry_seconds_mean']:.2f} s per retry.")
    lines += ["", f"Gate: {r['gate'].get('message', '')}"]
    body = "\n".join(lines)
    print(body)
    if args.name == "agent_status":
        update_section("bench_demo", "README demo: generate -> train -> eval", args.command, body)
    else:  # the same demo on another schema (the one the project does not ship, say): a section of its own
        update_section(f"bench_demo_{args.name}", f"The demo on `{m['schema']['path']}`", args.command, body)


if __name__ == "__main__":
    main()
