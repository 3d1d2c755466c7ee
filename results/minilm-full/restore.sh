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
#
# RECORDS=1 also restores each seed's fine-tuning records (finetuned/run.json, metrics.json and, where committed,
# config.json; no weights). That is all the re-fine-tuned subnetworks of s-pruning and the super-survivors need,
# since they start from the pre-trained model and the committed masks:
#
#     RECORDS=1 bash results/minilm-full/restore.sh
#     SETTINGS=retrained TASKS=STS-B SUPER_FIRST=1 bash results/minilm-full/run_subnetworks.sh
#
# A seed restored so has no weights: its m-pruning, pruned-only cells and maps need run_pruning.sh on a folder
# restored without RECORDS (or the seed's finetuned/ removed first).
set -euo pipefail
RUN=${RUN:-runs/minilm-full}
RECORDS=${RECORDS:-0}
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
        case $(basename "$stage") in
          magnitude) continue ;;
          finetuned)
            # the records only, and only where the whole set is committed (a seed without config.json stays out)
            [[ $RECORDS == 1 && -f $stage/config.json && ! -e $RUN/$name/$p/finetuned ]] || continue
            mkdir -p "$RUN/$name/$p/finetuned"
            cp -n "$stage"/run.json "$stage"/metrics.json "$stage"/config.json "$RUN/$name/$p/finetuned/"
            continue
            ;;
        esac
        cp -rn "$stage" "$RUN/$name/$p/"
      done
    else
      cp -rn "$part" "$RUN/$name/"
    fi
  done
done
echo "restored $SRC into $RUN (existing files kept; magnitude/ and, without RECORDS=1, finetuned/ are rebuilt by run_pruning.sh)"
