"""Observations: each player's view of the board as one categorical ``uint8`` plane.

An observation is an ``(S_h, S_w)`` array of ``uint8`` categories, one per square, seen from one
player's point of view (own versus opponents, whatever the player's seat):

====  ==================  ==========================================================
code  name                the square is
====  ==================  ==========================================================
0     ``EMPTY``           open floor
1     ``WALL``            a map wall, or outside the map (padding)
2     ``OWN_TRAIL``       the player's own trail (its crashed head included)
3     ``OPPONENT_TRAIL``  any opponent's trail (crashed opponents' heads included)
4     ``OWN_HEAD``        the player's head, while it is alive
5     ``OPPONENT_HEAD``   a live opponent's head
====  ==================  ==========================================================

Fixed size across maps. Square ``(r, c)`` of the map is ``obs[r, c]``: the map sits in the top-left
corner and everything right of and below it is ``WALL``, exactly as a wall-bordered map of the
larger size would look. ``obs_size`` defaults to the largest map of the batch (height and width
separately); pass ``obs_size=25`` (or ``(25, 25)``) to give every map up to 25x25 the same shape,
so one network plays them all. A map larger than ``obs_size`` is refused, never cropped: a crop
would hide squares the rules depend on.

For a network. Categories are cheap to store and ship; expand them to one-hot planes inside the
network, after the batch is on its device. ``planes`` does it in numpy; in torch::

    x = torch.as_tensor(obs)                                       # (N, S_h, S_w) uint8
    codes = torch.arange(N_CATEGORIES, device=x.device).view(1, -1, 1, 1)
    planes = (x.unsqueeze(1) == codes).float()                     # (N, 6, S_h, S_w)

What is left out, and why:

- Heading (the last move) is not encoded. Actions are absolute directions, and whether each of the
  four moves is safe depends only on the neighbouring squares, which the board shows. Code that
  uses the relative left/straight/right view (``tron.rules.relative_to_absolute``) reads the heading
  from ``TronBatch.last_move``.
- Territory (which squares a player reaches first) is not encoded: it costs a breadth-first search
  per player per step, about as much as the whole step; agents that want it compute it themselves.
- Opponents share one category each for trail and head, so the encoding is the same for 2, 3 and 4
  players and the network does not depend on seat numbers.

Cost. For large batches the encoding is a few whole-batch numpy passes over the engine's padded
boards and one strided copy into the output; with two players the second seat's view is the
first's with own and opponent swapped, one xor. Small calls (a single env) use a lookup table per
seat instead. ``Encoder`` keeps its scratch buffers between calls, so the hot path allocates only
small per-player arrays. Both seats of 4096 games of a 15x15 room take about half a millisecond.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from tron.rules import WALL, TronBatch

# Up to this many padded-board squares per call, one table lookup per square beats the
# whole-batch arithmetic passes, whose fixed cost is a dozen numpy calls.
_LOOKUP_MAX_SQUARES = 4096


class Category(IntEnum):
    """The square categories of an observation (see the module docstring)."""

    EMPTY = 0
    WALL = 1
    OWN_TRAIL = 2
    OPPONENT_TRAIL = 3
    OWN_HEAD = 4
    OPPONENT_HEAD = 5


#: Number of categories, the number of one-hot planes a network sees.
N_CATEGORIES = len(Category)

# Plain ints for numpy calls: an IntEnum operand sends numpy's ufuncs down a path ~6x slower.
_WALL = int(Category.WALL)
_OWN_TRAIL = int(Category.OWN_TRAIL)
_OWN_HEAD = int(Category.OWN_HEAD)
_OPPONENT_HEAD = int(Category.OPPONENT_HEAD)


def obs_shape(
    map_shapes: list[tuple[int, int]], obs_size: int | tuple[int, int] | None = None
) -> tuple[int, int]:
    """The observation shape for maps of the given ``(height, width)``.

    Args:
        map_shapes: (height, width) of every map the observation must hold.
        obs_size: a side (square observation) or ``(height, width)``; default: the largest height
            and the largest width among the maps.

    Raises:
        ValueError: ``obs_size`` is not positive or smaller than one of the maps.
    """
    need_h = max(h for h, _ in map_shapes)
    need_w = max(w for _, w in map_shapes)
    if obs_size is None:
        return need_h, need_w
    sh, sw = (obs_size, obs_size) if isinstance(obs_size, int) else tuple(obs_size)
    if sh < 1 or sw < 1:
        raise ValueError(f"obs_size must be positive, got {obs_size}")
    if sh < need_h or sw < need_w:
        raise ValueError(
            f"obs_size {sh}x{sw} (rows x cols) is smaller than the largest map, {need_h}x{need_w}:"
            f" pass obs_size >= ({need_h}, {need_w}); maps are padded with walls, never cropped"
        )
    return int(sh), int(sw)


class Encoder:
    """Encodes the games of one ``TronBatch`` into observations, reusing its scratch buffers.

    Attributes:
        batch: the games encoded.
        shape: (S_h, S_w), the shape of one observation.
    """

    def __init__(self, batch: TronBatch, obs_size: int | tuple[int, int] | None = None) -> None:
        """Prepare an encoder.

        Args:
            batch: the games to encode.
            obs_size: the observation size (see ``obs_shape``); default: the largest map of
                ``batch.maps``.
        """
        self.batch = batch
        self.shape = obs_shape([(m.height, m.width) for m in batch.maps], obs_size)
        sh, sw = self.shape
        hp, wp = batch.height, batch.width
        # Rows/cols of the padded board copied into the observation: the map area, plus the
        # board's wall border where the observation is larger than every map.
        self._rh = min(sh, hp - 1)
        self._rw = min(sw, wp - 1)
        # Flat index in the padded board -> flat index in the observation (used for heads, which
        # are always inside a map, so entries of the border are never read).
        r, c = np.divmod(np.arange(hp * wp, dtype=np.int64), wp)
        self._obs_index = (r - 1) * sw + (c - 1)
        p = batch.n_players
        # _head_code[s, q]: the trail code of player q seen by seat s; +2 turns it into a head.
        own = np.eye(p, dtype=bool)
        self._head_code = np.where(own, Category.OWN_TRAIL, Category.OPPONENT_TRAIL).astype(
            np.uint8
        )
        n = batch.batch_size
        size = hp * wp
        self._gathered = np.empty((n, hp, wp), dtype=np.int8)
        self._base = np.empty((n, size), dtype=np.uint8)
        self._mask = np.empty((n, size), dtype=np.bool_)
        self._codes = np.empty((n, size), dtype=np.uint8)
        self._swap = np.empty((n, sh, sw), dtype=np.bool_)
        self._board_size = size
        # _lut[s, u]: the code seat s sees for a cell whose int8 value, read as uint8, is u.
        self._lut = np.zeros((p, 256), dtype=np.uint8)
        self._lut[:, WALL & 0xFF] = Category.WALL
        self._lut[:, 1 : p + 1] = self._head_code
        area = sh * sw
        games_ = np.arange(n, dtype=np.int64)
        # Flat offset of game g's observation in encode's (G, S_h, S_w) output, and of game g's
        # seat s in encode_all's (G, P, S_h, S_w) output, laid out (seat, 1, game).
        self._game_offset = games_ * area
        self._seat_offset = ((games_[None, :] * p + np.arange(p)[:, None]) * area)[:, None, :]

    # ------------------------------------------------------------------ public

    def encode(
        self,
        seat: int | NDArray[np.integer],
        games: NDArray[np.integer] | None = None,
        *,
        out: NDArray[np.uint8] | None = None,
    ) -> NDArray[np.uint8]:
        """Observations of one seat per game.

        Args:
            seat: the player whose view is encoded: one seat for all games, or one per game
                (shape ``(G,)``), for example a learner whose seat changes between episodes.
            games: indices of the games to encode (default: all, in order).
            out: optional ``(G, S_h, S_w)`` uint8 array to write into.

        Returns:
            ``(G, S_h, S_w)`` uint8 categories (``out`` if given).
        """
        cells, heads, alive = self._select(games)
        g = cells.shape[0]
        out = self._check_out(out, (g, *self.shape))
        small = g * self._board_size <= _LOOKUP_MAX_SQUARES
        if isinstance(seat, int | np.integer) and g == 1:
            self._encode_one(cells[0], heads[0].tolist(), alive[0].tolist(), int(seat), out[0])
            return out
        if isinstance(seat, int | np.integer):
            s = int(seat)
            codes = self._head_code[s][:, None]
            self._write_board(self._board_codes(cells, s), out)
        else:
            seats = np.asarray(seat, dtype=np.int64)
            if seats.shape != (g,):
                raise ValueError(
                    f"seat must be an int or one per game, shape ({g},), got {seats.shape}"
                )
            codes = self._head_code[seats].T
            if small:
                self._write_board(self._lut[seats[:, None, None], self._region(cells)], out)
            else:
                self._write_board(self._seat_codes(cells, self._base_codes(cells), seats), out)
        # (P, G) layouts keep numpy's inner loops long (over games, not over the 2-4 players).
        index = self._game_offset[:g] + np.take(self._obs_index, heads.T)
        out.reshape(-1)[index] = codes + (alive.T.view(np.uint8) << 1)
        return out

    def encode_all(
        self, games: NDArray[np.integer] | None = None, *, out: NDArray[np.uint8] | None = None
    ) -> NDArray[np.uint8]:
        """Observations of every seat of every game, sharing the work between seats.

        Args:
            games: indices of the games to encode (default: all, in order).
            out: optional ``(G, P, S_h, S_w)`` uint8 array to write into.

        Returns:
            ``(G, P, S_h, S_w)`` uint8: ``out[g, s]`` is seat ``s``'s view of game ``g``.
        """
        cells, heads, alive = self._select(games)
        g, p = heads.shape
        out = self._check_out(out, (g, p, *self.shape))
        # Indices and values as (seat, player, game): numpy's inner loops run over games.
        hidx = np.take(self._obs_index, heads.T)[None, :, :]
        head_codes = self._head_code[:, :, None] + (alive.view(np.uint8) << 1).T[None]
        flat = out.reshape(-1)
        if p == 2:
            # Seat 1 sees seat 0's view with own and opponent swapped (2 <-> 3, 4 <-> 5): an xor
            # with 1 on codes >= 2, much cheaper than a second pass over the padded boards.
            self._write_board(self._board_codes(cells, 0), out[:, 0])
            flat[self._seat_offset[:1, :, :g] + hidx] = head_codes[:1]
            swap = self._swap[:g]
            np.greater_equal(out[:, 0], _OWN_TRAIL, out=swap)
            np.bitwise_xor(out[:, 0], swap.view(np.uint8), out=out[:, 1])
            return out
        if g * self._board_size <= _LOOKUP_MAX_SQUARES:
            region = self._region(cells)
            for s in range(p):
                self._write_board(self._lut[s][region], out[:, s])
        else:
            base = self._base_codes(cells)
            for s in range(p):
                self._write_board(self._seat_codes(cells, base, s), out[:, s])
        flat[self._seat_offset[:, :, :g] + hidx] = head_codes
        return out

    # ------------------------------------------------------------------ inside

    def _select(
        self, games: NDArray[np.integer] | None
    ) -> tuple[NDArray[np.int8], NDArray[np.int64], NDArray[np.bool_]]:
        b = self.batch
        if games is None:
            return b.cells, b.heads, b.alive
        idx = np.asarray(games, dtype=np.int64)
        cells = np.take(b.cells, idx, axis=0, out=self._gathered[: idx.size])
        return cells, b.heads[idx], b.alive[idx]

    def _check_out(
        self, out: NDArray[np.uint8] | None, shape: tuple[int, ...]
    ) -> NDArray[np.uint8]:
        if out is None:
            return np.empty(shape, dtype=np.uint8)
        if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous uint8 array of shape {shape}, "
                f"got {out.dtype} {out.shape}"
            )
        return out

    def _base_codes(self, cells: NDArray[np.int8]) -> NDArray[np.uint8]:
        """Codes seen by a player who owns no trail: 0 empty, 1 wall, 3 every trail.

        Computed as ``(x != 0) + 2 * (x > 0)`` on the int8 cells, in place in the scratch buffers
        (numpy's uint8 minimum/take are an order of magnitude slower than these comparisons).
        """
        g = cells.shape[0]
        x = cells.reshape(g, -1)
        base = self._base[:g]
        trail = self._mask[:g]
        np.not_equal(x, 0, out=base.view(np.bool_))
        np.greater(x, 0, out=trail)
        np.add(base, trail.view(np.uint8), out=base)
        np.add(base, trail.view(np.uint8), out=base)
        return base

    def _encode_one(
        self,
        cells: NDArray[np.int8],
        heads: list[int],
        alive: list[bool],
        seat: int,
        out: NDArray[np.uint8],
    ) -> None:
        """``encode`` for a single game (a single env's step): the same codes, fewer numpy calls."""
        rh, rw = self._rh, self._rw
        out[:rh, :rw] = self._lut[seat][cells[1 : 1 + rh, 1 : 1 + rw].view(np.uint8)]
        if rh < out.shape[0]:
            out[rh:, :] = _WALL
        if rw < out.shape[1]:
            out[:rh, rw:] = _WALL
        wp = self.batch.width
        for p, (head, live) in enumerate(zip(heads, alive, strict=True)):
            if live:
                r, c = divmod(head, wp)
                out[r - 1, c - 1] = _OWN_HEAD if p == seat else _OPPONENT_HEAD

    def _board_codes(self, cells: NDArray[np.int8], seat: int) -> NDArray[np.uint8]:
        """The codes of the copied board area seen by ``seat``, by the cheaper path for the size."""
        g = cells.shape[0]
        if g * self._board_size <= _LOOKUP_MAX_SQUARES:
            return self._lut[seat][self._region(cells)]
        if self.batch.n_players == 2 and seat == 0:
            # Cells -1, 0, 1, 2 become 1, 0, 2, 3: |x| + (x > 0), half the passes of the general
            # formula.
            x = cells.reshape(g, -1)
            codes = self._codes[:g]
            np.abs(x, out=codes.view(np.int8))
            np.greater(x, 0, out=self._mask[:g])
            np.add(codes, self._mask[:g].view(np.uint8), out=codes)
            return self._crop(codes, g)
        return self._seat_codes(cells, self._base_codes(cells), seat)

    def _seat_codes(
        self, cells: NDArray[np.int8], base: NDArray[np.uint8], seat: int | NDArray[np.int64]
    ) -> NDArray[np.uint8]:
        """``base`` minus one on the seat's own trail: the seat's codes on the padded boards."""
        g = cells.shape[0]
        own = self._mask[:g]
        codes = self._codes[:g]
        # A Python int keeps the comparison in int8 (a numpy int64 scalar would promote it).
        owner = seat + 1 if isinstance(seat, int) else (seat + 1).astype(np.int8)[:, None]
        np.equal(cells.reshape(g, -1), owner, out=own)
        np.subtract(base, own.view(np.uint8), out=codes)
        return self._crop(codes, g)

    def _crop(self, codes: NDArray[np.uint8], g: int) -> NDArray[np.uint8]:
        """The copied area of ``g`` flattened padded boards of codes."""
        return codes.reshape(g, self.batch.height, self.batch.width)[
            :, 1 : 1 + self._rh, 1 : 1 + self._rw
        ]

    def _region(self, cells: NDArray[np.int8]) -> NDArray[np.uint8]:
        """The copied area of the padded boards as uint8 (walls 255), to index a lookup table."""
        return cells[:, 1 : 1 + self._rh, 1 : 1 + self._rw].view(np.uint8)

    def _write_board(self, codes: NDArray[np.uint8], out: NDArray[np.uint8]) -> None:
        """Copy the codes of the board area into ``out`` and pad the rest with walls."""
        rh, rw = self._rh, self._rw
        out[:, :rh, :rw] = codes
        if rh < out.shape[1]:
            out[:, rh:, :] = _WALL
        if rw < out.shape[2]:
            out[:, :rh, rw:] = _WALL


def encode(
    batch: TronBatch,
    seat: int | NDArray[np.integer],
    games: NDArray[np.integer] | None = None,
    *,
    obs_size: int | tuple[int, int] | None = None,
    out: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """Observations of ``seat`` in ``games`` of ``batch`` (one-off; keep an ``Encoder`` in loops).

    Returns:
        ``(G, S_h, S_w)`` uint8 categories, see the module docstring.
    """
    return Encoder(batch, obs_size).encode(seat, games, out=out)


def planes(obs: NDArray[np.uint8], dtype: type[np.generic] = np.float32) -> NDArray[np.generic]:
    """One-hot planes of categorical observations.

    Args:
        obs: ``(..., S_h, S_w)`` categories.
        dtype: the dtype of the planes (``np.bool_`` or ``np.uint8`` to keep them small).

    Returns:
        ``(..., N_CATEGORIES, S_h, S_w)``: plane ``k`` is 1 where ``obs == k``.
    """
    codes = np.arange(N_CATEGORIES, dtype=np.uint8)[:, None, None]
    return (obs[..., None, :, :] == codes).astype(dtype)
