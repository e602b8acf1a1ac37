"""Tournament speed: games per second with batching (one process) and with worker processes.

Two workloads, each a round robin into a fresh database (``arena.tournament.run_tournament``):

* ``scripted``: random, greedy, wallhugger and chaser on room15, cross and pillars, ``--games``
  games a pair. Their moves cost microseconds, so the per-turn Python overhead is the time and
  batching is what helps: measured with ``batch=1`` (one game at a time) and ``batch=32``.
* ``search``: ``minimax:level=2`` (fixed depth 2: deterministic, CPU-bound; its endgame fill
  search makes games on open maps take seconds), greedy and chaser on chambers and room20,
  ``--search-games`` games a pair, one game a block. The search is the time and the cores are
  what helps: measured with 1 worker and with 2 (and ``os.cpu_count()`` if larger). The worker
  figures include starting the workers (spawn: importing numpy and numba and loading the minimax
  kernels, about 1 s on an idle machine, 2-3 s on a busy one, paid once per tournament), and
  they only show a gain when the cores are free: on a shared machine check ``uptime`` first.

Each figure is the median of ``--repeats`` runs. Usage:
``python benchmarks/tournament_speed.py [--repeats 3] [--games 24]``. The last line of output is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from arena.tournament import run_tournament
from tron.maps import get_map

SCRIPTED = ["random", "greedy", "wallhugger", "chaser"]
SEARCH = ["minimax:level=2", "greedy", "chaser"]


def games_per_s(
    specs: list[str], maps: list[str], games: int, batch: int, workers: int, repeats: int
) -> float:
    """Median games/s of ``repeats`` fresh round robins."""
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_tournament(
                specs,
                [get_map(m) for m in maps],
                Path(tmp) / "bench.db",
                games=games,
                batch=batch,
                workers=workers,
            )
            rates.append(run.played / run.seconds)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--games", type=int, default=24, help="games per pair (scripted)")
    parser.add_argument("--search-games", type=int, default=4, help="games per pair (search)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    result: dict[str, object] = {
        "cpu_count": cores,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "repeats": args.repeats,
    }
    scripted_maps = ["room15", "cross", "pillars"]
    for batch in (1, 32):
        rate = games_per_s(SCRIPTED, scripted_maps, args.games, batch, 1, args.repeats)
        print(f"scripted, batch {batch:>2}, 1 worker: {rate:8.1f} games/s")
        result[f"scripted_batch{batch}_games_per_s"] = round(rate, 1)
    for workers in sorted({1, 2, cores}):
        rate = games_per_s(
            SEARCH, ["chambers", "room20"], args.search_games, 1, workers, args.repeats
        )
        print(f"search, batch 1, {workers} workers: {rate:8.2f} games/s")
        result[f"search_workers{workers}_games_per_s"] = round(rate, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
