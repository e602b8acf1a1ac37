"""Text rendering (``render_mode="ansi"``): the board as characters, one line per row.

======  ============================================================
char    square
======  ============================================================
``#``   wall
``.``   empty floor
``a``   trail of player 1 (``b``, ``c``, ``d`` for 2-4)
``1``   head of live player 1 (``2``, ``3``, ``4``)
``X``   a crashed player's last square (it crashed moving out of it)
======  ============================================================

Players are numbered from 1 as in the AI Challenge map format (engine seat ``p`` is player
``p + 1``). Below the board a status line gives the turn, each player's state and the result.
"""

from __future__ import annotations

import numpy as np

from tron.rules import WALL, Cause, TronBatch

_TRAIL_CHARS = "abcd"


def render_text(batch: TronBatch, game: int) -> str:
    """Game ``game`` of ``batch`` as text (the board, then a status line), ending in a newline."""
    board = batch.board(game)
    chars = np.full(board.shape, ".", dtype="<U1")
    chars[board == WALL] = "#"
    for p in range(batch.n_players):
        chars[board == p + 1] = _TRAIL_CHARS[p]
    heads = batch.head_positions()[game]
    for p in range(batch.n_players):
        r, c = heads[p]
        chars[r, c] = str(p + 1) if batch.alive[game, p] else "X"
    rows = ["".join(row) for row in chars]
    return "\n".join([*rows, _status(batch, game)]) + "\n"


def _status(batch: TronBatch, game: int) -> str:
    parts = [f"turn {int(batch.turn[game])}"]
    for p in range(batch.n_players):
        state = (
            "alive"
            if batch.alive[game, p]
            else f"crashed ({Cause(batch.cause[game, p]).name.lower()})"
        )
        parts.append(f"{p + 1}: {state}")
    if batch.done[game]:
        w = int(batch.winner[game])
        parts.append(f"player {w + 1} wins" if w >= 0 else "draw")
    return "  ".join(parts)


class TextViewer:
    """The ``"ansi"`` viewer: ``render`` returns ``render_text``'s string."""

    def render(self, batch: TronBatch, game: int) -> str:
        return render_text(batch, game)

    def close(self) -> None:
        """Nothing to release."""
