#!/usr/bin/env bash
# Copy the small outputs of `attn subnetworks` from a run folder into the repository:
#     bash results/minilm/collect_subnetworks.sh runs/minilm results/minilm/subnetworks
# Kept: every head-set mask (mask.json), pruned.json, retrained.json, the re-fine-tuning run's run.json and
# metrics.json, the full model, its re-fine-tuned control and the majority class on the subnetworks' dev examples
# (full.json, full_retrained.json, majority.json), the super-survivor sets (TASK/super/*.json) and TASK/majority.json.
# Left out: model weights and the m-pruning weight masks (mask.safetensors, ~10 MB each; the good one is the m-pruning
# result, random is redrawn from its seed and bad recomputed from the fine-tuned weights by the same command).
set -euo pipefail
RUN=${1:?run folder}
OUT=${2:?destination}
cd "$RUN"
find . \( -path '*/subnetworks/*' \( -name mask.json -o -name pruned.json -o -name retrained.json -o -name full.json -o -name full_retrained.json \
          -o -name majority.json -o -path '*/retrained/run.json' -o -path '*/retrained/metrics.json' \) \) \
       -o -regex '\./[^/]*/super/[^/]*\.json' -o -regex '\./[^/]*/majority\.json' \
  | grep -v '/\.' | sort > /tmp/collect_subnetworks.$$
cd - > /dev/null
mkdir -p "$OUT"
while read -r f; do
  # a re-fine-tuning still running has its run.json but no metrics.json yet: left for the next collect
  [[ $f == */retrained/run.json && ! -f $RUN/$(dirname "$f")/metrics.json ]] && continue
  mkdir -p "$OUT/$(dirname "$f")"
  cp "$RUN/$f" "$OUT/$f"
done < /tmp/collect_subnetworks.$$
echo "copied $(wc -l < /tmp/collect_subnetworks.$$) files to $OUT"
rm -f /tmp/collect_subnetworks.$$
