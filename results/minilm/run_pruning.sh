#!/usr/bin/env bash
# The real run of issue 3: packaged MiniLM (6 layers x 12 heads), MRPC / RTE / CoLA, seeds 1337,42,86,71,166:
# fine-tuning, then s-pruning and m-pruning of every (task, seed). Run from the repository root:
#
#     nice -n 10 bash results/minilm/run_pruning.sh > runs/minilm/run.log 2>&1
#
# Everything (checkpoints included) goes to runs/minilm (gitignored); the small outputs (masks JSON,
# per-iteration scores and importance, summaries, run records) are copied to results/minilm/masks/.
# Finished stages are skipped, so the script can be rerun after an interruption.
set -euo pipefail
export ATTN_GLUE_DIR=${ATTN_GLUE_DIR:-/work/shared/glue}
export TOKENIZERS_PARALLELISM=false
ATTN=${ATTN:-.venv/bin/attn}
RUN=${RUN:-runs/minilm}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-"1337 42 86 71 166"}
TASKS=${TASKS:-"MRPC RTE CoLA"}
# Subsamples, chosen so one (task, seed) fine-tune + both prunings take minutes on the shared 2 CPU cores
# (the training subsample is seeded by the run's seed, the dev subsample by the seed too).
declare -A NTRAIN=([MRPC]=${N_MRPC:-192} [RTE]=${N_RTE:-96} [CoLA]=${N_COLA:-384})
declare -A NDEV=([MRPC]=${D_MRPC:-32} [RTE]=${D_RTE:-32} [CoLA]=${D_COLA:-64})
for seed in $SEEDS; do          # seed by seed, so complete (task, seed) units appear early
  for task in $TASKS; do
    echo "== $(date -u +%H:%M:%S) $task seed $seed"
    $ATTN finetune --task $task --seeds $seed --out $RUN --max-train-examples ${NTRAIN[$task]} --threads $THREADS
    $ATTN prune structured --task $task --seeds $seed --run $RUN --max-dev-examples ${NDEV[$task]} --threads $THREADS
    $ATTN prune magnitude --task $task --seeds $seed --run $RUN --max-dev-examples ${NDEV[$task]} --threads $THREADS
  done
done
echo "== $(date -u +%H:%M:%S) copying the small outputs to results/minilm/masks"
bash results/minilm/collect.sh "$RUN" results/minilm/masks
echo "== $(date -u +%H:%M:%S) done"
