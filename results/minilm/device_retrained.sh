#!/usr/bin/env bash
# The missing re-fine-tunings of results/minilm/run_subnetworks.sh, on a lent GPU machine (the device tool), in one
# call after the bundle of results/minilm/device_bundle.py was staged there piece by piece:
#
#   call 1..n-1:  mkdir -p /tmp/stage && cp .dev/p* /tmp/stage/        (each call carrying the next .dev/pN)
#   call n:       bash results/minilm/device_retrained.sh              (carrying the last piece)
#
# It joins and unpacks the bundle, runs the CUDA tests, then the retrained jobs of run_subnetworks.sh with
# DEVICE=cuda (WORKERS processes share the GPU; bf16 autocast in training, fp32 evaluation) for at most BUDGET
# seconds, and packs every finished retrained.json (and the re-fine-tuning runs' records) into $OUT/retrained.tgz.
# Unpack that over runs/ here: 'tar xzf retrained.tgz -C runs'; then 'attn table --run runs/minilm --out results/minilm'.
set -uo pipefail
S=${STAGE:-/tmp/stage}
PY=${PY:-python3}
OUT=${OUT:-/tmp/out}
mkdir -p "$S" "$OUT"
cp .dev/p* "$S/" 2>/dev/null
( cd "$S" && cat $(ls p* | sort) > bundle.tar && tar xf bundle.tar && mkdir -p runs && tar xJf runs.tar.xz -C runs ) \
  || { echo "cannot unpack the bundle in $S (are all pieces there?)"; ls -l "$S"; exit 1; }
RUN=$S/runs/minilm
for d in "$RUN"/*/seed_*; do
  g=$d/subnetworks/magnitude/good/mask.safetensors
  if [[ -f $g ]]; then  # m-pruning subnetworks: their good mask is the pruning mask; shapes from the header file
    cp "$g" "$d/magnitude/mask.safetensors"
    cp "$RUN/_finetuned_header_only.safetensors" "$d/finetuned/model.safetensors"
  fi
done
export PYTHONPATH=$S/site:$PWD ATTN="$PY -m cli.main" ATTN_GLUE_DIR=$S/glue RUN DEVICE=${DEVICE:-cuda} TABLE=0
export WORKERS=${WORKERS:-8} STAGGER=${STAGGER:-1} SUPER_FIRST=1 PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
if [[ ${CUDA_TESTS:-1} == 1 ]]; then
  timeout 180 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
fi
start=$(date +%s)
timeout "${BUDGET:-400}" bash results/minilm/run_subnetworks.sh > "$OUT/subnetworks-gpu.log" 2>&1
echo "run_subnetworks.sh: rc $?, $(( $(date +%s) - start )) s"
grep -c " end retrained" "$OUT/subnetworks-gpu.log"; grep -E "FAILED|Error|error:" "$OUT/subnetworks-gpu.log" | head -20
( cd "$S/runs" && find minilm -path '*/subnetworks/*' \( -name retrained.json -o -name full_retrained.json \
    -o \( -path '*retrained/*' -name '*.json' ! -name 'tokenizer*' \) \) | sort > files.txt
  echo "$(grep -c 'retrained.json$' files.txt) retrained.json files"; tar czf "$OUT/retrained.tgz" -T files.txt )
tail -5 "$OUT/subnetworks-gpu.log"
