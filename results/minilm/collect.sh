#!/usr/bin/env bash
# Copy the small outputs of a pruning run folder (no checkpoints, no weight masks) to a results folder:
#   bash results/minilm/collect.sh runs/minilm results/minilm/masks
set -euo pipefail
RUN=$1; DEST=$2
cd "$RUN"
find . -path '*/finetuned/run.json' -o -path '*/finetuned/metrics.json' \
  -o -path '*/structured/*.json' -o -path '*/structured/*.npy' \
  -o -path '*/magnitude/*.json' | while read -r f; do
  mkdir -p "$OLDPWD/$DEST/$(dirname "$f")"
  cp "$f" "$OLDPWD/$DEST/$f"
done
