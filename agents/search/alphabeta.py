"""Alpha-beta over simultaneous moves, and the single-player endgame fill search.

Simultaneous moves are searched as two alternating choices (REFERENCE.md): player 0 (the searcher)
picks a move, then player 1 picks a reply *knowing* it, and only then does the board advance by
one turn (``transition`` resolves it exactly as the engine does). This is pessimistic for the
searcher, which is what a bot that must not lose wants. One unit of ``depth`` is one such turn.

Scores are from player 0's point of view: ``WIN - ply`` for a proven win (sooner is better),
``-WIN + ply`` for a proven loss (later is better), ``draw`` for a draw (0, or below 0 for a
searcher with contempt, which then prefers playing on to a draw unless playing on looks worse than
the draw), and the evaluation of ``agents.search.evaluate`` at the horizon.

The search counts leaf evaluations in ``ctx[EVALS]`` and gives up as soon as it would exceed
``ctx[LIMIT]`` (``ctx[ABORTED] = 1``); the caller then discards the unfinished iteration. This
node budget is how the time limit reaches compiled code: the caller converts the time left into
evaluations with a measured rate (``agents.minimax``).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from agents.search.board import (
    BOTH_CRASH,
    CONTINUE,
    FIRST_CRASHES,
    UNREACHED,
    bfs,
    clear,
    flood_count,
    free_degree,
    largest_part,
    transition,
)
from agents.search.evaluate import DIST1, QUEUE1, SCRATCH, evaluate, fill_estimate

WIN = 1_000_000.0
#: Deepest search supported (turns for alpha-beta, moves for the fill search).
MAX_PLY = 256

# Slots of the int64 context array ``ctx``.
EVALS = 0  # leaf evaluations so far
LIMIT = 1  # evaluation budget of this call
ABORTED = 2  # 1 once the budget ran out
HORIZON = 3  # 1 if some leaf was cut off by the depth limit (a deeper search may differ)
BEST = 4  # best root move found (Direction), -1 if none
TARGET = 5  # fill search: stop once a line reaches this many moves
N_CTX = 6


def new_context(limit: int) -> NDArray[np.int64]:
    """A fresh context with an evaluation budget of ``limit``."""
    ctx = np.zeros(N_CTX, dtype=np.int64)
    ctx[LIMIT] = limit
    ctx[BEST] = -1
    return ctx


@njit(cache=True)
def _ordered(first: int, i: int) -> int:
    """The ``i``-th move of the order that tries ``first`` first, then the rest N, E, S, W."""
    if i == 0:
        return first
    j = i - 1
    if j >= first:
        j += 1
    return j


@njit(cache=True)
def alphabeta(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    h0: int,
    h1: int,
    depth: int,
    alpha: float,
    beta: float,
    ply: int,
    killers: NDArray[np.int64],
    ctx: NDArray[np.int64],
    k1: float,
    k2: float,
    chambers: bool,
    parity: bool,
    draw: float,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """Value of the position for player 0, searched ``depth`` turns deep.

    Args:
        cells: the board, modified during the search and restored on return.
        offsets, colour: see ``agents.search`` and ``evaluate``.
        h0, h1: the heads of player 0 (the searcher) and player 1.
        depth: turns left to search.
        alpha, beta: the search window.
        ply: turns from the root (0 at the root).
        killers: (MAX_PLY, 2) int64, the last move of player 0 / player 1 that caused a cutoff at
            each ply, tried first. ``killers[0, 0]`` orders the root: set it to the best move of
            the previous iteration.
        ctx: the context (``new_context``); ``ctx[BEST]`` receives the best root move.
        k1, k2, chambers, parity: evaluation settings (``evaluate``).
        draw: the value of a draw for player 0.
        ws, fws: workspace (``agents.search.evaluate.new_workspace``).
    """
    if depth == 0:
        if ctx[EVALS] >= ctx[LIMIT]:
            ctx[ABORTED] = 1
            return 0.0
        ctx[EVALS] += 1
        ctx[HORIZON] = 1
        return evaluate(cells, offsets, colour, h0, h1, k1, k2, chambers, parity, draw, ws, fws)
    best = -2.0 * WIN
    for i in range(4):
        m = _ordered(killers[ply, 0], i)
        d0 = h0 + offsets[m]
        # Player 1 answers knowing m: a min node, cut as soon as it is no better than alpha.
        worst = 2.0 * WIN
        b = beta
        for j in range(4):
            o = _ordered(killers[ply, 1], j)
            d1 = h1 + offsets[o]
            outcome = transition(cells, d0, d1)
            if outcome == CONTINUE:
                cells[d0] = 1
                cells[d1] = 2
                v = alphabeta(
                    cells,
                    offsets,
                    colour,
                    d0,
                    d1,
                    depth - 1,
                    alpha,
                    b,
                    ply + 1,
                    killers,
                    ctx,
                    k1,
                    k2,
                    chambers,
                    parity,
                    draw,
                    ws,
                    fws,
                )
                cells[d0] = 0
                cells[d1] = 0
                if ctx[ABORTED]:
                    return 0.0
            elif outcome == FIRST_CRASHES:
                v = -WIN + ply
            elif outcome == BOTH_CRASH:
                v = draw
            else:
                v = WIN - ply
            if v < worst:
                worst = v
                if worst < b:
                    b = worst
                if worst <= alpha:
                    killers[ply, 1] = o
                    break
        if worst > best:
            best = worst
            if ply == 0:
                ctx[BEST] = m
            if best > alpha:
                alpha = best
            if alpha >= beta:
                killers[ply, 0] = m
                break
    return best


@njit(cache=True)
def may_split(cells: NDArray[np.int8], offsets: NDArray[np.int64], v: int) -> bool:
    """Whether taking square ``v`` might cut the free squares around it into separate parts.

    Looks at the 8 squares around ``v``: if its free orthogonal neighbours lie in two or more
    separate runs of free squares around that ring, they may only be connected through ``v``
    (they may also be connected the long way round: this is a cheap, local test).
    """
    w = offsets[2]
    ring = (-w, -w + 1, 1, w + 1, w, w - 1, -1, -w - 1)  # clockwise from N; even: orthogonal
    runs = 0
    in_run = False
    counted = False
    # start just after a non-free square so no run wraps around the end of the ring
    first = -1
    for i in range(8):
        if cells[v + ring[i]] != 0:
            first = i
            break
    if first < 0:
        return False
    for j in range(1, 9):
        i = (first + j) % 8
        if cells[v + ring[i]] == 0:
            if not in_run:
                in_run = True
                counted = False
            if i % 2 == 0 and not counted:
                runs += 1
                counted = True
        else:
            in_run = False
    return runs >= 2


@njit(cache=True)
def _one_part(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    h: int,
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
) -> bool:
    """Whether the free neighbours of the (occupied) square ``h`` are all connected."""
    first = -1
    for k in range(4):
        if cells[h + offsets[k]] == 0:
            first = h + offsets[k]
            break
    if first < 0:
        return True
    n = bfs(cells, offsets, first, dist, queue)
    together = True
    for k in range(4):
        v = h + offsets[k]
        if cells[v] == 0 and dist[v] == UNREACHED:
            together = False
    clear(dist, queue, n)
    return together


@njit(cache=True)
def rollout(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    head: int,
    path: NDArray[np.int32],
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> int:
    """Length of a greedy fill from ``head``: an achievable number of moves (a lower bound).

    Each step keeps the most space. When the head or the square entered ``may_split`` the free
    squares, a move is valued by the ``largest_part`` it leaves reachable, and if the moves keep
    parts of different sizes, by the ``fill_estimate`` of what they keep (a big part full of dead
    ends is worth less than its size); any other move keeps everything. Among moves that keep as
    much, Warnsdorff's rule picks the square with the fewest free neighbours (it hugs walls and
    trails); ties go N, E, S, W. Deterministic and memoryless, so a rollout started one square
    further along its own path continues it unchanged. ``cells`` is restored on return; ``path``
    (as long as the board) is scratch, and so are ``ws`` rows ``DIST1`` and ``QUEUE1``.
    """
    dist = ws[DIST1]
    queue = ws[QUEUE1]
    region = flood_count(cells, offsets, head, dist, queue)
    size = np.empty(4, dtype=np.int64)
    deg = np.empty(4, dtype=np.int64)
    n = 0
    h = head
    while True:
        # The head may be the cut itself: its free neighbours in different parts.
        head_splits = may_split(cells, offsets, h) and not _one_part(cells, offsets, h, dist, queue)
        lo = UNREACHED
        hi = -1
        for k in range(4):
            v = h + offsets[k]
            size[k] = -1
            if cells[v] != 0:
                continue
            cells[v] = 1
            deg[k] = free_degree(cells, offsets, v)
            if deg[k] == 0:
                size[k] = 0
            elif head_splits or may_split(cells, offsets, v):
                size[k] = largest_part(cells, offsets, v, dist, queue)
            else:
                size[k] = region - 1
            cells[v] = 0
            lo = min(lo, size[k])
            hi = max(hi, size[k])
        if hi < 0:
            break
        best = -1
        best_value = -1.0
        for k in range(4):
            if size[k] < 0:
                continue
            if lo == hi:
                value = 0.0
            else:
                v = h + offsets[k]
                cells[v] = 1
                value = fill_estimate(cells, offsets, colour, v, True, True, ws, fws)
                cells[v] = 0
            if (
                best < 0
                or value > best_value
                or (value == best_value and size[k] > size[best])
                or (value == best_value and size[k] == size[best] and deg[k] < deg[best])
            ):
                best = k
                best_value = value
        h = h + offsets[best]
        region = size[best]
        cells[h] = 1
        path[n] = h
        n += 1
    for i in range(n):
        cells[path[i]] = 0
    return n


@njit(cache=True)
def fill_search(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    head: int,
    depth: int,
    moves: int,
    ctx: NDArray[np.int64],
    chambers: bool,
    parity: bool,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """Longest fill of a lone player found: ``moves`` made so far plus the best continuation.

    Depth-first over the player's own moves, ``depth`` (>= 1) moves deep; a line is worth its
    length plus the ``rollout`` from its last square, so every value is a fill the player can
    actually make (and following the best line move after move never makes it shorter). Children
    are tried by ``fill_estimate`` (an optimistic bound) best first, ties to the square with fewer
    free neighbours, and a child whose estimate cannot beat the best line found is skipped. The
    search stops as soon as a line reaches ``ctx[TARGET]`` (the region's parity bound: nothing is
    longer). ``ctx[BEST]`` receives the first move of the best line when ``moves == 0``.
    Evaluations counted against the budget: one per child (its estimate, and its rollout at the
    horizon).
    """
    est = np.empty(4, dtype=np.float64)
    deg = np.empty(4, dtype=np.int64)
    n = 0
    for k in range(4):
        v = head + offsets[k]
        est[k] = -1.0
        if cells[v] == 0:
            if ctx[EVALS] >= ctx[LIMIT]:
                ctx[ABORTED] = 1
                return 0.0
            ctx[EVALS] += 1
            cells[v] = 1
            est[k] = fill_estimate(cells, offsets, colour, v, chambers, parity, ws, fws)
            cells[v] = 0
            deg[k] = free_degree(cells, offsets, v)
            n += 1
    best = float(moves)
    for _ in range(n):
        # the untried child with the best estimate, then the fewest free neighbours
        k = -1
        for c in range(4):
            if est[c] >= 0.0 and (
                k < 0 or est[c] > est[k] or (est[c] == est[k] and deg[c] < deg[k])
            ):
                k = c
        bound = moves + 1 + est[k]
        est[k] = -1.0
        if bound <= best:
            break
        v = head + offsets[k]
        cells[v] = 1
        if depth == 1:
            ctx[HORIZON] = 1
            val = float(moves + 1 + rollout(cells, offsets, colour, v, ws[SCRATCH], ws, fws))
        else:
            val = fill_search(
                cells, offsets, colour, v, depth - 1, moves + 1, ctx, chambers, parity, ws, fws
            )
        cells[v] = 0
        if ctx[ABORTED]:
            return 0.0
        if val > best:
            best = val
            if moves == 0:
                ctx[BEST] = k
            if best >= ctx[TARGET]:
                break
    return best
