#!/usr/bin/env bash
# Re-create runs/minilm (ignored by git) from the committed results and fresh fine-tunes, so that its maps can be
# classified again with new classifiers: the fine-tunes of run_pruning.sh (same seeds, subsamples and lr), the
# committed s-pruning masks and subnetwork results copied in, the m-pruning re-run (its weight masks are not
# committed; the run is deterministic, and its summaries are compared with the committed ones).
#   TASKS="MRPC RTE CoLA" bash results/minilm/rebuild_run.sh
set -euo pipefail
export ATTN_GLUE_DIR=${ATTN_GLUE_DIR:-/work/shared/glue}
export TOKENIZERS_PARALLELISM=false
ATTN=${ATTN:-.venv/bin/attn}
RUN=${RUN:-runs/minilm}
SEEDS=${SEEDS:-"1337 42 86 71 166"}
TASKS=${TASKS:-"MRPC RTE CoLA"}
declare -A NTRAIN=([MRPC]=1280 [RTE]=640 [CoLA]=1600)
declare -A NDEV=([MRPC]=128 [RTE]=128 [CoLA]=256)
for task in $TASKS; do
  for seed in $SEEDS; do
    d=$RUN/$task/seed_$seed
    if [ ! -f "$d/finetuned/metrics.json" ]; then
      echo "== $(date -u +%H:%M:%S) fine-tune $task seed $seed"
      $ATTN finetune --task $task --seeds $seed --out $RUN --max-train-examples ${NTRAIN[$task]} --lr 1e-4 --threads 1
    fi
    mkdir -p "$d/structured"
    cp -n results/minilm/masks/$task/seed_$seed/structured/* "$d/structured/"
    if [ ! -f "$d/magnitude/mask.safetensors" ]; then
      echo "== $(date -u +%H:%M:%S) m-prune $task seed $seed"
      $ATTN prune magnitude --task $task --seeds $seed --run $RUN --max-dev-examples ${NDEV[$task]} --floor majority --threads 1
    fi
    cmp <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('weights_kept', d.get('kept')))" "$d/magnitude/summary.json") \
        <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('weights_kept', d.get('kept')))" "results/minilm/masks/$task/seed_$seed/magnitude/summary.json") \
      || echo "warning: $task seed $seed: m-pruning summary differs from the committed one"
  done
  [ -d results/minilm/subnetworks/$task ] && cp -rn results/minilm/subnetworks/$task/. $RUN/$task/
done
echo "== $(date -u +%H:%M:%S) done"
