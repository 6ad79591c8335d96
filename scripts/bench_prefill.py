"""Prefill with a frozen (PEFT) model: the output head's `logits_to_keep` slice as torch got it, then
with `decoding.fold_output_head`, side by side in one process on the same prompts.

    .venv/bin/python scripts/bench_prefill.py                       # adapters/agent_status, rows 1, 8, 32
    .venv/bin/python scripts/bench_prefill.py --adapter DIR --rows 1,16 --no-doc

Writes the `bench_prefill` section of docs/BENCHMARKS.md (unless --no-doc): seconds to prefill a batch
of the hand-written requests (`schemas/agent_status.requests.jsonl`) and whether the first greedy token of
every row is the same both ways.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench_md import update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default="adapters/agent_status", help="A trained adapter directory.")
    ap.add_argument("--requests", default="schemas/agent_status.requests.jsonl", help="Questions (JSONL).")
    ap.add_argument("--rows", default="1,8,32", help="Batch sizes to prefill.")
    ap.add_argument("--repeat", type=int, default=2, help="Timed runs per batch size and mode (the best counts).")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    ap.add_argument("--no-doc", action="store_true", help="Print only; leave docs/BENCHMARKS.md alone.")
    args = ap.parse_args()

    import torch
    from peft import PeftModel

    from schema_specialist.generate import decoding
    from schema_specialist.models import fast_dtype, load_model

    dtype = fast_dtype()
    loaded = load_model(None, dtype=dtype, threads=args.threads)
    model = PeftModel.from_pretrained(loaded.model, str(ROOT / args.adapter), is_trainable=False)
    model.eval()
    tok = loaded.tokenizer
    questions = [json.loads(line)["question"] for line in (ROOT / args.requests).open(encoding="utf-8")
                 if line.strip()]
    stop, pad = decoding.stop_ids_of(loaded.model, tok), int(tok.pad_token_id or 0)
    sizes = [int(x) for x in args.rows.split(",")]
    every = [decoding.chat_ids(tok, [{"role": "user", "content": q}]) for q in questions[:max(sizes)]]

    def prefill(rows: int) -> tuple[float, list[int]]:
        prompts: list[Sequence[int]] = sorted(every[:rows], key=len, reverse=True)
        best, first = float("inf"), []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = decoding._decode_batch(model, prompts, stop, pad, 1, 0.0, 1.0, torch.Generator().manual_seed(0),
                                         None, None, None)
            best = min(best, time.perf_counter() - t0)
            first = [d.tokens[0] if d.tokens else -1 for d in out]
        return best, first

    before = {n: prefill(n) for n in sizes}
    decoding.fold_output_head(model)
    after = {n: prefill(n) for n in sizes}
    lines = ["| rows | prompt tokens | head as torch got it (s) | plain strides (s) | speedup | same first tokens |",
             "|---:|---:|---:|---:|---:|---|"]
    for n in sizes:
        tokens = sum(len(p) for p in every[:n])
        (b, fb), (a, fa) = before[n], after[n]
        same = sum(x == y for x, y in zip(fb, fa, strict=True))
        lines.append(f"| {n} | {tokens} | {b:.2f} | {a:.2f} | {b / a:.1f}x | {same}/{len(fa)} |")
    body = (f"Model: embedded SmolLM2-135M-Instruct ({dtype}, torch threads {args.threads}) with the adapter "
            f"`{args.adapter}` loaded by PEFT (`is_trainable=False`, so every weight is frozen). One prefill of "
            f"the first N hand-written requests, `max_new_tokens=1`, best of {args.repeat}; first the head as torch "
            "got it, then with `fold_output_head`, in one process.\n\n" + "\n".join(lines) + "\n\n"
            "Why: with `logits_to_keep=1` the head's input is a strided slice of the hidden states; for a frozen "
            "weight torch's matmul does not fold it into one `mm` and copies the `[vocab, hidden]` weight once a "
            "row into a `bmm`. `schemagen eval` (PEFT adapter) and the server's prefills go through this path.")
    print(body)
    if not args.no_doc:
        update_section("bench_prefill", "Prefill: the output head's input strides (frozen PEFT weights)",
                       "python scripts/bench_prefill.py", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
