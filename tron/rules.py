"""The batched Tron rules engine (Google AI Challenge 2010 rules, 2 to 4 players).

One engine steps B games at once as numpy arrays; a single game is a batch of one. Every other
part of the project (environments, agents, tournaments, the front end) steps this code, so a rule is
fixed here once.

Board layout. Each game's board is stored padded: the largest map of the batch plus a one-cell wall
border, so a move off the board lands on a wall and needs no bounds check. A smaller map sits in the
top-left corner at offset (1, 1) and everything outside it is wall. Cells are ``int8``:
``WALL`` (-1) for map walls and off-board squares, ``EMPTY`` (0) for floor, and ``p + 1`` for a square
in the trail of player ``p`` (the head included: a head becomes trail as soon as the player moves on).
Heads are flat indices into the padded board.

Turn resolution, all players at once (REFERENCE.md):
  1. every head becomes a wall (it is already trail: cells hold ``p + 1`` under each head);
  2. every live player moves one square in its chosen absolute direction;
  3. a player whose destination is a wall, a trail or off the board crashes; two or more players
     moving onto the same square all crash (swapping squares is a crash for both, since each moves
     onto the other's head, which is trail);
  4. the game ends when at most one player is left; if the last players all crash on the same turn,
     the game is a draw among them.

Reversing into your own trail is a crash like any other move into a trail. The engine speaks only
absolute directions (``Direction``); ``relative_to_absolute`` maps a relative
left/straight/right action onto them for code that wants that view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tron.maps import MAX_PLAYERS, Map

WALL = -1
EMPTY = 0


class Direction(IntEnum):
    """Absolute move directions. The AI Challenge protocol digit of a direction is ``value + 1``."""

    N = 0
    E = 1
    S = 2
    W = 3

    @property
    def opposite(self) -> Direction:
        return Direction((self + 2) % 4)


# (d_row, d_col) of each Direction, indexed by its value.
DELTAS: NDArray[np.int64] = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)


class Relative(IntEnum):
    """Relative actions: turn left, keep going, turn right (relative to the current heading)."""

    LEFT = 0
    STRAIGHT = 1
    RIGHT = 2


def relative_to_absolute(
    heading: NDArray[np.integer] | int, action: NDArray[np.integer] | int
) -> NDArray[np.int8]:
    """Map relative actions onto absolute directions.

    Args:
        heading: the current absolute heading(s) as ``Direction`` values.
        action: ``Relative`` values (0 left, 1 straight, 2 right), broadcast against ``heading``.

    Returns:
        ``Direction`` values as ``int8``: ``(heading + action - 1) mod 4``.
    """
    return (
        (np.asarray(heading, dtype=np.int64) + np.asarray(action, dtype=np.int64) - 1) % 4
    ).astype(np.int8)


class Cause(IntEnum):
    """Why a player crashed (``NONE`` while alive)."""

    NONE = 0
    WALL = 1  # a map wall or off the board
    TRAIL = 2  # any trail, own or another's (reversing and swapping included)
    HEAD_ON = 3  # two or more players moved onto the same square
    FORFEIT = 4  # removed by the caller (an illegal action, a bot that timed out or crashed)


@dataclass
class StepResult:
    """What one call of ``TronBatch.step`` changed.

    Attributes:
        crashed: (B, P) bool, players that crashed this turn.
        ended: (B,) bool, games that ended this turn.
    """

    crashed: NDArray[np.bool_]
    ended: NDArray[np.bool_]


class TronBatch:
    """B Tron games stepped together.

    All games in a batch have the same number of players; they may be on different maps (of any
    sizes). State arrays are public and updated in place by ``reset`` and ``step``.

    Attributes:
        cells: (B, Hp, Wp) int8 padded boards (``WALL``, ``EMPTY`` or ``player + 1``).
        heads: (B, P) int64 flat indices of the heads into a padded board.
        alive: (B, P) bool.
        done: (B,) bool, the game is over.
        winner: (B,) int8, the winning player, or -1 for a draw or a game still running.
        turn: (B,) int32, turns played.
        crash_turn: (B, P) int32, the turn on which each player crashed (-1 while alive).
        cause: (B, P) int8 ``Cause`` of each crash.
        last_move: (B, P) int8, the last ``Direction`` each player moved (-1 before the first move).
        map_index: (B,) int64, which of ``maps`` each game is played on.
    """

    def __init__(
        self, maps: Sequence[Map], batch_size: int, *, n_players: int | None = None
    ) -> None:
        """Create a batch; every game starts on ``maps[0]`` until ``reset`` says otherwise.

        Args:
            maps: the maps games can be played on (each with the same number of start squares,
                or at least ``n_players`` of them).
            batch_size: B, the number of games.
            n_players: players per game (2..4); defaults to the maps' number of starts.
        """
        if not maps:
            raise ValueError("TronBatch needs at least one map")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = n_players if n_players is not None else len(maps[0].starts)
        if not 2 <= n <= MAX_PLAYERS:
            raise ValueError(f"n_players must be 2..{MAX_PLAYERS}, got {n}")
        for m in maps:
            if len(m.starts) < n:
                raise ValueError(
                    f"map {m.name!r} has {len(m.starts)} start squares, need {n} for {n} players"
                )
        self.maps = list(maps)
        self.n_players = n
        self.batch_size = batch_size
        self.height = max(m.height for m in maps) + 2
        self.width = max(m.width for m in maps) + 2
        # Flat-index offset of each Direction on the padded board.
        self.offsets: NDArray[np.int64] = DELTAS[:, 0] * self.width + DELTAS[:, 1]

        n_maps = len(maps)
        self._templates = np.full((n_maps, self.height, self.width), WALL, dtype=np.int8)
        self._start_heads = np.zeros((n_maps, n), dtype=np.int64)
        for i, m in enumerate(maps):
            self._templates[i, 1 : m.height + 1, 1 : m.width + 1] = np.where(m.walls, WALL, EMPTY)
            for p, (r, c) in enumerate(m.starts[:n]):
                self._templates[i, r + 1, c + 1] = p + 1
                self._start_heads[i, p] = (r + 1) * self.width + (c + 1)

        b = batch_size
        self.cells = np.empty((b, self.height, self.width), dtype=np.int8)
        self.heads = np.zeros((b, n), dtype=np.int64)
        self.alive = np.zeros((b, n), dtype=bool)
        self.done = np.zeros(b, dtype=bool)
        self.winner = np.full(b, -1, dtype=np.int8)
        self.turn = np.zeros(b, dtype=np.int32)
        self.crash_turn = np.full((b, n), -1, dtype=np.int32)
        self.cause = np.zeros((b, n), dtype=np.int8)
        self.last_move = np.full((b, n), -1, dtype=np.int8)
        self.map_index = np.zeros(b, dtype=np.int64)
        self._rows = np.arange(b)[:, None]
        # For step: each game's offset into the flattened cells, each player's trail value, and
        # the pairs of players that can meet head-on.
        self._flat_base = self._rows * (self.height * self.width)
        self._trail_values = np.tile(np.arange(1, n + 1, dtype=np.int8), (b, 1))
        self._pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(
        self,
        games: NDArray[np.integer] | None = None,
        map_index: NDArray[np.integer] | int | None = None,
    ) -> None:
        """Start new games.

        Args:
            games: indices of the games to reset, or a (B,) bool mask of them (default: all).
            map_index: the map of each reset game, an index into ``maps`` (scalar or one per game);
                default: keep each game's current map.
        """
        if games is None:
            idx = np.arange(self.batch_size)
        else:
            g = np.asarray(games)
            # A mask (``reset(batch.done)``) must not be read as the indices 0 and 1.
            idx = np.flatnonzero(g) if g.dtype == np.bool_ else g.astype(np.int64, copy=False)
        if idx.size == 0:
            return
        if map_index is not None:
            mi = np.broadcast_to(np.asarray(map_index, dtype=np.int64), idx.shape)
            if mi.size and (mi.min() < 0 or mi.max() >= len(self.maps)):
                raise ValueError(f"map_index out of range 0..{len(self.maps) - 1}")
            self.map_index[idx] = mi
        mi = self.map_index[idx]
        self.cells[idx] = self._templates[mi]
        self.heads[idx] = self._start_heads[mi]
        self.alive[idx] = True
        self.done[idx] = False
        self.winner[idx] = -1
        self.turn[idx] = 0
        self.crash_turn[idx] = -1
        self.cause[idx] = Cause.NONE
        self.last_move[idx] = -1

    def step(
        self, actions: NDArray[np.integer], *, forfeit: NDArray[np.bool_] | None = None
    ) -> StepResult:
        """Play one turn in every running game.

        Args:
            actions: (B, P) ``Direction`` values. Entries of dead players and finished games are
                ignored. Values outside 0..3 raise ``ValueError`` for live players.
            forfeit: optional (B, P) bool, live players removed this turn without moving (a bot that
                broke the protocol, an illegal action the caller chose to punish). They count as
                crashed this turn (``Cause.FORFEIT``).

        Returns:
            The players that crashed and the games that ended this turn. Finished games are left
            unchanged (reset them to play again).
        """
        a = np.asarray(actions)
        if a.shape != self.heads.shape:
            raise ValueError(f"actions must have shape (B, P) = {self.heads.shape}, got {a.shape}")
        if a.dtype.kind not in "iu":
            # A float cast to int would turn NaN or 1.7 silently into some direction.
            raise ValueError(
                f"actions must be integer Direction values 0..3 (N, E, S, W), got dtype {a.dtype}"
            )
        running = ~self.done
        moving = self.alive & self._per_player(running)
        if forfeit is not None:
            gave_up = np.asarray(forfeit, dtype=bool) & moving
            moving = moving & ~gave_up
        else:
            gave_up = None
        # Few whole-batch numpy calls per turn: at small batch sizes their fixed cost is the time
        # (hence also count_nonzero, several times cheaper than any() on small arrays). At large
        # ones, no broadcasting or reductions along the short player axis: numpy runs those
        # 2-4 elements at a time, 10-20x slower than whole rows.
        a3 = a & 3
        bad = moving & (a3 != a)
        if np.count_nonzero(bad):
            g, p = np.argwhere(bad)[0]
            raise ValueError(
                f"illegal action {int(a[g, p])} for player {p} in game {g}: use a Direction 0..3 (N, E, S, W)"
            )
        dest = self.heads + np.take(self.offsets, a3)
        flat_dest = self._flat_base + dest
        target = np.take(self.cells, flat_dest)
        crash_wall = moving & (target == WALL)
        crash_trail = moving & (target > 0)
        crashed = crash_wall | crash_trail
        head_on = None
        for i, j in self._pairs:
            same = moving[:, i] & moving[:, j] & (dest[:, i] == dest[:, j])
            if np.count_nonzero(same):
                if head_on is None:
                    head_on = np.zeros_like(moving)
                head_on[:, i] |= same
                head_on[:, j] |= same
        if head_on is not None:
            # A head-on collision on a free square is its own cause; into a wall it is still a
            # wall crash.
            head_on &= ~crashed
            crashed |= head_on
        if gave_up is not None:
            crashed |= gave_up
        survivors = moving & ~crashed

        # Move the survivors: their destination becomes their trail, they take their new heads.
        self.cells.reshape(-1)[flat_dest[survivors]] = self._trail_values[survivors]
        np.copyto(self.heads, dest, where=survivors)
        np.copyto(self.last_move, a3, where=survivors, casting="unsafe")

        turn = self.turn
        turn += running
        if np.count_nonzero(crashed):
            cause = crash_wall.view(np.int8) * np.int8(Cause.WALL)
            cause += crash_trail.view(np.int8) * np.int8(Cause.TRAIL)
            if head_on is not None:
                cause[head_on] = Cause.HEAD_ON
            if gave_up is not None:
                cause[gave_up] = Cause.FORFEIT
            np.copyto(self.cause, cause, where=crashed)
            np.copyto(self.crash_turn, self._per_player(turn), where=crashed)
            self.alive &= ~crashed
        # Players alive per game, summed column by column.
        alive8 = self.alive.view(np.uint8)
        n_alive = alive8[:, 0].copy()
        for p in range(1, self.n_players):
            n_alive += alive8[:, p]
        ended = running & (n_alive <= 1)
        if np.count_nonzero(ended):
            self.done |= ended
            one_left = np.flatnonzero(ended & (n_alive == 1))
            self.winner[one_left] = np.argmax(self.alive[one_left], axis=1)
        return StepResult(crashed=crashed, ended=ended)

    def _per_player(self, x: NDArray[Any]) -> NDArray[Any]:
        """A (B,) array repeated for every player, (B, P), without broadcasting along players."""
        return np.repeat(x, self.n_players).reshape(self.batch_size, self.n_players)

    # ----------------------------------------------------------------- views

    def head_positions(self) -> NDArray[np.int64]:
        """(B, P, 2) (row, col) of every head in map coordinates (the padding removed)."""
        rc = np.stack(np.divmod(self.heads, self.width), axis=-1)
        return rc - 1

    def board(self, game: int) -> NDArray[np.int8]:
        """One game's board in map coordinates: (H, W) int8 of ``WALL``, ``EMPTY``, ``player + 1``."""
        m = self.maps[int(self.map_index[game])]
        return self.cells[game, 1 : m.height + 1, 1 : m.width + 1].copy()

    def map_of(self, game: int) -> Map:
        """The map game ``game`` is played on."""
        return self.maps[int(self.map_index[game])]

    def outcome(self, game: int) -> list[float]:
        """Scores of a finished game for each player: 1 win, 0.5 draw (shared), 0 loss.

        In a draw among several players, the players who crashed on the last turn share it; players
        who crashed earlier score 0.
        """
        if not self.done[game]:
            raise ValueError(f"game {game} is still running")
        w = int(self.winner[game])
        if w >= 0:
            return [1.0 if p == w else 0.0 for p in range(self.n_players)]
        last = self.crash_turn[game].max()
        return [0.5 if self.crash_turn[game, p] == last else 0.0 for p in range(self.n_players)]
