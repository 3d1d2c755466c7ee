#!/usr/bin/env bash
# Copy the small outputs of a pruning run folder (no checkpoints, no weight masks) to a results folder:
#   bash results/minilm/collect.sh runs/minilm results/minilm/masks
# Copied: finetuned/{run,metrics,config}.json (config.json: the model's shape, small), structured/*.json + *.npy,
# magnitude/*.json (only finished stages: a stage folder without summary.json is left out).
# A stage rebuilt from committed results (restore.sh, then the same seed again) that reproduces the committed result
# (the same dev metrics; for m-pruning the same kept weights, score and per-head record) keeps the committed records,
# with their original timings and provenance; only files the results folder lacks are added. One that differs is
# copied over it, with a warning.
set -euo pipefail
RUN=$1
mkdir -p "$2"
DEST=$(cd "$2" && pwd)
cd "$RUN"

same_result() {  # stage file-in-run file-in-results: 0 when the two records hold the same result
  [ -f "$3" ] || return 1
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
stage, a, b = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
keys = ["metrics"] if stage == "finetuned" else ["kept", "score", "head_weight_kept"]
sys.exit(0 if all(a.get(k) == b.get(k) for k in keys) else 1)
PY
}

for d in */seed_*/finetuned */seed_*/structured */seed_*/magnitude; do
  [ -d "$d" ] || continue
  case "$d" in
    */finetuned) [ -f "$d/metrics.json" ] || continue; files="$d/run.json $d/metrics.json $(ls "$d"/config.json 2>/dev/null || true)"; rec=metrics.json ;;
    */structured) [ -f "$d/summary.json" ] || continue; files=$(ls "$d"/*.json "$d"/*.npy); rec= ;;
    */magnitude) [ -f "$d/summary.json" ] || continue; files=$(ls "$d"/*.json); rec=summary.json ;;
  esac
  mkdir -p "$DEST/$d"
  if [ -n "$rec" ] && [ -f "$DEST/$d/$rec" ]; then
    if same_result "$(basename "$d")" "$d/$rec" "$DEST/$d/$rec"; then
      cp -n $files "$DEST/$d/"  # reproduced: keep the committed records, add what is new (e.g. config.json)
      continue
    fi
    echo "warning: $d: the result differs from the committed one; copying the new records over it" >&2
  fi
  cp $files "$DEST/$d/"
done
