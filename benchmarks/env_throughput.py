"""Environment throughput: game-steps per second of the vector env, steps per second of TronEnv.

Vector env: ``TronVectorEnv(all_players=True)`` on room15 with 2 players, so every step encodes
the observations of both players of every game, with autoreset (NEXT_STEP). Actions are random
legal-ish moves (``RandomPolicy``: a random move onto an empty square) for both seats. A
game-step is one turn of one game; the reset steps of NEXT_STEP autoreset advance no game and are
not counted (their time is).

Single env: one ``TronEnv`` (the learner against the default ``RandomPolicy`` opponent), the
learner also moving with a ``RandomPolicy``, resets included; also through ``gymnasium.make``
(with its order-enforcing and checker wrappers) for reference.

Main figures time the whole loop, the random policy's moves included; the ``env_only_*`` figures
time the env calls alone; the ``*_per_cpu_s`` figures divide by this process's CPU time instead
of wall time, which keeps them meaningful on a machine shared with other jobs (the loop is
single-threaded, so on an idle machine the two agree). Each figure is the median of several runs
after a warm-up run.

Prints a table, then one JSON object as the last line. ``--quick`` runs shorter (a few seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

import tron  # noqa: F401 - registers Tron-v0
from tron.env import RandomPolicy, TronEnv, TronVectorEnv

BATCH_SIZES = (1, 64, 1024, 4096)
MAP = "room15"


class Rates(NamedTuple):
    """Medians over the timed runs, in steps (game-steps for the vector env) per second."""

    loop: float  # the whole loop, random policy included, per second of wall time
    env_only: float  # the env calls alone, per second of wall time
    per_cpu_second: float  # the whole loop per second of this process's CPU time


def median_rates(runs: list[tuple[int, float, float, float]]) -> Rates:
    """Rates from (steps, loop wall time, env wall time, loop CPU time) runs, the first dropped."""
    timed = runs[1:]  # the first run warms up
    return Rates(
        statistics.median(n / wall for n, wall, _, _ in timed),
        statistics.median(n / env for n, _, env, _ in timed),
        statistics.median(n / cpu for n, _, _, cpu in timed),
    )


def vector_rates(batch_size: int, steps: int, repeats: int) -> Rates:
    """Game-steps per second of the all-players vector env with ``batch_size`` games."""
    env = TronVectorEnv(2 * batch_size, MAP, all_players=True)
    policy = RandomPolicy(seed=0)
    games = np.arange(batch_size)
    actions = np.zeros((batch_size, 2), dtype=np.int64)
    env.reset(seed=0)
    over = np.zeros(batch_size, dtype=bool)
    runs = []
    for _ in range(repeats + 1):
        played = 0
        in_env = 0.0
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            for seat in (0, 1):
                actions[:, seat] = policy.act(env.batch, seat, games)
            played += batch_size - int(np.count_nonzero(over))
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions.reshape(-1))
            in_env += time.perf_counter() - t
            over = (terminated | truncated)[::2]
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        runs.append((played, wall, in_env, cpu))
    return median_rates(runs)


def single_rates(env: gym.Env[Any, Any], steps: int, repeats: int) -> Rates:
    """Steps per second of one env, the learner moving with a ``RandomPolicy``."""
    policy = RandomPolicy(seed=1)
    game = np.zeros(1, dtype=np.intp)
    tron_env = env.unwrapped
    assert isinstance(tron_env, TronEnv)
    env.reset(seed=0)
    runs = []
    for _ in range(repeats + 1):
        in_env = 0.0
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            action = policy.act(tron_env.batch, tron_env.seat, game)[0]
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
            in_env += time.perf_counter() - t
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        runs.append((steps, wall, in_env, cpu))
    return median_rates(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few seconds)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    scale = 0.1 if args.quick else 1.0
    vector = {}
    for b in BATCH_SIZES:
        # About 200k game-steps a run, but at least 100 and at most 5000 steps.
        steps = max(10, int(scale * min(5000, max(100, 200_000 // b))))
        vector[str(b)] = r = vector_rates(b, steps, repeats)
        print(
            f"vector env, {b:4d} games x 2 players: {r.loop:>10,.0f} game-steps/s "
            f"(env calls alone {r.env_only:,.0f}; per CPU-second {r.per_cpu_second:,.0f})"
        )
    single_steps = int(scale * 10_000)
    single = single_rates(TronEnv(MAP), single_steps, repeats)
    made = single_rates(gym.make("Tron-v0", maps=MAP), single_steps, repeats)
    for name, r in (("TronEnv", single), ("gymnasium.make('Tron-v0')", made)):
        print(
            f"{name:37s} {r.loop:>10,.0f} steps/s      "
            f"(env calls alone {r.env_only:,.0f}; per CPU-second {r.per_cpu_second:,.0f})"
        )
    result = {
        "game_steps_per_s": {b: round(r.loop) for b, r in vector.items()},
        "single_env_steps_per_s": round(single.loop),
        "env_only_game_steps_per_s": {b: round(r.env_only) for b, r in vector.items()},
        "env_only_single_env_steps_per_s": round(single.env_only),
        "game_steps_per_cpu_s": {b: round(r.per_cpu_second) for b, r in vector.items()},
        "single_env_steps_per_cpu_s": round(single.per_cpu_second),
        "gym_make_single_env_steps_per_s": round(made.loop),
        "map": MAP,
        "players": 2,
        "observations": "both players, every step",
        "autoreset": "NEXT_STEP",
        "actions": "RandomPolicy (random move onto an empty square)",
        "quick": args.quick,
        "repeats": repeats,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "numpy": np.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
