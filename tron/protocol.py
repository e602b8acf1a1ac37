"""The Google AI Challenge 2010 bot protocol: positions as text, moves as digits.

Each turn the engine writes the whole board to the bot's standard input, from the bot's point of
view, in the map format (``tron.maps``): the size line ``W H``, then ``H`` rows of ``W``
characters, ``#`` for walls *and* trails, a space for floor, ``1`` for the bot's own head and ``2``
for the opponent's. The bot answers one line holding a single digit, ``value + 1`` of a
``Direction``: 1 north, 2 east, 3 south, 4 west.

Extension for 3 and 4 players (the 2010 contest had only two): the other live players' heads are
``2``, ``3``, ``4`` in seat order starting after the bot's own seat; the head of a player who is out
is a ``#``.

``format_position`` writes a position, ``parse_move`` reads an answer, and ``PositionTracker`` does
the other side's job: it reads the positions a bot receives and keeps an engine state
(``TronBatch``) of the game in which the bot is player 0, so an agent can play through the
protocol exactly as it plays in-process.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tron.maps import Map
from tron.rules import DELTAS, EMPTY, Direction, TronBatch


class ProtocolError(ValueError):
    """Text that does not follow the protocol; the message says what was expected."""


def format_position(batch: TronBatch, game: int, seat: int) -> str:
    """The position of ``game`` as the player in ``seat`` sees it (it is ``1``)."""
    board = batch.board(game)
    grid = np.where(board == EMPTY, " ", "#")
    rc = batch.head_positions()[game]
    n = batch.n_players
    for k in range(n):
        p = (seat + k) % n
        if k == 0 or batch.alive[game, p]:
            r, c = rc[p]
            grid[r, c] = str(k + 1) if batch.alive[game, p] else "#"
    height, width = board.shape
    rows = "".join("".join(row) + "\n" for row in grid)
    return f"{width} {height}\n{rows}"


def parse_move(line: str) -> Direction:
    """The ``Direction`` of a bot's answer: one digit 1-4, surrounding whitespace allowed.

    Raises:
        ProtocolError: anything else.
    """
    text = line.strip()
    if len(text) != 1 or text not in "1234":
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ProtocolError(f"expected a move 1-4, got {shown!r}")
    return Direction(int(text) - 1)


def format_move(move: Direction | int) -> str:
    """The answer line for ``move`` (without the newline)."""
    d = int(move)
    if not 0 <= d <= 3:
        raise ValueError(f"not a Direction: {d}")
    return str(d + 1)


def parse_position(text: str) -> tuple[NDArray[np.bool_], dict[int, tuple[int, int]]]:
    """Read one position.

    Returns:
        ``(blocked, heads)``: (H, W) bool, True for ``#`` squares, and the (row, col) of each head
        by its digit (1 is always present).

    Raises:
        ProtocolError: the text is not a position.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln.removesuffix("\r") for ln in lines]
    if not lines:
        raise ProtocolError("expected a position, got nothing")
    size = lines[0].split()
    if len(size) != 2 or not all(s.isdigit() and int(s) > 0 for s in size):
        raise ProtocolError(f"expected the size line 'W H', got {lines[0]!r}")
    width, height = int(size[0]), int(size[1])
    if len(lines) != height + 1:
        raise ProtocolError(f"the size line says {height} rows, got {len(lines) - 1}")
    blocked = np.zeros((height, width), dtype=bool)
    heads: dict[int, tuple[int, int]] = {}
    for r, row in enumerate(lines[1:]):
        if len(row) != width:
            raise ProtocolError(f"row {r + 1} has {len(row)} characters, expected {width}")
        for c, ch in enumerate(row):
            if ch == "#":
                blocked[r, c] = True
            elif ch in "1234":
                if int(ch) in heads:
                    raise ProtocolError(f"head {ch!r} appears twice")
                heads[int(ch)] = (r, c)
            elif ch != " ":
                raise ProtocolError(f"unknown character {ch!r} in row {r + 1} (use '#', ' ', 1-4)")
    if 1 not in heads:
        raise ProtocolError("no head '1' (the bot's own) in the position")
    return blocked, heads


class PositionTracker:
    """Follows a game through the positions a bot receives, as an engine state.

    ``batch`` is a one-game ``TronBatch`` in which the bot is player 0 and digit ``k`` is player
    ``k - 1``. When a position continues the previous one (every head one step further, the old
    heads turned to trail, nothing else changed) the batch is stepped with those moves, so trails
    keep their owners and ``turn`` and ``last_move`` are right; otherwise the position starts a new
    game whose ``#`` squares are all walls.
    """

    def __init__(self) -> None:
        self.batch: TronBatch | None = None

    def update(self, text: str) -> bool:
        """Take the next position; True if it starts a new game.

        Raises:
            ProtocolError: the text is not a position, or it has fewer than two heads at the start
                of a game.
        """
        blocked, heads = parse_position(text)
        if self.batch is not None and self._continue(blocked, heads):
            return False
        if len(heads) < 2:
            raise ProtocolError("a new game needs at least two heads ('1' and '2')")
        digits = sorted(heads)
        m = Map("protocol", blocked, tuple(heads[d] for d in digits))
        self.batch = TronBatch([m], 1)
        self._digits = digits
        return True

    def _continue(self, blocked: NDArray[np.bool_], heads: dict[int, tuple[int, int]]) -> bool:
        b = self.batch
        assert b is not None
        board = b.board(0)
        if board.shape != blocked.shape or not set(heads) <= set(self._digits):
            return False
        rc = b.head_positions()[0]
        moves = np.zeros((1, b.n_players), dtype=np.int64)
        forfeit = np.zeros((1, b.n_players), dtype=bool)
        for p, d in enumerate(self._digits):
            if not b.alive[0, p]:
                continue
            if d not in heads:
                forfeit[0, p] = True  # out of the game since the last position
                continue
            step = np.asarray(heads[d]) - rc[p]
            match = np.flatnonzero((step == DELTAS).all(axis=1))
            if match.size == 0:
                return False
            moves[0, p] = match[0]
        after = board != EMPTY
        for p in range(b.n_players):
            if b.alive[0, p] and not forfeit[0, p]:
                r, c = rc[p] + DELTAS[moves[0, p]]
                if not (0 <= r < board.shape[0] and 0 <= c < board.shape[1]) or after[r, c]:
                    return False
                after[r, c] = True
        expected = blocked.copy()
        for r, c in heads.values():
            expected[r, c] = True
        if not np.array_equal(after, expected):
            return False
        b.step(moves, forfeit=forfeit)
        alive_digits = {d for p, d in enumerate(self._digits) if b.alive[0, p]}
        return alive_digits == set(heads) and not b.done[0]
