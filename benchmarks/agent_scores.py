"""An agent's scores against every scripted bot and minimax level: the model card's table.

    .venv/bin/python benchmarks/agent_scores.py [AGENT] [--jobs 2] [--out FILE.json]

AGENT (default ``acktr``, the shipped agent) plays each opponent on the 13 built-in 2-player maps,
seats alternating (``tron match``'s schedule): 26 games against the deterministic opponents
(greedy, wallhugger, chaser, minimax levels 1-4: with a greedy network each (map, seat) pair is one
game, however often it is played) and 52 against random (seeded per game) and minimax level 5 (a
wall-clock budget: games differ). Score = (wins + draws / 2) / games with the 95 % normal interval
over games (``arena.experiment.ci_over_games``).

Opponents are played ``--jobs`` at a time in separate processes. Level 5 searches for 100 ms of
wall-clock time a move, so run this on an otherwise idle machine with ``--jobs`` at most the number
of cores, or it measures a weaker level 5. Prints a markdown table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (opponent spec, games); random and level 5 vary from game to game, the rest are deterministic.
OPPONENTS = (
    ("random", 52),
    ("greedy", 26),
    ("wallhugger", 26),
    ("chaser", 26),
    ("minimax:level=1", 26),
    ("minimax:level=2", 26),
    ("minimax:level=3", 26),
    ("minimax:level=4", 26),
    ("minimax:level=5", 52),
)


def measure(agent: str, opponent: str, games: int, seed: int) -> dict[str, Any]:
    """One opponent's row: wins, losses, draws, score and its interval."""
    import torch

    from arena.experiment import ci_over_games
    from arena.match import play_match
    from tron.maps import builtin_maps

    torch.set_num_threads(1)
    start = time.perf_counter()
    result = play_match(agent, opponent, builtin_maps(2), games, seed=seed)
    wins, losses = result.wins
    draws = result.draws
    per_map: dict[str, list[float]] = {}
    for r in result.records:
        points = 0.5 if r.winner is None else float(r.winner == 0)
        per_map.setdefault(r.map, []).append(points)
    return {
        "opponent": opponent,
        "games": games,
        "wins": wins,
        "losses": losses,
        "draws": draws,
        "score": result.score(),
        "ci95": ci_over_games(wins, draws, losses),
        "seconds": time.perf_counter() - start,
        "score_per_map": {m: sum(p) / len(p) for m, p in per_map.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", nargs="?", default="acktr", help="agent spec (default acktr)")
    parser.add_argument("--jobs", type=int, default=1, help="opponents played at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="play only these opponent specs")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    from agents.registry import SpecError, make_agent

    known = [o for o, _ in OPPONENTS]
    unknown = [o for o in args.only or () if o not in known]
    if unknown:
        parser.error(f"--only: not an opponent of the table: {', '.join(unknown)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    try:  # a bad spec or checkpoint: one line here, not a traceback from a worker
        make_agent(args.agent, seed=args.seed).close()
    except (SpecError, OSError, ValueError) as e:
        parser.error(f"agent {args.agent!r}: {e}")
    todo = [(o, g) for o, g in OPPONENTS if not args.only or o in args.only]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(measure, args.agent, o, g, args.seed) for o, g in todo]
        rows = [f.result() for f in futures]
    print(f"{args.agent} on the built-in 2-player maps, seats alternating")
    print("| opponent | games | wins | losses | draws | score | 95 % CI |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['opponent']} | {r['games']} | {r['wins']} | {r['losses']} | {r['draws']} "
            f"| {100 * r['score']:.1f} % | ± {100 * r['ci95']:.1f} |"
        )
    if args.out:
        out = {"agent": args.agent, "cpu_count": os.cpu_count(), "rows": rows}
        tmp = Path(f"{args.out}.tmp")  # written whole, then moved into place
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
