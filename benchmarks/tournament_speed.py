"""Tournament speed: games per second with batching (one process) and with worker processes.

Two workloads, each a round robin into a fresh database (``arena.tournament.run_tournament``):

* ``scripted``: random, greedy, wallhugger and chaser on room15, cross and pillars, ``--games``
  games a pair. Their moves cost microseconds, so the per-turn Python overhead is the time and
  batching is what helps: measured with ``batch=1`` (one game at a time) and ``batch=32``.
* ``ladder``: the README's tournament: random, greedy, wallhugger, chaser and
  ``minimax:level=1..3`` on the 13 built-in 2-player maps, 2 games a map and pair (546 games),
  default blocks (4 games for pairs with minimax). Search is most of the time, and the cores are
  what helps: measured with 1 worker and with 2 (and ``os.cpu_count()`` if larger), starting the
  workers included (spawn: importing numpy and numba and loading the minimax kernels, about 1 s,
  2-3 s on a busy machine). Levels 1-3 search to a fixed depth (1, 1, 2), so the games are the
  same in every run. On a shared machine the gain depends on the free cores: the JSON records the
  load.

Each figure is the median of ``--repeats`` runs (the ladder: ``--ladder-repeats``). Usage:
``python benchmarks/tournament_speed.py [--repeats 3] [--games 24] [--ladder-repeats 1]``.
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from arena.tournament import run_tournament
from tron.maps import builtin_maps, get_map

SCRIPTED = ["random", "greedy", "wallhugger", "chaser"]
LADDER = [*SCRIPTED, "minimax:level=1", "minimax:level=2", "minimax:level=3"]


def games_per_s(
    specs: list[str], maps: list[str], games: int, batch: int | None, workers: int, repeats: int
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
    parser.add_argument(
        "--ladder-repeats", type=int, default=1, help="runs of the ladder (~1.5 min each)"
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    result: dict[str, object] = {
        "cpu_count": cores,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "repeats": args.repeats,
        "ladder_repeats": args.ladder_repeats,
    }
    scripted_maps = ["room15", "cross", "pillars"]
    for batch in (1, 32):
        rate = games_per_s(SCRIPTED, scripted_maps, args.games, batch, 1, args.repeats)
        print(f"scripted, batch {batch:>2}, 1 worker: {rate:8.1f} games/s")
        result[f"scripted_batch{batch}_games_per_s"] = round(rate, 1)
    ladder_maps = [m.name for m in builtin_maps(2)]
    for workers in sorted({1, 2, cores}):
        rate = games_per_s(
            LADDER, ladder_maps, 2 * len(ladder_maps), None, workers, args.ladder_repeats
        )
        print(f"ladder, {workers} workers: {rate:8.2f} games/s")
        result[f"ladder_workers{workers}_games_per_s"] = round(rate, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
