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
time the env calls alone. Each figure is the median of several runs after a warm-up run.

Prints a table, then one JSON object as the last line. ``--quick`` runs shorter (a few seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np

import tron  # noqa: F401 - registers Tron-v0
from tron.env import RandomPolicy, TronEnv, TronVectorEnv

BATCH_SIZES = (1, 64, 1024, 4096)
MAP = "room15"


def vector_rates(batch_size: int, steps: int, repeats: int) -> tuple[float, float]:
    """Median game-steps per second (whole loop, env calls only) over ``repeats`` runs."""
    env = TronVectorEnv(2 * batch_size, MAP, all_players=True)
    policy = RandomPolicy(seed=0)
    games = np.arange(batch_size)
    actions = np.zeros((batch_size, 2), dtype=np.int64)
    env.reset(seed=0)
    over = np.zeros(batch_size, dtype=bool)
    loop, env_only = [], []
    for _ in range(repeats + 1):  # the first run warms up
        played = 0
        in_env = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            for seat in (0, 1):
                actions[:, seat] = policy.act(env.batch, seat, games)
            played += batch_size - int(np.count_nonzero(over))
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions.reshape(-1))
            in_env += time.perf_counter() - t
            over = (terminated | truncated)[::2]
        loop.append(played / (time.perf_counter() - start))
        env_only.append(played / in_env)
    return statistics.median(loop[1:]), statistics.median(env_only[1:])


def single_rates(env: gym.Env[Any, Any], steps: int, repeats: int) -> tuple[float, float]:
    """Median steps per second of one env (whole loop, env calls only) over ``repeats`` runs."""
    policy = RandomPolicy(seed=1)
    game = np.zeros(1, dtype=np.intp)
    tron_env = env.unwrapped
    assert isinstance(tron_env, TronEnv)
    env.reset(seed=0)
    loop, env_only = [], []
    for _ in range(repeats + 1):
        in_env = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            action = policy.act(tron_env.batch, tron_env.seat, game)[0]
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
            in_env += time.perf_counter() - t
        loop.append(steps / (time.perf_counter() - start))
        env_only.append(steps / in_env)
    return statistics.median(loop[1:]), statistics.median(env_only[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few seconds)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    scale = 0.1 if args.quick else 1.0
    rates, env_rates = {}, {}
    for b in BATCH_SIZES:
        steps = max(10, int(scale * max(100, 200_000 // b)))
        loop, env_only = vector_rates(b, steps, repeats)
        rates[str(b)], env_rates[str(b)] = round(loop), round(env_only)
        print(
            f"vector env, {b:5d} games x 2 players: {loop:>12,.0f} game-steps/s "
            f"(env calls alone {env_only:,.0f})"
        )
    single_steps = int(scale * 20_000)
    single, single_env = single_rates(TronEnv(MAP), single_steps, repeats)
    print(
        f"TronEnv:                   {single:>12,.0f} steps/s (env calls alone {single_env:,.0f})"
    )
    made, made_env = single_rates(gym.make("Tron-v0", maps=MAP), single_steps, repeats)
    print(f"gymnasium.make('Tron-v0'): {made:>12,.0f} steps/s (env calls alone {made_env:,.0f})")
    result = {
        "game_steps_per_s": rates,
        "single_env_steps_per_s": round(single),
        "env_only_game_steps_per_s": env_rates,
        "env_only_single_env_steps_per_s": round(single_env),
        "gym_make_single_env_steps_per_s": round(made),
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
