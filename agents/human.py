"""A human at the keyboard, as an ``Agent``.

The play loop (``arena.play``) turns key presses into ``HumanAgent.press(direction)`` calls; the
agent answers ``act`` from that buffer once per game tick. The buffer is what makes quick play feel
right:

* turn buffering: two presses inside one tick are both honoured, one per tick, in the order pressed
  (up then left while heading east turns north on this tick and west on the next);
* a press that would reverse into your own trail is ignored, and so is a press of the direction you
  are already heading (it would waste a tick of the buffer), so a frantic double press never kills
  you by itself.

Before its first move a bike has no heading; it starts in ``start_heading``'s direction (the longest
free run, towards the centre on ties), which the window shows as an arrow during the countdown.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from agents.base import Agent
from tron.rules import EMPTY, Direction, TronBatch

#: Presses kept ahead of the game; more than three queued turns is never what a player meant.
BUFFER_CAPACITY = 3


def start_heading(batch: TronBatch, game: int, seat: int) -> Direction:
    """The direction a bike sets off in when its player has pressed nothing yet.

    The direction with the longest run of free squares straight ahead, and of those the one whose
    first step lands closest to the map's centre, so symmetric maps give symmetric starts.
    """
    width = batch.width
    flat = batch.cells[game].reshape(-1)
    head = int(batch.heads[game, seat])
    m = batch.map_of(game)
    # Padded coordinates of the map centre (the map sits at offset (1, 1)).
    centre_r, centre_c = (m.height - 1) / 2 + 1, (m.width - 1) / 2 + 1
    best: tuple[int, float] | None = None
    best_dir = Direction.N
    for d in Direction:
        step = int(batch.offsets[d])
        run, pos = 0, head + step
        while flat[pos] == EMPTY:
            run += 1
            pos += step
        r, c = divmod(head + step, width)
        key = (run, -abs(r - centre_r) - abs(c - centre_c))
        if best is None or key > best:
            best, best_dir = key, d
    return best_dir


class HumanAgent(Agent):
    """One person's moves, fed by key presses.

    A human plays one game at a time: ``act`` refuses more than one game.
    """

    def __init__(self, name: str = "human") -> None:
        self.name = name
        self._pressed: deque[Direction] = deque()

    def press(self, direction: Direction) -> None:
        """Queue a turn (called by the play loop on a key press)."""
        if self._pressed and self._pressed[-1] == direction:
            return
        if len(self._pressed) < BUFFER_CAPACITY:
            self._pressed.append(direction)

    @property
    def pending(self) -> tuple[Direction, ...]:
        """The presses not yet played, oldest first."""
        return tuple(self._pressed)

    def heading(self, batch: TronBatch, game: int, seat: int) -> Direction:
        """The direction the bike moves in if no key is pressed."""
        last = int(batch.last_move[game, seat])
        return Direction(last) if last >= 0 else start_heading(batch, game, seat)

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        if len(games) > 1:
            raise ValueError(f"a human plays one game at a time, asked to play {len(games)}")
        out = np.empty(len(games), dtype=np.int8)
        for i, g in enumerate(games):
            heading = self.heading(batch, int(g), seat)
            moved = int(batch.last_move[g, seat]) >= 0
            move = heading
            while self._pressed:
                d = self._pressed.popleft()
                # Before the first move there is no trail behind the bike: any direction is fine.
                if d != heading and not (moved and d == heading.opposite):
                    move = d
                    break
            out[i] = move
        return out

    def reset(self, games: NDArray[np.intp]) -> None:
        self._pressed.clear()
