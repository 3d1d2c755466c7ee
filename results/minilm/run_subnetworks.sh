#!/usr/bin/env bash
# The real run of issue 4: good / random / bad subnetworks of every (task, seed, method), pruned and
# re-fine-tuned, on the packaged MiniLM, MRPC / RTE / CoLA, seeds 1337,42,86, using the fine-tuning and
# pruning outputs of results/minilm/run_pruning.sh in runs/minilm. Run from the repository root:
#
#     nice -n 10 bash results/minilm/run_subnetworks.sh > runs/minilm/subnetworks.log 2>&1
#
# It starts each job as soon as its inputs exist (a seed's finetuned/ + structured/ or magnitude/ summary;
# for super-survivors every seed's structured/), runs WORKERS jobs at once (1 torch thread each; DEVICE=cuda puts them on the GPU), cheap
# "pruned" jobs first, and skips what is done, so it can be stopped and rerun at any time. It stops
# starting new jobs at STOP_AT (UTC, HH:MM) and then writes the table to results/minilm/.
#
# Re-fine-tuning budget: every "retrained" cell is a fine-tuning run, 81 of them for 3 tasks x 3 seeds x 3
# methods x 3 subnetworks, on 2 CPU cores. By default each uses the fine-tuning run's own training subsample
# (MRPC 1280, RTE 640, CoLA 1600) and hyperparameters (lr 1e-4, 3 epochs, batch 32). N_MRPC=320 N_RTE=160
# N_COLA=400 (a quarter) was tried first and is too small: on MRPC seed 1337 every re-fine-tuned model, the
# unmasked one included, stayed at the majority class (acc 0.684). With a smaller budget the unmasked model is
# re-fine-tuned under it as a control row. Every evaluation (pruned, retrained, and the full model
# and majority class they are compared with) uses the whole dev set. The super-survivors are the heads and MLPs
# kept by s-pruning in all 5 seeds (SUPER_FROM), evaluated on the first 3 seeds like the other methods.
set -uo pipefail
export ATTN_GLUE_DIR=${ATTN_GLUE_DIR:-/work/shared/glue}
export TOKENIZERS_PARALLELISM=false
ATTN=${ATTN:-.venv/bin/attn}
RUN=${RUN:-runs/minilm}
SEEDS=${SEEDS:-"1337 42 86"}
SUPER_FROM=${SUPER_FROM:-"1337 42 86 71 166"}
TASKS=${TASKS:-"MRPC RTE CoLA"}
WORKERS=${WORKERS:-2}
DEVICE=${DEVICE:-cpu}   # cuda: every job on the GPU (WORKERS processes share it)
TABLE=${TABLE:-1}      # 0: leave out the table and the copy into results/ at the end
OUT=${OUT:-results/minilm}  # where the table and the copied outputs go
SETTINGS=${SETTINGS:-"pruned retrained"}  # "pruned": only the cheap evaluations of the masks on the fine-tuned models
STOP_AT=${STOP_AT:-"23:59"}
declare -A NTRAIN=([MRPC]=${N_MRPC:-} [RTE]=${N_RTE:-} [CoLA]=${N_COLA:-} [STS-B]=${N_STSB:-} [SST-2]=${N_SST2:-})  # empty: the fine-tuning run's
declare -A NDEV=([MRPC]=${D_MRPC:-} [RTE]=${D_RTE:-} [CoLA]=${D_COLA:-} [STS-B]=${D_STSB:-} [SST-2]=${D_SST2:-})  # empty: the whole dev set
SUPER_CSV=$(echo $SUPER_FROM | tr ' ' ',')
LOCKS=$RUN/.subnetwork-locks
# a job's lock is a folder holding its worker's pid: a new driver clears the locks of workers no longer alive (and
# every failure marker, so that failed jobs are tried again) and leaves a running driver's jobs to it
mkdir -p "$LOCKS"; rm -f "$LOCKS"/failed-*
for lock in "$LOCKS"/*/; do
  [[ -d $lock ]] || continue
  holder=$(cat "$lock/pid" 2>/dev/null) || holder=
  if [[ -n $holder ]]; then
    kill -0 "$holder" 2>/dev/null && continue
  elif [[ -n $(find "$lock" -maxdepth 0 -mmin -1) ]]; then
    continue  # taken this minute, its pid not written yet
  fi
  rm -rf "$lock"
done

# one job per line: setting task method seeds (comma-separated); seed-major, so that if the time runs out
# every task has its first seeds complete rather than some tasks all seeds and others none
# CELLS=1: one job per subnetwork (good, random, bad) instead of one per (method, seed): on a GPU shared by many
# processes, each job is one re-fine-tuning, so a deadline loses at most the cells still running
SUBS=all; [[ ${CELLS:-0} == 1 ]] && SUBS="good random bad"

jobs() {
  local sub
  for setting in $SETTINGS; do
    # SUPER_FIRST=1: the super-survivor jobs of a setting before the per-seed ones (the study's key comparison)
    # the super-survivor set is one per task (TASK/super/), its evaluation one job per seed so that workers share it
    if [[ ${SUPER_FIRST:-0} == 1 ]]; then
      for seed in $SEEDS; do for task in $TASKS; do for sub in $SUBS; do echo "$setting $task super $seed $sub"; done; done; done
    fi
    for seed in $SEEDS; do
      for task in $TASKS; do
        for method in structured magnitude; do for sub in $SUBS; do echo "$setting $task $method $seed $sub"; done; done
      done
    done
    if [[ ${SUPER_FIRST:-0} != 1 ]]; then
      for seed in $SEEDS; do for task in $TASKS; do for sub in $SUBS; do echo "$setting $task super $seed $sub"; done; done; done
    fi
  done
}

ready() {  # task method seeds
  local s
  for s in ${3//,/ }; do
    [[ -f $RUN/$1/seed_$s/finetuned/metrics.json ]] || return 1
    [[ $2 == super ]] || [[ -f $RUN/$1/seed_$s/$2/summary.json ]] || return 1
  done
  if [[ $2 == super ]]; then
    for s in $SUPER_FROM; do [[ -f $RUN/$1/seed_$s/structured/summary.json ]] || return 1; done
  fi
}

done_() {  # setting task method seeds subnet (all: good, random and bad)
  local s sub subs=$5
  [[ $subs == all ]] && subs="good random bad"
  for s in ${4//,/ }; do
    for sub in $subs; do
      [[ -f $RUN/$2/seed_$s/subnetworks/$3/$sub/$1.json ]] || return 1
    done
  done
}

# STOP_AT is the next time the UTC clock reads HH:MM (tomorrow's when today's has passed at the start)
STOP_EPOCH=$(date -u -d "$STOP_AT" +%s)
(( STOP_EPOCH > $(date -u +%s) )) || STOP_EPOCH=$((STOP_EPOCH + 86400))
past_stop() { (( $(date -u +%s) >= STOP_EPOCH )); }

worker() {
  local w=$1 setting task method seeds sub left key extra
  while true; do
    left=0
    while read -r setting task method seeds sub; do
      done_ $setting $task $method $seeds $sub && continue
      key="$setting-$task-$method-${seeds//,/_}-$sub"
      [[ -e $LOCKS/failed-$key ]] && continue
      left=1
      past_stop && { echo "[$w] $(date -u +%H:%M:%S) past $STOP_AT: no new jobs"; return; }
      ready $task $method $seeds || continue
      mkdir "$LOCKS/$key" 2>/dev/null || continue
      echo $BASHPID > "$LOCKS/$key/pid"
      done_ $setting $task $method $seeds $sub && { rm -rf "$LOCKS/$key"; continue; }  # finished while we looked
      echo "[$w] $(date -u +%H:%M:%S) start $setting $task $method seeds $seeds ($sub)"
      extra=()
      [[ $sub != all ]] && extra+=(--subnets $sub)
      [[ -n ${NDEV[$task]} ]] && extra+=(--max-dev-examples ${NDEV[$task]})
      [[ -n ${NTRAIN[$task]} ]] && extra+=(--max-train-examples ${NTRAIN[$task]})
      [[ $method == super ]] && extra+=(--super-from $SUPER_CSV)
      $ATTN subnetworks --task $task --seeds $seeds --method $method --run $RUN --settings $setting \
        "${extra[@]}" --threads 1 --device $DEVICE --no-progress \
        || { echo "[$w] $(date -u +%H:%M:%S) FAILED $setting $task $method $seeds ($sub)"; touch "$LOCKS/failed-$key"; }
      echo "[$w] $(date -u +%H:%M:%S) end $setting $task $method seeds $seeds ($sub)"
      rm -rf "$LOCKS/$key"
      continue 2  # rescan from the top: cheap jobs that became ready go first
    done < <(jobs)
    [[ $left == 0 ]] && { echo "[$w] $(date -u +%H:%M:%S) all done"; return; }
    sleep ${POLL:-30}  # seconds between looks for jobs that became ready or were freed
  done
}

echo "== $(date -u +%H:%M:%S) start: tasks $TASKS, seeds $SEEDS, $WORKERS workers, train subsamples MRPC ${NTRAIN[MRPC]:-as fine-tuned} RTE ${NTRAIN[RTE]:-as fine-tuned} CoLA ${NTRAIN[CoLA]:-as fine-tuned}, dev subsamples MRPC ${NDEV[MRPC]:-all} RTE ${NDEV[RTE]:-all} CoLA ${NDEV[CoLA]:-all}, super-survivors from seeds $SUPER_FROM"
for w in $(seq 1 $WORKERS); do worker $w & sleep ${STAGGER:-5}; done
wait
[[ $TABLE == 1 ]] || { echo "== $(date -u +%H:%M:%S) done (no table: TABLE=0)"; exit 0; }
echo "== $(date -u +%H:%M:%S) writing the table"
$ATTN table --run $RUN --out "$OUT"
bash results/minilm/collect_subnetworks.sh "$RUN" "$OUT/subnetworks"
echo "== $(date -u +%H:%M:%S) done"
