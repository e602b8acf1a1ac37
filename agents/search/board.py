"""Board primitives shared by the search and the scripted bots: moves, turn outcomes, BFS."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

#: Distance of a square no BFS reached.
UNREACHED = 1 << 30

# Outcome of one simultaneous turn of two players (``transition``).
CONTINUE = 0
FIRST_CRASHES = 1
SECOND_CRASHES = 2
BOTH_CRASH = 3


def direction_offsets(width: int) -> NDArray[np.int64]:
    """Flat-index step of each ``Direction`` (N, E, S, W) on a padded board ``width`` wide."""
    return np.array([-width, 1, width, -1], dtype=np.int64)


@njit(cache=True)
def transition(cells: NDArray[np.int8], d0: int, d1: int) -> int:
    """The outcome of a turn in which two players move onto squares ``d0`` and ``d1``.

    This is the search's whole model of the rules (REFERENCE.md turn resolution): a player crashes
    when its destination is not free (walls, trails and heads are all obstacles, so reversing and
    swapping squares are crashes), and two players moving onto the same square both crash.

    Returns:
        ``CONTINUE``, ``FIRST_CRASHES``, ``SECOND_CRASHES`` or ``BOTH_CRASH`` (a draw).
    """
    if d0 == d1:
        return BOTH_CRASH
    c0 = cells[d0] != 0
    c1 = cells[d1] != 0
    if c0 and c1:
        return BOTH_CRASH
    if c0:
        return FIRST_CRASHES
    if c1:
        return SECOND_CRASHES
    return CONTINUE


@njit(cache=True)
def free_degree(cells: NDArray[np.int8], offsets: NDArray[np.int64], v: int) -> int:
    """Number of free neighbours of square ``v``."""
    n = 0
    for k in range(4):
        if cells[v + offsets[k]] == 0:
            n += 1
    return n


@njit(cache=True)
def bfs(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    source: int,
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
) -> int:
    """Breadth-first distances from ``source`` (usually a head) through free squares.

    Only the squares reached are written: ``dist[source] = 0`` and ``dist[v]`` for each free square
    reached. ``queue[0]`` is the source and ``queue[1 : n + 1]`` the squares reached, in BFS order.
    The caller resets what was written back to ``UNREACHED`` (``clear``) before the next use, which
    costs the region, not the board.

    Returns:
        ``n``, the number of free squares reached (``source`` itself not counted).
    """
    dist[source] = 0
    queue[0] = source
    head = 0
    tail = 1
    while head < tail:
        u = queue[head]
        head += 1
        du = dist[u] + 1
        for k in range(4):
            v = u + offsets[k]
            if cells[v] == 0 and dist[v] == UNREACHED:
                dist[v] = du
                queue[tail] = v
                tail += 1
    return tail - 1


@njit(cache=True)
def clear(dist: NDArray[np.int32], queue: NDArray[np.int32], n: int) -> None:
    """Undo ``bfs``: reset the ``n + 1`` distances it wrote (source included) to ``UNREACHED``."""
    for i in range(n + 1):
        dist[queue[i]] = UNREACHED


@njit(cache=True)
def flood_count(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    source: int,
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
) -> int:
    """Number of free squares reachable from ``source`` (``dist`` is left all ``UNREACHED``)."""
    n = bfs(cells, offsets, source, dist, queue)
    clear(dist, queue, n)
    return n


@njit(cache=True)
def largest_part(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    v: int,
    dist: NDArray[np.int32],
    queue: NDArray[np.int32],
) -> int:
    """Free squares a player who enters ``v`` can still reach after it (``v`` not counted).

    Taking ``v`` may cut the free squares around it into parts, and the player then fills only
    one of them: this is the size of the largest part its free neighbours lie in (``cells`` and
    ``dist`` are restored on return).
    """
    saved = cells[v]
    cells[v] = 1
    best = 0
    seen = 0  # bit k: neighbour k already lies in a part counted
    for k in range(4):
        u = v + offsets[k]
        if cells[u] != 0 or seen & (1 << k):
            continue
        n = bfs(cells, offsets, u, dist, queue)
        for j in range(k + 1, 4):
            if dist[v + offsets[j]] != UNREACHED:
                seen |= 1 << j
        clear(dist, queue, n)
        if n + 1 > best:
            best = n + 1
    cells[v] = saved
    return best
