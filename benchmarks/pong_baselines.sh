#!/usr/bin/env bash
# Long Pong runs of the DQN and A3C baselines, next to ACKTR's and A2C's (not in CI, not run by
# `make bench`: hours on the 2-core CPU). Same env id, seeds and step budget as
# `benchmarks/long_runs.sh pong`, and the same output tree (runs/long-pong/PongNoFrameskip-v4/),
# so `tron plot` draws all four learners on one figure. Each run writes checkpoint.pt,
# progress.csv, tb/ and run.json under its directory; running the script again resumes every
# unfinished run from its last checkpoint.
#
#   benchmarks/pong_baselines.sh                  # 2M steps, seed 0, both baselines
#   ALGOS=a3c benchmarks/pong_baselines.sh        # one of them
#   STEPS=10000000 SEEDS="0 1 2" benchmarks/pong_baselines.sh
#
# Measured on this machine (benchmarks/baseline_throughput.py): DQN ~100 env steps/s (one
# gradient step of the Nature CNN per 4 steps), A3C ~480 env steps/s with 2 workers, so 2M steps
# take about 5.5 h (DQN) and 1.2 h (A3C).
#
# DQN decays epsilon over the first 10 % of the run, CleanRL's rule (exploration_fraction 0.1; its
# preset value of 1M steps is 10 % of a 10M-step run), so a short run is not spent exploring.
set -euo pipefail
cd "$(dirname "$0")/.."

ENV=${ENV:-PongNoFrameskip-v4}
STEPS=${STEPS:-2000000}
SEEDS=${SEEDS:-0}
ALGOS=${ALGOS:-dqn a3c}
OUT=${OUT:-runs/long-pong/$ENV}
# A3C's paper used 16 workers; on 2 cores more than 2 only time-slice the same CPUs.
A3C_WORKERS=${A3C_WORKERS:-2}
TRON=${TRON:-.venv/bin/tron}

for seed in $SEEDS; do
  for algo in $ALGOS; do
    run="$OUT/$algo-s$seed"
    resume=()
    if [ -f "$run/checkpoint.pt" ]; then
      resume=(--resume)
    fi
    case "$algo" in
      dqn)
        "$TRON" train dqn --env "$ENV" --steps "$STEPS" --seed "$seed" --out "$run" \
          --set exploration_steps=$((STEPS / 10)) --no-progress "${resume[@]}"
        ;;
      a3c)
        "$TRON" train a3c --env "$ENV" --steps "$STEPS" --seed "$seed" --envs "$A3C_WORKERS" \
          --out "$run" --no-progress "${resume[@]}"
        ;;
      *)
        echo "unknown algo: $algo (dqn or a3c)" >&2
        exit 2
        ;;
    esac
  done
done
"$TRON" plot "$OUT"/* --out "$OUT/../curves-all.png"
