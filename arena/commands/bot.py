"""``tron bot SPEC``: play one of our agents through the AI Challenge protocol on stdin/stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from arena.cli import CommandError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bot",
        help="speak the AI Challenge bot protocol on stdin/stdout",
        description=(
            "Read positions (the map from this bot's point of view, it is '1') from standard input "
            "and answer each with a move digit 1-4 (N, E, S, W) on standard output, until end of "
            "input. Any agent spec works: tron bot minimax:level=4."
        ),
    )
    p.add_argument("spec", metavar="SPEC", help="agent spec (default level-5 minimax: minimax)")
    p.set_defaults(func=run)


def _read_position(stream: TextIO) -> str | None:
    """The next position's text, or None at end of input (blank lines between positions skipped)."""
    line = stream.readline()
    while line and not line.strip():
        line = stream.readline()
    if not line:
        return None
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise CommandError(f"expected the size line 'W H', got {line.rstrip()!r}")
    rows = [stream.readline() for _ in range(int(parts[1]))]
    if not all(rows):
        raise CommandError("input ended in the middle of a position")
    return line + "".join(rows)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from agents.base import FORFEIT
    from agents.registry import SpecError, make_agent
    from tron.protocol import PositionTracker, ProtocolError, format_move

    try:
        agent = make_agent(args.spec)
    except SpecError as e:
        raise CommandError(str(e)) from None
    tracker = PositionTracker()
    game = np.zeros(1, dtype=np.intp)
    try:
        while (text := _read_position(sys.stdin)) is not None:
            try:
                new_game = tracker.update(text)
            except ProtocolError as e:
                raise CommandError(str(e)) from None
            assert tracker.batch is not None
            if new_game:
                agent.reset(game)
            move = int(agent.act(tracker.batch, 0, game)[0])
            if move == FORFEIT:
                raise CommandError(f"agent {agent.name!r} gave up: {agent.forfeit_reason(0)}")
            sys.stdout.write(format_move(move) + "\n")
            sys.stdout.flush()
    except BrokenPipeError:
        # The engine stopped listening (the game is over): not an error.
        return 0
    finally:
        agent.close()
    return 0
