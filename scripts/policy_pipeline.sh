#!/usr/bin/env bash
# The camera policy's pipeline, end to end: collect -> BC -> DAgger -> evaluate on held-out towns.
#
#   bash scripts/policy_pipeline.sh OUT [WORKERS] [DEVICE]     (DEVICE: cpu or cuda; default cpu)
#   STAGE=train|eval|all (default all) runs a part; PYTHON names the interpreter (default python).
#   SEED=k (default 0) moves every training seed: collection episodes from 1000 k, BC's
#   initialisation and shuffling k, DAgger rollouts from 100000 + 1000 k (held-out routes stay).
#
# Training towns generated:100..119 (episode seeds 0.. for collection, 100000.. for DAgger);
# held-out towns generated:9001..9010, 3 random routes of 300 m each (seeds 0..2), default
# traffic. The same commands with WORKERS=1 reproduce the same numbers more slowly.
set -euo pipefail
OUT=${1:?usage: policy_pipeline.sh OUT [WORKERS] [DEVICE]}
WORKERS=${2:-2}
DEVICE=${3:-cpu}
STAGE=${STAGE:-all}
SEED=${SEED:-0}
COLLECT_EPISODES=${COLLECT_EPISODES:-40}
DAGGER_EPISODES=${DAGGER_EPISODES:-20}
DAGGER_ITERATIONS=${DAGGER_ITERATIONS:-2}
BC_EPOCHS=${BC_EPOCHS:-10}
DAGGER_EPOCHS=${DAGGER_EPOCHS:-4}
EVAL_LENGTH=${EVAL_LENGTH:-300}
PY=${PYTHON:-python}
LD="$PY -m scripts.cli"
TRAIN_MAPS=$($PY -c "print(' '.join(f'generated:{k}' for k in range(100, 120)))")
EVAL_MAPS=$($PY -c "print(' '.join(f'generated:{k}' for k in range(9001, 9011)))")
mkdir -p "$OUT"

if [[ $STAGE == all || $STAGE == train ]]; then
  $LD collect --maps $TRAIN_MAPS --episodes "$COLLECT_EPISODES" --route-length-m 200 400 --every 2 \
    --seed $((1000 * SEED)) --workers "$WORKERS" --out "$OUT/collect.npz"
  $LD train bc --data "$OUT/collect.npz" --out "$OUT/bc" --epochs "$BC_EPOCHS" --device "$DEVICE" --batch-size 128 \
    --seed "$SEED"
  $LD train dagger --data "$OUT/collect.npz" --init "$OUT/bc" --out "$OUT/dagger" \
    --iterations "$DAGGER_ITERATIONS" --episodes "$DAGGER_EPISODES" --maps $TRAIN_MAPS --route-length-m 200 400 \
    --workers "$WORKERS" --seed $((100000 + 1000 * SEED)) --epochs "$DAGGER_EPOCHS" --device "$DEVICE" --batch-size 128
fi

if [[ $STAGE == all || $STAGE == eval ]]; then
  export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1  # one thread per evaluating process
  # one process per (policy, town); routes and seeds are those of a single run over all towns
  pids=()
  POLICIES=${POLICIES:-autopilot random $OUT/bc $OUT/dagger}
  for policy in $POLICIES; do
    name=$(basename "$policy")
    for map in $EVAL_MAPS; do
      $LD evaluate --policy "$policy" --map "$map" --routes random:${EVAL_ROUTES:-3} --length "$EVAL_LENGTH" --seed 0 \
        --out "$OUT/eval_${name}_${map#generated:}.json" > "$OUT/eval_${name}_${map#generated:}.log" 2>&1 &
      pids+=($!)
      while (( $(jobs -rp | wc -l) >= WORKERS )); do sleep 1; done
    done
  done
  wait "${pids[@]}"
  $PY -m policy.report "$OUT" > "$OUT/table.md"
  cat "$OUT/table.md"
fi
