"""Tron maps: the AI Challenge 2010 text format, the built-in set and a random map generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class Map:
    """A Tron map.

    Attributes:
        name: a short identifier (the built-in maps are looked up by it).
        walls: (H, W) bool, True where a square is a wall. Squares off the board count as walls.
        starts: the (row, col) start square of each player, player 0 first.
    """

    name: str
    walls: NDArray[np.bool_]
    starts: tuple[tuple[int, int], ...]

    @property
    def height(self) -> int:
        return int(self.walls.shape[0])

    @property
    def width(self) -> int:
        return int(self.walls.shape[1])

    @property
    def n_players(self) -> int:
        return len(self.starts)
