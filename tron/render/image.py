"""Image rendering (``render_mode="rgb_array"``) in numpy: the palette and layout every graphical
viewer shares (see ``tron.render``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tron.render import CRASH, FLOOR, HEAD_COLOURS, TRAIL_COLOURS, WALL
from tron.rules import TronBatch

# Colour of each cell value + 1: index 0 is WALL (-1), 1 floor (0), 2.. the trails of players 0..3.
_CELL_COLOURS = np.array([WALL, FLOOR, *TRAIL_COLOURS], dtype=np.uint8)
_HEAD_COLOURS = np.array(HEAD_COLOURS, dtype=np.uint8)
_CRASH = np.array(CRASH, dtype=np.uint8)


def square_colours(batch: TronBatch, game: int) -> NDArray[np.uint8]:
    """(H, W, 3) uint8, the colour of every square of game ``game`` (crash marks not included)."""
    colours = _CELL_COLOURS[batch.board(game).astype(np.int64) + 1]
    heads = batch.head_positions()[game]
    colours[heads[:, 0], heads[:, 1]] = _HEAD_COLOURS[: batch.n_players]
    return colours


def crash_mask(cell_size: int) -> NDArray[np.bool_]:
    """(cell, cell) bool, the X drawn over a crashed player's square (both diagonals)."""
    i = np.arange(cell_size)
    d = np.abs(i[:, None] - i[None, :])
    a = np.abs(i[:, None] + i[None, :] - (cell_size - 1))
    width = max(1, cell_size // 8)
    return (d < width) | (a < width)


def render_rgb(batch: TronBatch, game: int, cell_size: int = 16) -> NDArray[np.uint8]:
    """Game ``game`` of ``batch`` as an ``(H * cell_size, W * cell_size, 3)`` uint8 image."""
    if cell_size < 1:
        raise ValueError(f"cell_size must be >= 1, got {cell_size}")
    frame = np.repeat(np.repeat(square_colours(batch, game), cell_size, 0), cell_size, 1)
    heads = batch.head_positions()[game]
    mark = crash_mask(cell_size)
    for p in np.flatnonzero(~batch.alive[game]):
        r, c = heads[p]
        square = frame[r * cell_size : (r + 1) * cell_size, c * cell_size : (c + 1) * cell_size]
        square[mark] = _CRASH
    return frame


class ImageViewer:
    """The ``"rgb_array"`` viewer: ``render`` returns ``render_rgb``'s frame."""

    def __init__(self, cell_size: int = 16) -> None:
        if cell_size < 1:
            raise ValueError(f"cell_size must be >= 1, got {cell_size}")
        self.cell_size = cell_size

    def render(self, batch: TronBatch, game: int) -> NDArray[np.uint8]:
        return render_rgb(batch, game, self.cell_size)

    def close(self) -> None:
        """Nothing to release."""
