#!/usr/bin/env bash
# Put the committed small outputs of the full-size study (results/minilm-full/masks) back into a run folder that
# lacks them, e.g. on a fresh clone, so that the later stages can resume there without redoing s-pruning:
#
#     bash results/minilm-full/restore.sh                # into runs/minilm-full (RUN=... for another folder)
#     SEEDS="1337 42 86" TASKS=MRPC bash results/minilm-full/run_pruning.sh
#
# Restored: s-pruning (masks, importance, iterations), the subnetworks' masks and results, the pattern
# distributions. Not restored: each seed's finetuned/ and magnitude/, which stand for weights that are not
# committed (the fine-tuned model, m-pruning's weight masks). run_pruning.sh then fine-tunes again (the same seed
# gives the same model: MRPC seeds 1337, 42 and 86 were rebuilt this way and scored the committed dev metrics),
# skips the restored s-pruning (same settings) and redoes m-pruning; the subnetworks and the classify stage can
# follow. Nothing already in the run folder is overwritten.
set -euo pipefail
RUN=${RUN:-runs/minilm-full}
SRC=results/minilm-full/masks
mkdir -p "$RUN"
for d in "$SRC"/*; do
  name=$(basename "$d")
  if [[ ! -d $d ]]; then cp -n "$d" "$RUN/"; continue; fi
  mkdir -p "$RUN/$name"
  for part in "$d"/*; do
    p=$(basename "$part")
    if [[ $p == seed_* ]]; then
      mkdir -p "$RUN/$name/$p"
      for stage in "$part"/*; do
        case $(basename "$stage") in finetuned | magnitude) continue ;; esac
        cp -rn "$stage" "$RUN/$name/$p/"
      done
    else
      cp -rn "$part" "$RUN/$name/"
    fi
  done
done
echo "restored $SRC into $RUN (existing files kept; finetuned/ and magnitude/ are rebuilt by run_pruning.sh)"
