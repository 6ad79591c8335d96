#!/usr/bin/env bash
# One focus round on the demo adapter, measured before and after on the same held-out + property-based inputs:
# eval -> generate --focus (more pairs where the adapter fails) -> train --resume-from -> eval.
# Usage: bash scripts/bench_focus.sh [SCHEMA] [N] [EXTRA_PAIRS] [EPOCHS]
# THREADS=1 runs every step on one thread (one worker), to share the machine with another job.
# CONTROL=1: the same round without the focus (a plain resumed generate, its test split restored), into
# adapters/NAME-control and the bench_reliability_control section: what more pairs and steps alone give.
# Writes the bench_reliability_before / _after sections of docs/BENCHMARKS.md (after: failures side by side).
# The dataset is copied to runs/focus/NAME first, so generated/NAME (the committed demo dataset) stays as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMA=${1:-schemas/agent_status.json}
N=${2:-3000}
EXTRA=${3:-200}
EPOCHS=${4:-1}
NAME=$(basename "$SCHEMA" .json)
S=.venv/bin/schemagen
P=.venv/bin/python
T=()
W=()
if [ -n "${THREADS:-}" ]; then T=(--threads "$THREADS"); W=(--workers 1); fi
[ -d "adapters/$NAME" ] || { echo "bench_focus: no adapters/$NAME (run scripts/demo.sh first)" >&2; exit 2; }
start=$(date +%s)
$P scripts/bench_reliability.py --adapter "adapters/$NAME" -n "$N" --label before "${T[@]}"
t1=$(date +%s)
KIND=focus
LABEL=after
[ -n "${CONTROL:-}" ] && KIND=control && LABEL=control
DATA="runs/$KIND/$NAME"
rm -rf "$DATA" && mkdir -p "runs/$KIND" && cp -r "generated/$NAME" "$DATA"
HAVE=$($P -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['accepted'])" "$DATA/manifest.json")
if [ "$KIND" = focus ]; then
  $S generate "$SCHEMA" -o "$DATA" --focus "adapters/$NAME/reliability/report.json" -n $((HAVE + EXTRA)) "${W[@]}" --quiet
else  # the same held-out inputs: new test pairs are dropped, the demo's test split restored
  $S generate "$SCHEMA" -o "$DATA" -n $((HAVE + EXTRA)) "${W[@]}" --quiet
  cp "generated/$NAME/test.jsonl" "$DATA/test.jsonl"
fi
t2=$(date +%s)
$S train "$DATA" -o "adapters/$NAME-$KIND" --resume-from "adapters/$NAME" --epochs "$EPOCHS" --overwrite --no-progress "${T[@]}"
t3=$(date +%s)
$P scripts/bench_reliability.py --adapter "adapters/$NAME-$KIND" -n "$N" --label "$LABEL" "${T[@]}" \
  --compare "adapters/$NAME/reliability/report.json"
t4=$(date +%s)
echo "bench_focus ($KIND): eval before $((t1 - start)) s, generate $((t2 - t1)) s, train $((t3 - t2)) s, eval after $((t4 - t3)) s"
