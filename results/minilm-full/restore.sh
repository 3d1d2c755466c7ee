#!/usr/bin/env bash
# Put the committed small outputs of the full-size study (results/minilm-full/masks) back into a run folder that
# lacks them, e.g. on a fresh clone, so that the later stages can resume there without redoing s-pruning:
#
#     bash results/minilm-full/restore.sh                # into runs/minilm-full (RUN=... for another folder)
#     SEEDS="1337 42 86" TASKS=MRPC bash results/minilm-full/run_pruning.sh
#
# Restored: s-pruning (masks, importance, iterations), the subnetworks' masks and results, the pattern
# distributions, and m-pruning (magnitude/ and the bad subnetwork's weight mask) of the seeds whose weight masks
# are committed (mask.safetensors.xz, unpacked here). Not restored: each seed's finetuned/, which stands for
# weights that are not committed, and magnitude/ where its weight mask is not committed. run_pruning.sh then
# fine-tunes again (the same seed gives the same model: MRPC seeds 1337, 42 and 86 were rebuilt this way and
# scored the committed dev metrics), skips the restored s-pruning and m-pruning (same settings) and redoes the
# m-pruning that was not restored; the subnetworks and the classify stage can follow. Nothing already in the run
# folder is overwritten.
#
# RECORDS=1 also restores each seed's fine-tuning records (finetuned/run.json, metrics.json and, where committed,
# config.json; no weights). That is all the re-fine-tuned subnetworks need, since they start from the pre-trained
# model and the committed masks: s-pruning's and the super-survivors' always, m-pruning's where its weight masks
# are committed:
#
#     RECORDS=1 bash results/minilm-full/restore.sh
#     SETTINGS=retrained TASKS=STS-B SUPER_FIRST=1 bash results/minilm-full/run_subnetworks.sh
#
# A seed restored so has no weights: its pruned-only cells, maps and (where its weight masks are not committed)
# m-pruning need run_pruning.sh on a folder restored without RECORDS (or the seed's finetuned/ removed first).
set -euo pipefail
RUN=${RUN:-runs/minilm-full}
RECORDS=${RECORDS:-0}
SRC=${SRC:-results/minilm-full/masks}
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
          magnitude)
            # only where its weight mask is committed (else it stands for a mask rebuilt from the fine-tuned weights)
            [[ -f $stage/mask.safetensors.xz ]] || continue
            ;;
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
# the compressed weight masks, unpacked where the run folder lacks them
while IFS= read -r -d '' f; do
  [[ -e ${f%.xz} ]] || { xz -dc "$f" > "${f%.xz}.tmp" && mv "${f%.xz}.tmp" "${f%.xz}"; }
  rm -f "$f"
done < <(find "$RUN" -name '*.safetensors.xz' -print0)
echo "restored $SRC into $RUN (existing files kept; finetuned/ without RECORDS=1, and magnitude/ where its weight mask is not committed, are rebuilt by run_pruning.sh)"
