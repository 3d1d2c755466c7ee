#!/usr/bin/env bash
# Good / random / bad subnetworks of the full-size MiniLM study, from the fine-tunings and prunings of
# results/minilm-full/run_pruning.sh in runs/minilm-full; resumable (finished cells are skipped). From the
# repository root:
#
#     SETTINGS=pruned nice -n 10 bash results/minilm-full/run_subnetworks.sh > runs/minilm-full/subnetworks.log 2>&1
#
# SETTINGS=pruned runs only the evaluations of the masks on the fine-tuned models (minutes per cell on a CPU);
# the default, "pruned retrained", also re-fine-tunes every subnetwork on the whole training set (the study's
# rule; about 79 CPU core-hours for MRPC and STS-B alone, so meant for a GPU: DEVICE=cuda WORKERS=8). Seeds 1337,
# 42, 86; super-survivors from all five. Tasks whose fine-tunings and prunings are not finished wait; the script
# stops at STOP_AT (UTC HH:MM). Then `bash results/minilm-full/collect.sh` copies the results and writes the table.
set -euo pipefail
export TASKS=${TASKS:-"MRPC STS-B RTE CoLA SST-2"}
export RUN=${RUN:-runs/minilm-full}
export OUT=${OUT:-results/minilm-full}
export TABLE=${TABLE:-0}  # collect.sh writes the table
export N_MRPC= N_RTE= N_COLA= N_STSB= N_SST2= D_MRPC= D_RTE= D_COLA= D_STSB= D_SST2=
exec bash "$(dirname "$0")/../minilm/run_subnetworks.sh"
