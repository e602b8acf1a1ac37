"""The AI Challenge bot protocol: positions from a bot's point of view, moves, and tracking."""

from __future__ import annotations

import numpy as np
import pytest

from tron.maps import get_map, parse_map
from tron.protocol import (
    PositionTracker,
    ProtocolError,
    format_move,
    format_position,
    parse_move,
    parse_position,
)
from tron.rules import Direction, TronBatch

N, E, S, W = Direction.N, Direction.E, Direction.S, Direction.W


def test_format_position__the_bot_is_always_1_and_trails_are_walls() -> None:
    batch = TronBatch([parse_map("5 3\n1    \n     \n#   2\n")], 1)
    assert format_position(batch, 0, 0) == "5 3\n1    \n     \n#   2\n"
    assert format_position(batch, 0, 1) == "5 3\n2    \n     \n#   1\n"
    batch.step(np.array([[E, N]]))
    assert format_position(batch, 0, 0) == "5 3\n#1   \n    2\n#   #\n"
    assert format_position(batch, 0, 1) == "5 3\n#2   \n    1\n#   #\n"


def test_format_position__three_players_numbered_from_the_bot_on() -> None:
    batch = TronBatch([parse_map("5 2\n1 2 3\n     \n")], 1)
    assert format_position(batch, 0, 0) == "5 2\n1 2 3\n     \n"
    assert format_position(batch, 0, 1) == "5 2\n3 1 2\n     \n"
    assert format_position(batch, 0, 2) == "5 2\n2 3 1\n     \n"
    # player 1 drives off the board; the head of a player who is out is a wall
    batch.step(np.array([[S, N, W]]))
    assert format_position(batch, 0, 2) == "5 2\n# #1#\n2    \n"


@pytest.mark.parametrize(("line", "move"), [("1\n", N), ("2", E), (" 3 \r\n", S), ("4\n", W)])
def test_parse_move__digits(line: str, move: Direction) -> None:
    assert parse_move(line) == move
    assert parse_move(format_move(move)) == move


@pytest.mark.parametrize("line", ["", "\n", "0", "5", "12", "N", "1 2", "x" * 100])
def test_parse_move__anything_else_is_refused(line: str) -> None:
    with pytest.raises(ProtocolError, match="expected a move 1-4"):
        parse_move(line)


def test_parse_position__round_trip_and_errors() -> None:
    text = format_position(TronBatch([get_map("pillars")], 1), 0, 1)
    blocked, heads = parse_position(text)
    m = get_map("pillars")
    assert np.array_equal(blocked, m.walls)
    assert heads == {1: m.starts[1], 2: m.starts[0]}
    for bad, message in [
        ("3\n   \n", "size line"),
        ("3 2\n1 2\n", "says 2 rows"),
        ("3 1\n1 \n", "row 1 has 2 characters"),
        ("3 1\n1x2\n", "unknown character 'x'"),
        ("3 1\n 2 \n", "no head '1'"),
        ("3 1\n121\n", "appears twice"),
    ]:
        with pytest.raises(ProtocolError, match=message):
            parse_position(bad)


def test_position_tracker__rebuilds_the_engine_state_of_a_game() -> None:
    """Follow a real game through player 1's eyes: the tracker's board has player 1 as player 0
    and the trails' owners, turn and last moves all match the engine's."""
    game = TronBatch([get_map("room10")], 1)
    tracker = PositionTracker()
    moves = [(E, W), (E, N), (S, N), (S, W), (W, W)]
    for turn, (m0, m1) in enumerate(moves):
        assert tracker.update(format_position(game, 0, 1)) == (turn == 0)
        mirror = tracker.batch
        assert mirror is not None
        swapped = np.select([game.cells[0] == 1, game.cells[0] == 2], [2, 1], game.cells[0])
        assert np.array_equal(mirror.cells[0], swapped)
        assert mirror.turn[0] == game.turn[0]
        assert mirror.last_move[0].tolist() == game.last_move[0, ::-1].tolist()
        game.step(np.array([[m0, m1]]))
    # a fresh start is a new game
    assert tracker.update(format_position(TronBatch([get_map("room10")], 1), 0, 0))


def test_position_tracker__a_position_that_does_not_follow_starts_a_new_game() -> None:
    tracker = PositionTracker()
    assert tracker.update("4 1\n1  2\n")
    assert not tracker.update("4 1\n#12#\n")
    assert tracker.update("4 1\n1  2\n")  # back to the start: a new game
    assert tracker.update("4 1\n1 2#\n")  # player 1 did not move: not a continuation
    with pytest.raises(ProtocolError, match="at least two heads"):
        tracker.update("4 1\n1   \n")
