"""Scripted bots: ``random``, ``greedy``, ``wallhugger`` and ``chaser``.

They are fixed, cheap opponents (a learner's first yardsticks and the minimax ladder's floor), so
they act on whole batches in compiled code. A move is *safe* when its destination is a free square;
each bot picks among safe moves and plays ``Direction.N`` only when it has none (it crashes
whatever it does). "Heading" is the player's last move (``TronBatch.last_move``), north before the
first move.

* ``random``: a uniformly random safe move (seeded).
* ``greedy``: the safe move after which the most free squares are reachable (flood fill; if the
  move cuts the free space in parts, only the largest counts); ties keep the heading, then
  N, E, S, W.
* ``wallhugger``: the safe move whose destination touches the most obstacles, avoiding dead-end
  squares (no free neighbour) while it has a choice; ties go right turn, straight, left turn, so it
  runs clockwise along walls.
* ``chaser``: the safe move that gets closest to the nearest opponent's head (BFS distance through
  free squares), ties keep the heading; once no opponent can be reached it plays like ``greedy``.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from agents.base import Agent
from agents.search.board import UNREACHED, bfs, clear, free_degree, largest_part
from tron.rules import TronBatch


def _board_args(batch: TronBatch) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    offsets = batch.offsets.astype(np.int64)
    return batch.cells.reshape(batch.batch_size, -1), offsets


def _scratch(n_cells: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    return np.full(n_cells, UNREACHED, dtype=np.int32), np.zeros(n_cells, dtype=np.int32)


@njit(cache=True)
def _heading_first(heading: int, i: int) -> int:
    """The ``i``-th direction of the order heading, then the others N, E, S, W."""
    h = heading if heading >= 0 else 0
    if i == 0:
        return h
    j = i - 1
    if j >= h:
        j += 1
    return j


@njit(cache=True)
def _most_space(
    board: NDArray[np.int8],
    offsets: NDArray[np.int64],
    head: int,
    heading: int,
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
) -> int:
    best = -1
    best_n = -1
    for i in range(4):
        d = _heading_first(heading, i)
        v = head + offsets[d]
        if board[v] != 0:
            continue
        n = largest_part(board, offsets, v, dist, queue)
        if n > best_n:
            best, best_n = d, n
    return best if best >= 0 else 0


@njit(cache=True)
def _greedy_kernel(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    heads: NDArray[np.int64],
    last_move: NDArray[np.int8],
    seat: int,
    games: NDArray[np.int64],
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
    out: NDArray[np.int8],
) -> None:
    for i in range(games.size):
        g = games[i]
        out[i] = _most_space(cells[g], offsets, heads[g, seat], last_move[g, seat], dist, queue)


@njit(cache=True)
def _wallhugger_kernel(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    heads: NDArray[np.int64],
    last_move: NDArray[np.int8],
    seat: int,
    games: NDArray[np.int64],
    out: NDArray[np.int8],
) -> None:
    for i in range(games.size):
        g = games[i]
        board = cells[g]
        head = heads[g, seat]
        h = last_move[g, seat] if last_move[g, seat] >= 0 else 0
        best = -1
        best_score = -1
        for j in range(4):
            # right turn, straight, left turn, back
            d = (h + 1 - j) % 4
            v = head + offsets[d]
            if board[v] != 0:
                continue
            exits = free_degree(board, offsets, v)
            # a dead end scores below every square with an exit
            score = (4 - exits) if exits > 0 else 0
            if score > best_score:
                best, best_score = d, score
        out[i] = best if best >= 0 else 0


@njit(cache=True)
def _chaser_kernel(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    heads: NDArray[np.int64],
    alive: NDArray[np.bool_],
    last_move: NDArray[np.int8],
    seat: int,
    games: NDArray[np.int64],
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
    out: NDArray[np.int8],
) -> None:
    n_players = heads.shape[1]
    for i in range(games.size):
        g = games[i]
        board = cells[g]
        head = heads[g, seat]
        # distance of each candidate destination to the nearest opponent head
        cand = np.full(4, UNREACHED, dtype=np.int64)
        for p in range(n_players):
            if p == seat or not alive[g, p]:
                continue
            n = bfs(board, offsets, heads[g, p], dist, queue)
            for d in range(4):
                v = head + offsets[d]
                if board[v] == 0 and dist[v] < cand[d]:
                    cand[d] = dist[v]
            clear(dist, queue, n)
        best = -1
        for j in range(4):
            d = _heading_first(last_move[g, seat], j)
            if cand[d] < UNREACHED and (best < 0 or cand[d] < cand[best]):
                best = d
        if best < 0:
            best = _most_space(board, offsets, head, last_move[g, seat], dist, queue)
        out[i] = best


class RandomAgent(Agent):
    """Plays a uniformly random safe move (any move when none is safe)."""

    def __init__(self, seed: int = 0, *, name: str = "random") -> None:
        self.name = name
        self._rng = np.random.default_rng(seed)

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        g = np.asarray(games, dtype=np.int64)
        flat = batch.cells.reshape(batch.batch_size, -1)
        dest = batch.heads[g, seat][:, None] + batch.offsets[None, :]
        safe = flat[g[:, None], dest] == 0
        # A random key per move, unsafe moves pushed below every safe one: argmax is uniform
        # over the safe moves.
        keys = self._rng.random((g.size, 4)) + safe
        return np.argmax(keys, axis=1).astype(np.int8)


class GreedyAgent(Agent):
    """Moves where the most free squares are reachable (see the module docstring)."""

    def __init__(self, *, name: str = "greedy") -> None:
        self.name = name

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        cells, offsets = _board_args(batch)
        out = np.empty(len(games), dtype=np.int8)
        dist, queue = _scratch(cells.shape[1])
        g = np.asarray(games, dtype=np.int64)
        _greedy_kernel(cells, offsets, batch.heads, batch.last_move, seat, g, dist, queue, out)
        return out


class WallHuggerAgent(Agent):
    """Follows walls clockwise (see the module docstring)."""

    def __init__(self, *, name: str = "wallhugger") -> None:
        self.name = name

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        cells, offsets = _board_args(batch)
        out = np.empty(len(games), dtype=np.int8)
        g = np.asarray(games, dtype=np.int64)
        _wallhugger_kernel(cells, offsets, batch.heads, batch.last_move, seat, g, out)
        return out


class ChaserAgent(Agent):
    """Heads for the nearest opponent (see the module docstring)."""

    def __init__(self, *, name: str = "chaser") -> None:
        self.name = name

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        cells, offsets = _board_args(batch)
        out = np.empty(len(games), dtype=np.int8)
        dist, queue = _scratch(cells.shape[1])
        g = np.asarray(games, dtype=np.int64)
        _chaser_kernel(
            cells, offsets, batch.heads, batch.alive, batch.last_move, seat, g, dist, queue, out
        )
        return out
