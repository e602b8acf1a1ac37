"""``tron maps``: list the built-in maps."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "maps",
        help="list the built-in maps",
        description="List the built-in maps (name, size, players, free squares).",
    )
    p.add_argument("--players", type=int, choices=(2, 3, 4), help="only maps for this many players")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tron.maps import builtin_maps

    maps = builtin_maps(args.players)
    width = max(len("name"), *(len(m.name) for m in maps))
    sys.stdout.write(f"{'name':<{width}}  {'size':>7}  {'players':>7}  {'free':>5}\n")
    for m in maps:
        size = f"{m.width}x{m.height}"
        free = int((~m.walls).sum()) - m.n_players
        sys.stdout.write(f"{m.name:<{width}}  {size:>7}  {m.n_players:>7}  {free:>5}\n")
    return 0
