#!/usr/bin/env bash
# One arm of a side-by-side recipe test: generate a schema's dataset at a seed, train at one thread, score
# the adapter on generated inputs and on the schema's hand-written requests, print one summary row.
# Run two arms (two commits, each from its own checkout, or two sets of TRAIN FLAGS) at once, one a core.
# Usage: [PAIRS=600] [GEN=DIR] bash scripts/bench_arm.sh SCHEMA SEED OUT [TRAIN FLAGS...]
#   e.g. bash scripts/bench_arm.sh schemas/build_report.json 1 runs/arm/br-s1
# PAIRS: how many pairs to generate; GEN: train on this existing dataset (another arm's, the same seed)
# instead of generating one, so two arms that differ only in TRAIN FLAGS share their data.
# Generation uses both cores (--workers 2) so that a seed gives the same teacher answers in every arm;
# when two arms run at once, start the second after the first's generate has finished.
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMA=$1 SEED=$2 OUT=$3
shift 3
REQ="${SCHEMA%.json}.requests.jsonl"
S=.venv/bin/schemagen
mkdir -p "$OUT"
GEN=${GEN:-$OUT/gen}
[ -d "$GEN" ] || $S generate "$SCHEMA" -n "${PAIRS:-600}" -o "$GEN" --seed "$SEED" --workers 2 --quiet \
  >"$OUT/generate.log" 2>&1
$S train "$GEN" -o "$OUT/adapter" --threads 1 --overwrite --no-progress "$@" >"$OUT/train.log" 2>&1
# eval exits 1 below a target: not an error here
$S eval "$OUT/adapter" -n 120 --no-baselines --grammar-n 20 --threads 1 --inputs "$REQ" -o "$OUT/report" \
  --progress none >"$OUT/eval.log" 2>&1 || true
.venv/bin/python - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
meta = json.loads((out / "adapter" / "schemagen.json").read_text())
rep = json.loads((out / "report" / "report.json").read_text())
hw = rep["input_files"][0]["systems"]
cell = lambda s: f"{s['validity']['rate']:.3f} / {s['fields']['rate']:.3f}"
print("| run | val loss | generated: valid / fields | hand-written free: valid / fields | + grammar: fields |")
print("|---|---|---|---|---|")
print(f"| {out} | {meta['metrics']['val_loss']:.4f} | {cell(rep['systems']['adapter'])} | {cell(hw['adapter'])} | "
      f"{hw.get('adapter+grammar', {}).get('fields', {}).get('rate', float('nan')):.3f} |")
EOF
