"""Minimax speed: leaf evaluations per second and the depth reached in 100 ms.

Positions: 30 per map from games of ``minimax:depth=2`` against itself after random openings, kept
while the players are connected (where alpha-beta runs; afterwards the fill search does). On each
position the default agent (100 ms a move) searches with iterative deepening for each seat;
``evals_per_s`` is all leaf evaluations over all wall-clock search time (one core, Python
overhead included; ``evals_per_cpu_s`` over the CPU time the process got) and
``mean_depth_at_100ms`` the mean deepest completed iteration (turns: one move of each player).
Each figure is the median of ``--repeats`` passes.

Also measured, in fresh processes: the time to compile every kernel into an empty numba cache, and
the time to load them from a warm cache (what a test process or ``tron bot`` pays).

Usage: ``python benchmarks/minimax_speed.py [--repeats 3] [--ms 100]``. The last line of output is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from agents.minimax import MinimaxAgent, MinimaxConfig
from tron.maps import get_map
from tron.rules import TronBatch

MAPS = ("room15", "cross")  # a 15x15 open room and a 15x15 map with obstacles

_WARM_UP = (
    "import time; t = time.perf_counter(); "
    "from agents.minimax import warm_up; warm_up(); "
    "print(time.perf_counter() - t)"
)


def positions(name: str, count: int = 30) -> list[TronBatch]:
    """``count`` connected positions, one batch of one game each (deterministic).

    Games of ``minimax:depth=2`` against itself after a seeded random opening of 0-7 safe moves
    each; every third turn while the players are connected is kept.
    """
    rng = np.random.default_rng(0)
    player = MinimaxAgent(MinimaxConfig(depth=2))
    out: list[TronBatch] = []
    while len(out) < count:
        game = TronBatch([get_map(name)], 1)
        flat = game.cells.reshape(-1)
        opening = int(rng.integers(0, 8))
        while not game.done[0] and len(out) < count:
            if game.turn[0] < opening:
                moves = []
                for seat in (0, 1):
                    head = game.heads[0, seat]
                    safe = [d for d in range(4) if flat[head + game.offsets[d]] == 0]
                    moves.append(int(rng.choice(safe)) if safe else 0)
            else:
                moves = [int(player.choose(game, seat, 0)) for seat in (0, 1)]
                assert player.last is not None
                if player.last.mode != "alphabeta":
                    break  # separated: the rest of the game is filling
                if game.turn[0] % 3 == 0:
                    snapshot = TronBatch([get_map(name)], 1)
                    for attr in ("cells", "heads", "alive", "turn", "last_move"):
                        getattr(snapshot, attr)[:] = getattr(game, attr)
                    out.append(snapshot)
            game.step(np.array([moves]))
    return out


def measure(batches: list[TronBatch], ms: float) -> tuple[float, float, float]:
    """(evaluations per wall-clock second, per CPU second, mean depth) of the time-budgeted agent
    over the positions. On a shared machine the process may not get a whole core: the CPU-time
    rate is the speed of the code, the wall-clock rate what a move actually got."""
    agent = MinimaxAgent(MinimaxConfig(ms=ms))
    agent.choose(batches[0], 0, 0)  # calibrate the agent's evaluation rate once
    evals, seconds, cpu, depths = 0, 0.0, 0.0, []
    for batch in batches:
        for seat in (0, 1):
            c0 = time.process_time()
            agent.choose(batch, seat, 0)
            c1 = time.process_time()
            info = agent.last
            assert info is not None
            if info.mode != "alphabeta":
                continue  # a forced move (one free square): nothing searched
            cpu += c1 - c0
            evals += info.evals
            seconds += info.seconds
            depths.append(info.depth)
    return evals / seconds, evals / cpu, float(np.mean(depths))


def kernel_load_seconds(cache_dir: str | None) -> float:
    """Seconds a fresh process takes to get every kernel ready (compile or load from cache)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    done = subprocess.run(
        [sys.executable, "-c", _WARM_UP], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ms", type=float, default=100.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        cold = kernel_load_seconds(cache)
        cached = statistics.median(kernel_load_seconds(cache) for _ in range(3))
    print(f"kernels: compile into an empty cache {cold:.1f} s, load from the cache {cached:.2f} s")

    result: dict[str, object] = {
        "machine": f"{os.cpu_count()} CPUs, one core used",
        "ms": args.ms,
        "compile_s": round(cold, 2),
        "cache_load_s": round(cached, 2),
    }
    rates, cpu_rates, depths = {}, {}, {}
    for name in MAPS:
        batches = positions(name)
        runs = [measure(batches, args.ms) for _ in range(args.repeats)]
        rates[name] = round(statistics.median(r for r, _, _ in runs))
        cpu_rates[name] = round(statistics.median(c for _, c, _ in runs))
        depths[name] = round(statistics.median(d for _, _, d in runs), 2)
        print(
            f"{name}: {len(batches)} positions x 2 seats: {rates[name]:,} evals/s "
            f"({cpu_rates[name]:,} per CPU second), mean depth {depths[name]} turns at "
            f"{args.ms:g} ms; runs (evals/s, depth): "
            + ", ".join(f"{r:,.0f}/{d:.2f}" for r, _, d in runs)
        )
    result["evals_per_s"] = rates
    result["evals_per_cpu_s"] = cpu_rates
    result["mean_depth_at_100ms"] = depths
    print(json.dumps(result))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
