"""``tron match A B``: play games between two agents and print the result."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from arena.cli import CommandError

if TYPE_CHECKING:
    from arena.match import MatchResult


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "match",
        help="play games between two agents",
        description=(
            "Play N games between agents A and B (specs such as greedy, minimax:level=3, "
            "cmd:./mybot), alternating seats and rotating maps, and print the result."
        ),
    )
    p.add_argument("agent_a", metavar="A", help="agent spec of A")
    p.add_argument("agent_b", metavar="B", help="agent spec of B")
    p.add_argument(
        "--games", type=int, default=None, help="games to play (default: 2 per map, both seatings)"
    )
    p.add_argument(
        "--map",
        dest="maps",
        action="append",
        metavar="NAME|FILE",
        help="a built-in map or a map file; repeat to rotate (default: the 2-player built-ins)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the agents (A gets S, B S+1)")
    p.add_argument("--concurrency", type=int, default=16, help="games played at once (default 16)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--save-replay",
        metavar="FILE",
        help="write every game to a replay file (tron replay FILE)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agents.registry import SpecError, make_agent
    from arena.match import GameRecord, play_match
    from tron.maps import MapError, builtin_maps, load_map

    try:
        maps = [load_map(m) for m in args.maps] if args.maps else builtin_maps(2)
    except MapError as e:
        raise CommandError(str(e)) from None
    for m in maps:
        if m.n_players != 2:
            raise CommandError(f"map {m.name!r} is for {m.n_players} players; a match is 2-player")
    games = args.games if args.games is not None else 2 * len(maps)
    if games < 1:
        raise CommandError(f"--games must be >= 1, got {games}")
    if args.concurrency < 1:
        raise CommandError(f"--concurrency must be >= 1, got {args.concurrency}")
    agents = []
    try:
        for k, spec in enumerate((args.agent_a, args.agent_b)):
            try:
                agents.append(make_agent(spec, seed=args.seed + k))
            except SpecError as e:
                raise CommandError(str(e)) from None
        with tqdm(total=games, desc="games", unit="game", disable=None, leave=False) as bar:

            def progress(_: GameRecord) -> None:
                bar.update()

            result = play_match(
                agents[0],
                agents[1],
                maps,
                games,
                concurrency=args.concurrency,
                on_game=progress,
            )
    finally:
        for agent in agents:
            agent.close()
    if args.save_replay:
        from tron.replay import ReplayError, save_match_replays

        try:
            save_match_replays(
                args.save_replay, result.records, maps, result.agents, seed=args.seed
            )
        except (OSError, ReplayError) as e:
            raise CommandError(f"cannot write the replay {args.save_replay}: {e}") from None
    if args.json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_table(result))
    return 0


def _table(result: MatchResult) -> str:
    """The readable result: one row per map, then the totals and A's score."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # games, A, B, draws, turns
    for r in result.records:
        row = rows[r.map]
        row[0] += 1
        row[1 + (2 if r.winner is None else r.winner)] += 1
        row[4] += r.turns
    a, b = result.agents
    lines = [f"A = {a}", f"B = {b}", ""]
    width = max([len("map"), len("total"), *(len(m) for m in rows)])
    header = (
        f"{'map':<{width}}  {'games':>5}  {'A wins':>6}  {'B wins':>6}  {'draws':>5}  {'turns':>6}"
    )
    lines += [header, "-" * len(header)]
    for name, (n, wa, wb, d, turns) in rows.items():
        lines.append(f"{name:<{width}}  {n:>5}  {wa:>6}  {wb:>6}  {d:>5}  {turns / n:>6.1f}")
    lines.append("-" * len(header))
    wa, wb = result.wins
    mean_turns = sum(r.turns for r in result.records) / result.games
    lines.append(
        f"{'total':<{width}}  {result.games:>5}  {wa:>6}  {wb:>6}  {result.draws:>5}  "
        f"{mean_turns:>6.1f}"
    )
    lines.append("")
    lines.append(f"score of A: {100 * result.score(0):.1f} %  (win 1, draw 1/2)")
    forfeits = [r for r in result.records if "forfeit" in r.causes]
    for r in forfeits:
        lines.append(f"game {r.index} on {r.map}: {r.reason}")
    return "\n".join(lines) + "\n"
