#!/usr/bin/env bash
# Missing re-fine-tunings of a run folder on a lent GPU machine (the device tool), in one call after the bundle of
# results/minilm/device_bundle.py was staged there piece by piece:
#
#   call 1..n-1:  mkdir -p /tmp/stage && cp .dev/p* /tmp/stage/        (each call carrying the next .dev/pN; the
#                 first can run the CUDA tests with the tokenizer alone: carry .dev/tok too, PYTHONPATH=.dev/tok:.)
#   call n:       bash results/minilm/device_retrained.sh              (carrying the last piece)
#
# It joins and unpacks the bundle, runs the CUDA tests (CUDA_TESTS=1), the GPU cost measurement of
# bench/bench_sweep.py (BENCH=1, BENCH_N examples per measurement, default 1024: $OUT/bench-h200.json, the plan's
# cost table $OUT/costs-h200.json), then the
# retrained jobs of SCRIPT (default results/minilm/run_subnetworks.sh) on runs/RUNNAME (default minilm) with
# DEVICE=cuda (WORKERS processes share the GPU; bf16 autocast in training, fp32 evaluation), and stops starting jobs
# so that everything ends TOTAL seconds (default 560) after the call began. Every finished retrained.json (and the
# re-fine-tuning runs' records) goes into $OUT/retrained.tgz. Unpack that over runs/ here: 'tar xzf retrained.tgz
# -C runs'; then collect as the run folder's scripts say. The full-size study's RTE and CoLA cells:
#
#   RUNNAME=minilm-full SCRIPT=results/minilm-full/run_subnetworks.sh TASKS="RTE CoLA" SETTINGS=retrained BENCH=1 \
#     CUDA_TESTS=0 WORKERS=12 bash results/minilm/device_retrained.sh
#
# SST-2's cells are one re-fine-tuning of 67,349 examples each (about 8 minutes of a process with 12 sharing the GPU):
# CELLS=1 makes each subnetwork its own job, so a deadline loses only the cells still running and a later loan
# resumes with the rest:
#
#   RUNNAME=minilm-full SCRIPT=results/minilm-full/run_subnetworks.sh TASKS=SST-2 SETTINGS=retrained CELLS=1 \
#     CUDA_TESTS=0 WORKERS=12 bash results/minilm/device_retrained.sh
set -uo pipefail
T0=$(date +%s)
S=${STAGE:-/tmp/stage}
PY=${PY:-python3}
OUT=${OUT:-/tmp/out}
RUNNAME=${RUNNAME:-minilm}
SCRIPT=${SCRIPT:-results/minilm/run_subnetworks.sh}
mkdir -p "$S" "$OUT"
cp .dev/p* "$S/" 2>/dev/null
( cd "$S" && cat $(ls p* | sort) > bundle.tar && tar xf bundle.tar && { [[ ! -f glue.tar.xz ]] || tar xJf glue.tar.xz; } && mkdir -p runs && tar xJf runs.tar.xz -C runs ) \
  || { echo "cannot unpack the bundle in $S (are all pieces there?)"; ls -l "$S"; exit 1; }
RUN=$S/runs/$RUNNAME
for d in "$RUN"/*/seed_*; do
  g=$d/subnetworks/magnitude/good/mask.safetensors
  if [[ -f $g ]]; then  # m-pruning subnetworks: their good mask is the pruning mask; shapes from the header file
    cp "$g" "$d/magnitude/mask.safetensors"
    cp "$RUN/_finetuned_header_only.safetensors" "$d/finetuned/model.safetensors"
  fi
done
echo "unpacked in $(( $(date +%s) - T0 )) s"
export PYTHONPATH=$S/site:$PWD ATTN="$PY -m cli.main" ATTN_GLUE_DIR=$S/glue RUN DEVICE=${DEVICE:-cuda} TABLE=0
export WORKERS=${WORKERS:-8} STAGGER=${STAGGER:-1} SUPER_FIRST=1 PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
if [[ ${CUDA_TESTS:-1} == 1 ]]; then
  timeout 180 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
fi
if [[ ${BENCH:-0} == 1 ]]; then
  b=$(date +%s)
  timeout "${BENCH_BUDGET:-200}" $PY bench/bench_sweep.py --device cuda --clock wall --n "${BENCH_N:-1024}" --share "${SHARE:-8}" \
    --json "$OUT/bench-h200.json" --costs-out "$OUT/costs-h200.json" > "$OUT/bench-h200.log" 2>&1
  echo "bench_sweep.py: rc $?, $(( $(date +%s) - b )) s"; tail -40 "$OUT/bench-h200.log"
fi
start=$(date +%s)
left=$(( T0 + ${TOTAL:-560} - start - 25 ))  # 25 s for packing
if (( left > 30 )); then
  timeout "$left" bash "$SCRIPT" > "$OUT/subnetworks-gpu.log" 2>&1
  echo "$SCRIPT: rc $?, $(( $(date +%s) - start )) s of $left"
  pkill -f "cli.main subnetworks"; sleep 2  # jobs cut by the deadline: their cells stay missing
fi
grep -c " end retrained" "$OUT/subnetworks-gpu.log"; grep -E "FAILED|Error|error:" "$OUT/subnetworks-gpu.log" | head -20
( cd "$S/runs" && find "$RUNNAME" -path '*/subnetworks/*' \( -name retrained.json -o -name full_retrained.json \
    -o \( -path '*retrained/*' -name '*.json' ! -name 'tokenizer*' \) \) | sort > files.txt
  echo "$(grep -c 'retrained.json$' files.txt) retrained.json files"
  xargs -a files.txt sed -i "s|$S/runs/|runs/|g"  # run_dir as it reads here: runs/RUNNAME/...
  tar czf "$OUT/retrained.tgz" -T files.txt )
tail -5 "$OUT/subnetworks-gpu.log"
