"""Benchmark `schemagen train` on the embedded SmolLM2-135M: train tokens/s and peak RSS, fp32 vs bf16, r=16.

Each configuration runs in its own subprocess so that ru_maxrss is that run's peak. Tokens/s counts the
non-pad tokens (prompt + answer) of every training forward/backward pass divided by the seconds spent in
optimizer steps (validation, checkpoints and model loading excluded).

    .venv/bin/python scripts/bench_train.py [--steps 20] [--dataset generated/agent_status]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from _bench_md import project_path, update_section  # noqa: E402

ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "order", "type": "object",
    "properties": {"id": {"type": "string", "maxLength": 12}, "status": {"enum": ["new", "paid", "shipped"]},
                   "customer": {"type": "string"}, "total": {"type": "number", "minimum": 0},
                   "items": {"type": "array", "items": {"type": "string"}}},
    "required": ["id", "status", "total"], "additionalProperties": False,
}


def synthetic_dataset(directory: Path, n: int = 200) -> Path:
    """~n order pairs in `schemagen generate`'s layout (used when no generated dataset exists)."""
    import os

    from schema_specialist.dataset import atomic_write_json, split_for
    from schema_specialist.prompts import pair_record
    from schema_specialist.schema import schema_hash

    names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]
    goods = ["keyboard", "monitor", "desk lamp", "usb cable", "notebook", "headphones", "chair"]
    statuses = ["new", "paid", "shipped"]
    directory.mkdir(parents=True, exist_ok=True)
    schema_path = directory / "schema.json"
    schema_path.write_text(json.dumps(ORDER_SCHEMA), encoding="utf-8")
    files = {s: (directory / f"{s}.jsonl").open("w", encoding="utf-8") for s in ("train", "val", "test")}
    for i in range(n):
        items = [goods[(i + k) % len(goods)] for k in range(1 + i % 3)]
        answer = {"id": f"ORD-{i:05d}", "status": statuses[i % 3], "customer": names[i % len(names)],
                  "total": round(12.5 + i * 3.17, 2), "items": items}
        question = (f"{names[i % len(names)]} placed order ORD-{i:05d} for {', '.join(items)}; it is "
                    f"{statuses[i % 3]} and came to {answer['total']} dollars. Record it.")
        files[split_for(i)].write(json.dumps(pair_record(question, json.dumps(answer, separators=(",", ":")))) + "\n")
    for f in files.values():
        f.close()
    atomic_write_json(directory / "manifest.json", {
        "format": "schemagen-dataset/1",
        "schema": {"name": "order", "path": str(schema_path), "path_from_dataset": os.path.relpath(
            schema_path, directory), "sha256": schema_hash(ORDER_SCHEMA), "title": "order"},
        "counts": {"train": n * 8 // 10}})
    return directory


ABLATIONS = {
    "trim": "`--trim-heap`: freed memory is handed back after each step (the default before 2026-12-02)",
    "no-trim": "`--no-trim-heap`: freed memory is not handed back after each step (the default)",
    "pad1": "`--pad-multiple 1`: each batch padded to its own longest example",
    "mask": "the loss forward is given the attention mask (the masked SDPA kernel)",
    "cast": "PEFT casts each LoRA input to fp32 (its default)",
}


def _undo(option: str) -> dict[str, Any]:
    """Recipe values for one ablation; for `mask` and `cast`, patch this child process's training code."""
    from schema_specialist.training import loop, peft_backend

    if option == "no-trim":
        return {"trim_heap": False}
    if option == "trim":
        return {"trim_heap": True}
    if option == "pad1":
        return {"pad_multiple": 1}
    if option == "cast":
        peft_backend.keep_input_dtype = lambda model: None  # type: ignore[assignment]
        return {}
    if option == "mask":
        plain = loop.answer_loss

        def masked(model: Any, batch: dict[str, Any], device: str, dtype: str) -> Any:
            base = model.get_base_model()
            decoder = base.get_decoder()
            mask = batch["attention_mask"].to(device)
            forward = decoder.forward
            decoder.forward = lambda *a, **kw: forward(*a, **{**kw, "attention_mask": mask})
            try:
                return plain(model, batch, device, dtype)
            finally:
                del decoder.forward

        loop.answer_loss = masked
        return {}
    raise SystemExit(f"bench_train: unknown option {option!r} (known: {', '.join(ABLATIONS)})")


def one(dataset: str, config: str, steps: int, out: str, threads: int) -> None:
    """Child process: one training run (config = DTYPE[:OPTION[+OPTION]]); prints its metrics as JSON."""
    from schema_specialist.training import train

    dtype, _, options = config.partition(":")
    values: dict[str, Any] = {}
    for option in filter(None, options.split("+")):
        values.update(_undo(option))
    info = train(dataset, out, lora_r=16, dtype=dtype, max_steps=steps, checkpoint_every=0, progress=False,
                 threads=threads, log=lambda m: None, **values)
    print(json.dumps({"config": config, "dtype": info["dtype"], **info["metrics"],
                      "batch": info["hyperparameters"]["batch_size"] * info["hyperparameters"]["grad_accum"],
                      "threads": threads}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: the default recipe's 2 epochs)")
    ap.add_argument("--dataset", default=str(ROOT / "generated" / "agent_status"))
    ap.add_argument("--configs", default="bfloat16,bfloat16:no-trim,float32",
                    help="comma-separated DTYPE[:OPTION[+OPTION]], each OPTION undoing one of the CPU "
                         f"training choices: {', '.join(ABLATIONS)}")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--one", nargs=3, metavar=("DATASET", "DTYPE", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = ap.parse_args()
    if args.one:
        one(args.one[0], args.one[1], args.steps, args.one[2], args.threads)
        return
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(args.dataset)
        source = f"`{project_path(dataset.resolve())}`"
        if not (dataset / "manifest.json").exists():
            dataset = synthetic_dataset(Path(tmp) / "orders")
            source = "200 synthetic order pairs (no generated/agent_status here)"
        rows = []
        for i, dtype in enumerate(args.configs.split(",")):
            proc = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--threads", str(args.threads), "--one", str(dataset),
                                   dtype, str(Path(tmp) / f"adapter-{i}-{dtype}")],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"bench_train: {dtype} run failed:\n{proc.stderr[-2000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    body = [f"Embedded SmolLM2-135M-Instruct, backend peft on CPU, LoRA r=16 on all linear projections, "
            f"{rows[0]['steps']} optimizer steps of {rows[0]['batch']} examples, data: {source}. "
            "Tokens/s = non-pad (prompt + answer) tokens through forward+backward per second of optimizer "
            "steps; peak RSS = ru_maxrss of the training process. Configurations ran one after another. "
            + "; ".join(f"`{k}` = {v}" for k, v in ABLATIONS.items() if k in re.split(r"[,:+]", args.configs)) + ".",
            "", "| configuration | compute dtype | threads | train tokens/s | peak RSS (MiB) | train loss | val loss "
            "| seconds |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        val = f"{r['val_loss']:.4f}" if r.get("val_loss") is not None else "n/a"
        body.append(f"| {r['config']} | {r['dtype']} | {r['threads'] or 'all'} | {r['tokens_per_s']:.0f} | "
                    f"{r['peak_rss_mb']:.0f} | {r['train_loss']:.4f} | {val} | {r['seconds']:.1f} |")
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        update_section("bench_train", "Training speed (CPU, embedded model)", f"python scripts/bench_train.py --steps {args.steps} --threads {args.threads} --configs {args.configs}", text)


if __name__ == "__main__":
    main()
