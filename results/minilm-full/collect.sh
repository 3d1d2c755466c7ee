#!/usr/bin/env bash
# Copy the small outputs of runs/minilm-full into results/minilm-full and tabulate them (rerun as cells finish):
#   bash results/minilm-full/collect.sh
# masks/ (fine-tuning records, s-pruning masks and iterations, m-pruning summaries and, where the run folder has
# them, its weight masks, the pattern distributions),
# the subnetworks' results (in masks/ too) and their table (table.{md,csv,tex}), the profile record, each classified
# seed's heads.json and one seed's example maps per task (masks/config.json, masks/classify/TASK/seed_S/),
# report/ (built from masks/ alone),
# summary.{md,json} (one row per
# task and seed), stats/ (stability over seeds, tasks with at least two finished seeds) and paper.md (beside the
# authors' bert-base numbers; the grid is complete, so a missing cell is an error that names it).
set -euo pipefail
RUN=${RUN:-runs/minilm-full}
OUT=results/minilm-full
ATTN=${ATTN:-.venv/bin/attn}
bash results/minilm/collect.sh "$RUN" "$OUT/masks"
# the subnetworks' results (pruned.json, retrained.json, the head-set masks), beside the masks they come from
bash results/minilm/collect_subnetworks.sh "$RUN" "$OUT/masks" > /dev/null
if compgen -G "$OUT/masks/*/seed_*/subnetworks" > /dev/null; then
  $ATTN table --run "$OUT/masks" --out "$OUT" > /dev/null
fi
bash results/minilm-full/pack_weight_masks.sh "$RUN" "$OUT/masks"  # m-pruning's weight masks, xz-compressed
[ -f "$RUN/config.json" ] && cp "$RUN/config.json" "$OUT/masks/"  # the profile record of attn run / attn sweep
for d in "$RUN"/classify/*/; do  # the pattern distributions (attn paper, the report) and one seed's example maps
  task=$(basename "$d")
  [ -f "$d/distribution.json" ] || continue
  mkdir -p "$OUT/masks/classify/$task"
  cp "$d/distribution.json" "$OUT/masks/classify/$task/"
  for h in "$d"/seed_*/heads.json; do  # every seed's per-head counts and labels (~230 KB): a later pooling needs them
    [ -f "$h" ] || continue
    mkdir -p "$OUT/masks/classify/$task/$(basename "$(dirname "$h")")"
    cp "$h" "$OUT/masks/classify/$task/$(basename "$(dirname "$h")")/"
  done
  compgen -G "$OUT/masks/classify/$task/seed_*/examples.npz" > /dev/null && continue  # one seed's are enough
  for seed in 1337 42 86 71 166; do
    e=$d/seed_$seed
    [ -f "$e/examples.npz" ] || continue
    mkdir -p "$OUT/masks/classify/$task/seed_$seed"
    cp "$e/examples.npz" "$e/examples.json" "$OUT/masks/classify/$task/seed_$seed/"
    break
  done
done
# the report, from the committed files alone (so anyone can rebuild it from a clone)
$ATTN report --run "$OUT/masks" --out "$OUT/report" --title minilm-full > /dev/null
.venv/bin/python results/minilm/summarize.py "$OUT/masks" --out "$OUT/summary"
mkdir -p "$OUT/stats"
$ATTN stats --masks "$OUT/masks" --skip-unfinished --json "$OUT/stats/stats.json" --markdown "$OUT/stats/stats.md" > /dev/null || echo "stats: not enough finished seeds yet"
# every cell of the five-task grid is filled: a missing one fails here
$ATTN paper --run "$OUT/masks" --out "$OUT/paper.md" > /dev/null
echo "collected into $OUT"
