#!/usr/bin/env bash
# The seed's experiment (README: "The seed's experiment"): ACKTR vs A2C vs A3C vs DQN on Tron with
# the same env-step budget, opponents (a fixed pool, drawn uniformly) and maps, 3 seeds each, plus
# ACKTR in the self-play league as an extra arm; each run's network is scored against minimax
# levels 1-4 and the scripted bots every --eval-every steps. Resumable: run the same command again
# after an interruption (finished runs are skipped, unfinished ones resume from their checkpoint).
#
#   benchmarks/tron_experiment.sh           # this 2-core machine: 300k steps per run, 15 runs,
#                                           # about 2.5 hours of one core (measured: 149 CPU-min;
#                                           # 2h09m wall with --jobs 2 beside another run)
#   FULL=1 benchmarks/tron_experiment.sh    # the full version for a bigger machine: 3M steps per
#                                           # run, 5 seeds, one run per core: ~30 CPU-hours at this
#                                           # machine's cost per step, 3-4 hours on 16 cores
#
# OUT overrides the output directory (results.csv, results.md, curves.png land there).
set -euo pipefail
cd "$(dirname "$0")/.."
TRON=${TRON:-.venv/bin/tron}

if [ -n "${FULL:-}" ]; then
  args=(--steps 3000000 --eval-every 100000 --seeds 5 --jobs "$(nproc)"
        --out "${OUT:-runs/tron-experiment-full}")
else
  args=(--steps 300000 --eval-every 25000 --seeds 3 --jobs 1 --out "${OUT:-runs/tron-experiment}")
fi
echo "nice -n 15 $TRON experiment ${args[*]}" >&2
exec nice -n 15 "$TRON" experiment "${args[@]}"
