#!/usr/bin/env bash
# The main job on the embedded default model, CPU only: schema -> pairs -> LoRA adapter -> validity report.
# Usage: bash scripts/demo.sh [SCHEMA] [PAIRS] [EVAL_N]
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMA=${1:-schemas/agent_status.json}
PAIRS=${2:-600}
EVAL_N=${3:-300}
NAME=$(basename "$SCHEMA" .json)
S=.venv/bin/schemagen
start=$(date +%s)
# --overwrite: the run is timed from scratch; with --seed 1 it rewrites the committed dataset as it was.
$S generate "$SCHEMA" -n "$PAIRS" -o "generated/$NAME" --seed 1 --overwrite
t1=$(date +%s)
$S train "generated/$NAME" -o "adapters/$NAME" --overwrite
t2=$(date +%s)
# The honest test: requests written by hand beside the schema (never by the generator), each its own table.
INPUTS=()
REQ="${SCHEMA%.json}.requests.jsonl"
[ -f "$REQ" ] && INPUTS=(--inputs "$REQ")
# --workers 2: two one-thread decoding processes answer faster than one with both cores.
# --grammar-n 60: adapter + grammar on every hand-written request (60), not a subset.
$S eval "adapters/$NAME" -n "$EVAL_N" --baseline-n 20 --grammar-n 60 "${INPUTS[@]}" --target 0.95 -o "reports/$NAME" \
  --workers 2 \
  || echo "demo: below target (see reports/$NAME/report.md)"
t3=$(date +%s)
echo "demo: generate $((t1 - start)) s, train $((t2 - t1)) s, eval $((t3 - t2)) s, total $((t3 - start)) s"
