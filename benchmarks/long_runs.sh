#!/usr/bin/env bash
# The long learning runs of the README: ACKTR vs A2C, same seeds, on this CPU.
#
#   benchmarks/long_runs.sh mujoco   # Hopper-v5, 1M steps each (15-20 min per run on a quiet
#                                    # machine here, ~100 min niced under load)
#   SEEDS=2 benchmarks/long_runs.sh mujoco   # the table in benchmarks/results/hopper-1m/
#   benchmarks/long_runs.sh pong     # PongNoFrameskip-v4, 2M steps each (hours per run here)
#
# Each is one `tron suite` call: resumable (run it again after an interruption), and it writes
# results.md / results.csv / curves/*.png into the output directory (runs/ is git-ignored; copy the
# table, curves and progress.csv files you keep into benchmarks/results/). SEEDS, STEPS and OUT
# override the defaults.
#
# ACKTR's Fisher pass runs on 1/16 of each batch on the CPU (fisher_fraction=0.0625): with the
# paper's whole-batch pass the im2col statistics of the conv factors make an update ~6x slower here
# (benchmarks/train_throughput.py). On a GPU drop that --set to run the paper's setting:
#
#   tron suite atari --steps 10000000 --seeds 3 --device cuda     # the paper's Atari table
set -euo pipefail
cd "$(dirname "$0")/.."
TRON=${TRON:-.venv/bin/tron}
SEEDS=${SEEDS:-1}

case "${1:-}" in
  mujoco)
    "$TRON" suite mujoco --games Hopper --algos acktr,a2c --steps "${STEPS:-1000000}" \
      --seeds "$SEEDS" --out "${OUT:-runs/long-hopper}" --no-progress
    ;;
  pong)
    "$TRON" suite atari --games Pong --algos acktr,a2c --steps "${STEPS:-2000000}" \
      --seeds "$SEEDS" --out "${OUT:-runs/long-pong}" --set fisher_fraction=0.0625 --no-progress
    ;;
  *)
    echo "usage: $0 mujoco|pong" >&2
    exit 2
    ;;
esac
