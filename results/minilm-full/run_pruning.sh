#!/usr/bin/env bash
# The full-size MiniLM study (every training and dev example), fine-tuning + s-pruning + m-pruning of every
# (task, seed), seed by seed, resumable (finished stages are skipped). From the repository root:
#
#     nice -n 10 bash results/minilm-full/run_pruning.sh > runs/minilm-full/run.log 2>&1
#
# Tasks in order of what fits a CPU first (MRPC, STS-B), then the larger ones. The settings are those of
# results/minilm/run_pruning.sh (lr 1e-4, --floor majority: the deviations named there) with no subsampling.
# The small outputs are copied to results/minilm-full/masks.
set -euo pipefail
export TASKS=${TASKS:-"MRPC STS-B RTE CoLA SST-2"}
export RUN=${RUN:-runs/minilm-full}
export MASKS_OUT=${MASKS_OUT:-results/minilm-full/masks}
export N_MRPC= N_RTE= N_COLA= N_STSB= N_SST2= D_MRPC= D_RTE= D_COLA= D_STSB= D_SST2=
exec bash "$(dirname "$0")/../minilm/run_pruning.sh"
