"""``tron play``: play Tron against the agents in a window (or the terminal without a display)."""

from __future__ import annotations

import argparse
from typing import Any

UI_CHOICES = ("auto", "window", "terminal")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "play",
        help="play Tron against the agents in a window",
        description=(
            "Play Tron at the keyboard (arrows or WASD) against an agent; with --opponent human "
            "two people share the keyboard (WASD and arrows). Agents fill the other seats of a "
            "3- or 4-player game. Space pauses, R restarts the round, +/- change the speed, Esc "
            "quits. Without a display it falls back to the terminal."
        ),
    )
    p.add_argument(
        "--opponent",
        metavar="SPEC",
        default=None,
        help="agent spec of the opponent (e.g. minimax:level=3, greedy, cmd:./bot), or 'human'; "
        "default: the strongest agent available (the shipped ACKTR agent, else minimax:level=5 "
        "with its time a move fitted to --speed)",
    )
    p.add_argument("--map", metavar="NAME|FILE", default=None, help="a built-in map or a map file")
    p.add_argument(
        "--players",
        type=int,
        default=None,
        metavar="N",
        help="players, 2-4 (default: 2, or as many as the map has starts)",
    )
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
    from arena.play import default_opponent, run_game_command

    if not args.speed > 0:
        raise CommandError(
            f"--speed must be a positive number of ticks per second, got {args.speed}"
        )
    opponent = args.opponent or default_opponent(args.speed)
    players = args.players
    if players is None and args.map is not None:
        from tron.maps import MapError, load_map

        try:
            players = load_map(args.map).n_players
        except MapError as e:
            raise CommandError(str(e)) from None
    n = players or 2
    # Seat 0 is you; the opponent takes seat 1; agents fill the rest (the strongest one when the
    # opponent is a second human).
    filler = default_opponent(args.speed) if opponent.strip() == "human" else opponent
    specs = ["human", opponent, *([filler] * max(0, n - 2))]
    return run_game_command(
        specs[: max(2, n)],
        map_spec=args.map,
        players=players,
        speed=args.speed,
        countdown=args.countdown,
        rounds=args.rounds,
        seed=args.seed,
        save_replay=args.save_replay,
        ui=args.ui,
        title="Tron",
        auto_next=None,
    )
