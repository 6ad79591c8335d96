#!/usr/bin/env bash
# Question views, side by side: one dataset, two adapters trained at one thread each at the same time
# (A: `train --no-views`, the first question only; B: the default, view e mod k in epoch e), both scored
# on the generated inputs and on the schema's hand-written requests. Figures: docs/BENCHMARKS.md.
# Usage: bash scripts/bench_views.sh [SCHEMA] [SEED] [OUT]   (about 25 min for build_report on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMA=${1:-schemas/build_report.json}
SEED=${2:-1}
OUT=${3:-runs/views/$(basename "$SCHEMA" .json)-seed$SEED}
REQ="${SCHEMA%.json}.requests.jsonl"
S=.venv/bin/schemagen
mkdir -p "$OUT"
$S generate "$SCHEMA" -n 600 -o "$OUT/gen" --seed "$SEED" --quiet
arm() {  # NAME [TRAIN FLAGS...]
  local name=$1; shift
  $S train "$OUT/gen" -o "$OUT/$name" --threads 1 --overwrite --no-progress "$@" >"$OUT/train-$name.log" 2>&1
  $S eval "$OUT/$name" -n 120 --no-baselines --grammar-n 20 --threads 1 --inputs "$REQ" -o "$OUT/report-$name" \
    --progress none >"$OUT/eval-$name.log" 2>&1 || true  # eval exits 1 below a target: not an error here
}
arm A --no-views &
arm B &
wait
.venv/bin/python - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| arm | val loss | generated: valid / fields | hand-written free: valid / fields | + grammar: fields |")
print("|---|---|---|---|---|")
for arm in ("A", "B"):
    meta = json.loads((out / arm / "schemagen.json").read_text())
    rep = json.loads((out / f"report-{arm}" / "report.json").read_text())
    sysd = rep["systems"]
    free, gram = sysd["adapter"], sysd.get("adapter+grammar", {})
    hw = rep["input_files"][0]["systems"]
    hw_g = hw.get("adapter+grammar", {})
    cell = lambda s: f"{s['validity']['rate']:.3f} / {s['fields']['rate']:.3f}"
    print(f"| {arm} | {meta['metrics']['val_loss']:.4f} | {cell(free)} | {cell(hw['adapter'])} | "
          f"{hw_g.get('fields', {}).get('rate', float('nan')):.3f} |")
EOF
