#!/usr/bin/env bash
# The real run of issue 3: packaged MiniLM (6 layers x 12 heads), MRPC / RTE / CoLA, seeds 1337,42,86,71,166:
# fine-tuning, then s-pruning and m-pruning of every (task, seed). Run from the repository root:
#
#     nice -n 10 bash results/minilm/run_pruning.sh > runs/minilm/run.log 2>&1
#
# or in two lanes of one core each (as the committed run was made), then collect:
#
#     TASKS=MRPC COLLECT=0 bash results/minilm/run_pruning.sh > runs/minilm/lane1.log 2>&1 &
#     TASKS="RTE CoLA" COLLECT=0 bash results/minilm/run_pruning.sh > runs/minilm/lane2.log 2>&1 &
#     wait; bash results/minilm/collect.sh runs/minilm results/minilm/masks
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
# Subsamples, chosen so one (task, seed) fine-tune + both prunings take a few minutes on one CPU core
# (the training subsample is seeded by the run's seed, the dev subsample by the seed too).
# Deviation from the study (REFERENCE, Fine-tuning): lr 1e-4 instead of 2e-5. Measured on MRPC, 640 examples,
# seed 1: lr 2e-5 left MiniLM at the majority class (acc 0.684 = majority, 60 steps); lr 1e-4 reached 0.706.
# A model that stays at the majority class makes s-pruning meaningless (0.9 x its score is met by any mask).
LR=${LR:-1e-4}
# Deviation from the study (REFERENCE, s-pruning and m-pruning): --floor majority, a mask must also score strictly
# above the majority class on the pruning dev examples. MiniLM's fine-tunes here reach MRPC acc 0.73-0.78, so
# 0.9 x full lies below MRPC's majority share (0.684 on dev); in the first try without the floor, s-pruning of MRPC
# seed 42 went down to 0 heads and 0 MLPs (a model that predicts the majority class "kept" 0.9 x full).
FLOOR=${FLOOR:-majority}
# An empty size (e.g. N_MRPC= D_MRPC=) means the whole set: results/minilm-full/run_pruning.sh.
declare -A NTRAIN=([MRPC]=${N_MRPC-1280} [RTE]=${N_RTE-640} [CoLA]=${N_COLA-1600} [STS-B]=${N_STSB-} [SST-2]=${N_SST2-})
declare -A NDEV=([MRPC]=${D_MRPC-128} [RTE]=${D_RTE-128} [CoLA]=${D_COLA-256} [STS-B]=${D_STSB-} [SST-2]=${D_SST2-})
for seed in $SEEDS; do          # seed by seed, so complete (task, seed) units appear early
  for task in $TASKS; do
    echo "== $(date -u +%H:%M:%S) $task seed $seed"
    $ATTN finetune --task $task --seeds $seed --out $RUN ${NTRAIN[$task]:+--max-train-examples ${NTRAIN[$task]}} --lr $LR --threads $THREADS
    $ATTN prune structured --task $task --seeds $seed --run $RUN ${NDEV[$task]:+--max-dev-examples ${NDEV[$task]}} --floor $FLOOR --threads $THREADS
    $ATTN prune magnitude --task $task --seeds $seed --run $RUN ${NDEV[$task]:+--max-dev-examples ${NDEV[$task]}} --floor $FLOOR --threads $THREADS
  done
done
[[ ${COLLECT:-1} == 1 ]] || { echo "== $(date -u +%H:%M:%S) done (COLLECT=0: not copying)"; exit 0; }
echo "== $(date -u +%H:%M:%S) copying the small outputs to ${MASKS_OUT:-results/minilm/masks}"
bash results/minilm/collect.sh "$RUN" "${MASKS_OUT:-results/minilm/masks}"
echo "== $(date -u +%H:%M:%S) done"
