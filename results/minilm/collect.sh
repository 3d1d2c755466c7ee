#!/usr/bin/env bash
# Copy the small outputs of a pruning run folder (no checkpoints, no weight masks) to a results folder:
#   bash results/minilm/collect.sh runs/minilm results/minilm/masks
# Copied: finetuned/{run,metrics,config}.json (config.json: the model's shape, small), structured/*.json + *.npy, magnitude/*.json (only finished stages:
# a stage folder without summary.json is left out).
set -euo pipefail
RUN=$1
mkdir -p "$2"
DEST=$(cd "$2" && pwd)
cd "$RUN"
for d in */seed_*/finetuned */seed_*/structured */seed_*/magnitude; do
  [ -d "$d" ] || continue
  case "$d" in
    */finetuned) [ -f "$d/metrics.json" ] || continue; files="$d/run.json $d/metrics.json $(ls "$d"/config.json 2>/dev/null || true)" ;;
    */structured) [ -f "$d/summary.json" ] || continue; files=$(ls "$d"/*.json "$d"/*.npy) ;;
    */magnitude) [ -f "$d/summary.json" ] || continue; files=$(ls "$d"/*.json) ;;
  esac
  mkdir -p "$DEST/$d"
  cp $files "$DEST/$d/"
done
