#!/usr/bin/env bash
# Long Pong runs of the DQN and A3C baselines, next to ACKTR's and A2C's (not in CI, not run by
# `make bench`: hours on the 2-core CPU). Each run writes checkpoint.pt, progress.csv, tb/ and
# run.json under its directory; a killed run continues from its last checkpoint when the script is
# run again with RESUME=1.
#
#   benchmarks/pong_baselines.sh                       # 2M steps, seed 0, both baselines
#   STEPS=10000000 SEEDS="0 1 2" benchmarks/pong_baselines.sh
#
# Measured on this machine (benchmarks/baseline_throughput.py): DQN ~100 env steps/s (one
# gradient step of the Nature CNN per 4 steps), A3C ~480 env steps/s with 2 workers, so 2M steps
# take about 5.5 h (DQN) and 1.2 h (A3C). Use the same ENV, STEPS and SEEDS as the ACKTR/A2C runs
# so that the curves compare like with like.
set -euo pipefail

ENV=${ENV:-ALE/Pong-v5}
STEPS=${STEPS:-2000000}
SEEDS=${SEEDS:-0}
OUT=${OUT:-runs/pong}
# A3C's paper used 16 workers; on 2 cores more than 2 only time-slice the same CPUs.
A3C_WORKERS=${A3C_WORKERS:-2}
RESUME=${RESUME:-0}
TRON=${TRON:-.venv/bin/tron}

resume=()
if [ "$RESUME" = 1 ]; then
  resume=(--resume)
fi

for seed in $SEEDS; do
  "$TRON" train dqn --env "$ENV" --steps "$STEPS" --seed "$seed" --out "$OUT/dqn-s$seed" "${resume[@]}"
  "$TRON" train a3c --env "$ENV" --steps "$STEPS" --seed "$seed" --envs "$A3C_WORKERS" \
    --out "$OUT/a3c-s$seed" "${resume[@]}"
done
"$TRON" plot "$OUT"/*
