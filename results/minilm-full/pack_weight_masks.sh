#!/usr/bin/env bash
# m-pruning's weight masks of a run folder, xz-compressed into a masks folder beside its other small outputs:
#
#     bash results/minilm-full/pack_weight_masks.sh runs/minilm-full results/minilm-full/masks
#
# Each seed's good mask (magnitude/mask.safetensors) and bad one (subnetworks/magnitude/bad/mask.safetensors, drawn
# from the fine-tuned weights; random is drawn again from good, the same), about 1.3 MB each for MiniLM. With them
# restore.sh lets a clone re-fine-tune m-pruning's subnetworks without fine-tuning the seed again. A packed mask is
# rewritten only when the run's differs; each is written whole (a .tmp, then renamed).
set -euo pipefail
RUN=${1:?usage: pack_weight_masks.sh RUN_FOLDER MASKS_FOLDER}
DEST=${2:?usage: pack_weight_masks.sh RUN_FOLDER MASKS_FOLDER}
n=0
for f in "$RUN"/*/seed_*/magnitude/mask.safetensors "$RUN"/*/seed_*/subnetworks/magnitude/bad/mask.safetensors; do
  [ -f "$f" ] || continue
  dst=$DEST/${f#"$RUN"/}.xz
  if [ -f "$dst" ] && xz -dc "$dst" | cmp -s - "$f"; then continue; fi
  mkdir -p "$(dirname "$dst")"
  xz -9 -T1 -c "$f" > "$dst.tmp"
  mv "$dst.tmp" "$dst"
  n=$((n + 1))
done
echo "packed $n weight mask(s) into $DEST"
