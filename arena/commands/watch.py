"""``tron watch``: spectate agents playing each other in a window (or the terminal)."""

from __future__ import annotations

import argparse
from typing import Any

from arena.commands.play import UI_CHOICES

#: Seconds the result of a round stays up before the next one starts.
PAUSE_BETWEEN_ROUNDS = 3.0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "watch",
        help="watch agents play each other",
        description=(
            "Watch agents (specs such as minimax:level=3, greedy, cmd:./bot) play round after "
            "round, 2 to 4 of them. Space pauses, R restarts the round, +/- change the speed, "
            "Esc quits."
        ),
    )
    p.add_argument("agents", nargs="+", metavar="SPEC", help="2 to 4 agent specs, one per seat")
    p.add_argument("--map", metavar="NAME|FILE", default=None, help="a built-in map or a map file")
    p.add_argument(
        "--speed", type=float, default=10.0, metavar="TICKS_PER_S", help="turns per second (10)"
    )
    p.add_argument(
        "--countdown", type=float, default=3.0, metavar="S", help="seconds before each round (3)"
    )
    p.add_argument("--rounds", type=int, default=None, help="stop after this many rounds")
    p.add_argument("--save-replay", metavar="FILE", help="write every round to a replay file")
    p.add_argument("--seed", type=int, default=None, help="seed of the agents")
    p.add_argument("--ui", choices=UI_CHOICES, default="auto", help="window, terminal or auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arena.cli import CommandError
    from arena.play import run_game_command

    if not 2 <= len(args.agents) <= 4:
        raise CommandError(f"watch needs 2 to 4 agents, got {len(args.agents)}")
    return run_game_command(
        args.agents,
        map_spec=args.map,
        players=len(args.agents),
        speed=args.speed,
        countdown=args.countdown,
        rounds=args.rounds,
        seed=args.seed,
        save_replay=args.save_replay,
        ui=args.ui,
        title="Tron - watch",
        auto_next=PAUSE_BETWEEN_ROUNDS,
    )
