"""Environment throughput: game-steps per second of the vector env, steps per second of TronEnv.

Vector env: ``TronVectorEnv(all_players=True)`` on room15 with 2 players, so every step encodes
the observations of both players of every game, with autoreset (NEXT_STEP). Actions are random
legal-ish moves (``RandomPolicy``: a random move onto an empty square) for both seats, computed
in the timed loop. A game-step is one turn of one game; the reset steps of NEXT_STEP autoreset
advance no game and are not counted (they are in the time).

Single env: one ``TronEnv`` (learner against the default random opponent) stepped with uniformly
random actions, resets included in the time; also through ``gymnasium.make`` (with its checker
wrappers) for reference.

Prints a table, then one JSON object as the last line. ``--quick`` runs shorter (for CI).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import gymnasium as gym
import numpy as np

import tron
from tron.env import RandomPolicy, TronEnv, TronVectorEnv

BATCH_SIZES = (1, 64, 1024, 4096)
MAP = "room15"


def vector_rate(batch_size: int, steps: int, repeats: int) -> float:
    """Median game-steps per second over ``repeats`` runs of ``steps`` steps."""
    env = TronVectorEnv(2 * batch_size, MAP, all_players=True)
    policy = RandomPolicy(seed=0)
    games = np.arange(batch_size)
    actions = np.zeros((batch_size, 2), dtype=np.int64)
    env.reset(seed=0)
    over = np.zeros(batch_size, dtype=bool)
    rates = []
    for _ in range(repeats + 1):  # the first run warms up
        played = 0
        start = time.perf_counter()
        for _ in range(steps):
            for seat in (0, 1):
                actions[:, seat] = policy.act(env.batch, seat, games)
            played += batch_size - int(over.sum())
            _, _, terminated, truncated, _ = env.step(actions.reshape(-1))
            over = (terminated | truncated)[::2]
        rates.append(played / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def single_rate(env: gym.Env, steps: int, repeats: int) -> float:
    """Median steps per second of one env over ``repeats`` runs of ``steps`` steps."""
    actions = np.random.default_rng(0).integers(0, 4, size=steps)
    env.reset(seed=0)
    rates = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few seconds)")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    vec_steps = {1: 2000, 64: 1000, 1024: 200, 4096: 100} if not args.quick else None
    rates = {}
    for b in BATCH_SIZES:
        steps = vec_steps[b] if vec_steps else max(20, 20000 // b // 10)
        rates[str(b)] = round(vector_rate(b, steps, repeats))
        print(f"vector env, {b:5d} games x 2 players: {rates[str(b)]:>12,} game-steps/s")
    single_steps = 2000 if args.quick else 20000
    single = round(single_rate(TronEnv(MAP), single_steps, repeats))
    print(f"TronEnv:                                  {single:>12,} steps/s")
    made = round(single_rate(gym.make("Tron-v0", maps=MAP), single_steps, repeats))
    print(f"gymnasium.make('Tron-v0'):                {made:>12,} steps/s")
    result = {
        "game_steps_per_s": rates,
        "single_env_steps_per_s": single,
        "single_env_gym_make_steps_per_s": made,
        "map": MAP,
        "players": 2,
        "observations": "both players, every step",
        "autoreset": "NEXT_STEP",
        "quick": args.quick,
        "repeats": repeats,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "tron_file": os.path.relpath(tron.__file__),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
