"""Position evaluation for the minimax: Voronoi territory, chambers, and the space-filling race.

Two regimes (REFERENCE.md, "Strong Tron play"):

* **Connected** (the players can reach a common square): Voronoi territory. A free square belongs
  to the player whose head reaches it strictly first (BFS distance); ties are neutral. Each owned
  square ``v`` weighs ``K1 + K2 * deg(v)``, ``deg`` its free neighbours, so a territory scores
  ``K1 * N + K2 * E`` (``N`` squares, ``E`` open edges) and the position scores the difference.
* **Separated**: a space-filling race. The player who can fill more squares outlives the other, so
  the score is ``SEPARATED * sign(F0 - F1) + (F0 - F1)`` with ``F`` each side's fillable estimate
  (an even race is a draw),
  which ranks every won race above every connected position (``SEPARATED`` exceeds any Voronoi
  score on a 50x50 board) and every lost race below.

The chamber refinement (``chambers=True``) replaces plain sums by a *chamber tree*. Articulation
points of a player's region (Tarjan's low-link DFS rooted at the head) cut it into chambers; a
path that leaves a chamber through an articulation point into a dead-end branch cannot come back.
So the value of a chamber is its own squares plus the best single branch hanging off it, and
the value of the head is its best branch: that is the space a player can actually use, where
Voronoi would also count the pockets it must abandon.

The checkerboard-parity bound (``parity=True``): a path alternates square colours, so from a head
of colour ``c`` it can visit at most ``2 * same + 1`` squares when there are more of the other
colour, else ``2 * other`` (``same``, ``other``: free squares of colour ``c`` / not ``c``). In the
separated regime it bounds each branch of the chamber tree, and without chambers the whole region.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from agents.search.board import UNREACHED, bfs, clear, free_degree

#: Weight of a square of territory (a1k0n's 2010 fit on ~11.7k games).
K1 = 0.055
#: Weight of an open edge of territory.
K2 = 0.194
#: Base score of a won separated race (above any Voronoi score, below a proven win).
SEPARATED = 10_000.0

# Rows of the int32 workspace (``new_workspace``).
DIST0 = 0
DIST1 = 1
QUEUE0 = 2
QUEUE1 = 3
NOWHERE = 4  # always UNREACHED: the "other player" of a single-player region
DISC = 5
LOW = 6
NEXT_DIR = 7
STACK = 8
C0 = 9  # chamber squares of colour 0 / 1 (fill mode)
C1 = 10
B0 = 11  # squares of colour 0 / 1 of the best branch (fill mode)
B1 = 12
SCRATCH = 13  # free for callers (the fill search's rollout path)
N_ROWS = 14
# Rows of the float64 workspace.
CHAMBER = 0  # chamber value (weights, or parity bound of the best branch in fill mode)
BRANCH = 1  # value of the best branch


def new_workspace(n_cells: int) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Scratch arrays for one board of ``n_cells`` padded squares (reuse them across calls)."""
    ws = np.zeros((N_ROWS, n_cells), dtype=np.int32)
    ws[DIST0] = UNREACHED
    ws[DIST1] = UNREACHED
    ws[NOWHERE] = UNREACHED
    return ws, np.zeros((2, n_cells), dtype=np.float64)


def square_colours(height: int, width: int) -> NDArray[np.int8]:
    """Checkerboard colour ``(row + col) % 2`` of each square of a padded board, flattened."""
    r, c = np.divmod(np.arange(height * width), width)
    return ((r + c) % 2).astype(np.int8)


@njit(cache=True)
def parity_bound(same: int, other: int) -> int:
    """Longest path through ``same`` squares of the start's colour and ``other`` of the other."""
    if other > same:
        return 2 * same + 1
    return 2 * other


@njit(cache=True)
def chamber_weight(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    head: int,
    d_me: NDArray[np.int32],
    d_other: NDArray[np.int32],
    n_region: int,
    queue: NDArray[np.int32],
    k1: float,
    k2: float,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """Chamber-tree value of a player's territory (squares with ``d_me < d_other``).

    Args:
        cells, offsets: the board (see ``agents.search``).
        head: the player's head, the root of the DFS.
        d_me, d_other: BFS distances from this player and from the other one.
        n_region, queue: the squares the player's BFS reached (``queue[1 : n_region + 1]``).
        k1, k2: square and edge weights.
        ws, fws: workspace (``new_workspace``).

    Returns:
        The value of the best branch from the head, in weight units.
    """
    disc = ws[DISC]
    low = ws[LOW]
    nxt = ws[NEXT_DIR]
    stack = ws[STACK]
    chamber = fws[CHAMBER]
    branch = fws[BRANCH]
    for i in range(1, n_region + 1):
        disc[queue[i]] = 0
    t = 1
    disc[head] = t
    low[head] = t
    nxt[head] = 0
    chamber[head] = 0.0
    branch[head] = 0.0
    stack[0] = head
    sp = 1
    while sp > 0:
        u = stack[sp - 1]
        k = nxt[u]
        if k < 4:
            nxt[u] = k + 1
            v = u + offsets[k]
            # The head is a vertex too: a square next to it can start the path, so an edge back
            # to it keeps that square in its chamber instead of making it a dead end.
            if v != head and (cells[v] != 0 or d_me[v] >= d_other[v]):
                continue
            if disc[v] == 0:
                t += 1
                disc[v] = t
                low[v] = t
                nxt[v] = 0
                chamber[v] = k1 + k2 * free_degree(cells, offsets, v)
                branch[v] = 0.0
                stack[sp] = v
                sp += 1
            elif not (sp >= 2 and v == stack[sp - 2]) and disc[v] < low[u]:
                low[u] = disc[v]
        else:
            sp -= 1
            if sp > 0:
                p = stack[sp - 1]
                if low[u] < low[p]:
                    low[p] = low[u]
                if low[u] >= disc[p]:
                    # p separates u's subtree: a dead-end branch, entered at most once.
                    val = chamber[u] + branch[u]
                    if val > branch[p]:
                        branch[p] = val
                else:
                    chamber[p] += chamber[u]
                    if branch[u] > branch[p]:
                        branch[p] = branch[u]
    return branch[head]


@njit(cache=True)
def chamber_fill(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    head: int,
    d_me: NDArray[np.int32],
    d_other: NDArray[np.int32],
    n_region: int,
    queue: NDArray[np.int32],
    parity: bool,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """Chamber-tree estimate of how many squares a player can still fill (same arguments as
    ``chamber_weight``, with ``colour`` from ``square_colours``).

    A branch is valued by the parity bound of its squares (its chamber plus its own best branch)
    seen from the articulation point it is entered from; with ``parity=False`` by its size.

    Returns:
        The number of moves the player can expect to make.
    """
    disc = ws[DISC]
    low = ws[LOW]
    nxt = ws[NEXT_DIR]
    stack = ws[STACK]
    c0 = ws[C0]
    c1 = ws[C1]
    b0 = ws[B0]
    b1 = ws[B1]
    bval = fws[BRANCH]
    for i in range(1, n_region + 1):
        disc[queue[i]] = 0
    t = 1
    disc[head] = t
    low[head] = t
    nxt[head] = 0
    c0[head] = 0
    c1[head] = 0
    b0[head] = 0
    b1[head] = 0
    bval[head] = 0.0
    stack[0] = head
    sp = 1
    while sp > 0:
        u = stack[sp - 1]
        k = nxt[u]
        if k < 4:
            nxt[u] = k + 1
            v = u + offsets[k]
            # The head is a vertex too: a square next to it can start the path, so an edge back
            # to it keeps that square in its chamber instead of making it a dead end.
            if v != head and (cells[v] != 0 or d_me[v] >= d_other[v]):
                continue
            if disc[v] == 0:
                t += 1
                disc[v] = t
                low[v] = t
                nxt[v] = 0
                if colour[v] == 0:
                    c0[v] = 1
                    c1[v] = 0
                else:
                    c0[v] = 0
                    c1[v] = 1
                b0[v] = 0
                b1[v] = 0
                bval[v] = 0.0
                stack[sp] = v
                sp += 1
            elif not (sp >= 2 and v == stack[sp - 2]) and disc[v] < low[u]:
                low[u] = disc[v]
        else:
            sp -= 1
            if sp > 0:
                p = stack[sp - 1]
                if low[u] < low[p]:
                    low[p] = low[u]
                if low[u] >= disc[p]:
                    n0 = c0[u] + b0[u]
                    n1 = c1[u] + b1[u]
                    if not parity:
                        val = float(n0 + n1)
                    elif colour[p] == 0:
                        val = float(parity_bound(n0, n1))
                    else:
                        val = float(parity_bound(n1, n0))
                    if val > bval[p]:
                        bval[p] = val
                        b0[p] = n0
                        b1[p] = n1
                else:
                    c0[p] += c0[u]
                    c1[p] += c1[u]
                    if bval[u] > bval[p]:
                        bval[p] = bval[u]
                        b0[p] = b0[u]
                        b1[p] = b1[u]
    return bval[head]


@njit(cache=True)
def _region_fill(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    head: int,
    d_me: NDArray[np.int32],
    n_region: int,
    queue: NDArray[np.int32],
    chambers: bool,
    parity: bool,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """Fillable estimate of a region no other player can reach (``d_me`` and ``queue`` from BFS)."""
    if chambers:
        return chamber_fill(
            cells, offsets, colour, head, d_me, ws[NOWHERE], n_region, queue, parity, ws, fws
        )
    if not parity:
        return float(n_region)
    same = 0
    for i in range(1, n_region + 1):
        if colour[queue[i]] == colour[head]:
            same += 1
    return float(parity_bound(same, n_region - same))


@njit(cache=True)
def fill_estimate(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    head: int,
    chambers: bool,
    parity: bool,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """How many more moves a lone player at ``head`` can expect to make."""
    dist = ws[DIST0]
    queue = ws[QUEUE0]
    n = bfs(cells, offsets, head, dist, queue)
    f = _region_fill(cells, offsets, colour, head, dist, n, queue, chambers, parity, ws, fws)
    clear(dist, queue, n)
    return f


@njit(cache=True)
def region_bound(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    head: int,
    ws: NDArray[np.int32],
) -> int:
    """A true upper bound on the moves left to a lone player: the parity bound of its region."""
    dist = ws[DIST0]
    queue = ws[QUEUE0]
    n = bfs(cells, offsets, head, dist, queue)
    same = 0
    for i in range(1, n + 1):
        if colour[queue[i]] == colour[head]:
            same += 1
    clear(dist, queue, n)
    return parity_bound(same, n - same)


@njit(cache=True)
def separated_score(diff: float, draw: float) -> float:
    """Score of a separated position in which the first player can fill ``diff`` more squares
    (``draw``, the value of a draw, when neither can)."""
    if diff > 0.0:
        return SEPARATED + diff
    if diff < 0.0:
        return -SEPARATED + diff
    return draw


@njit(cache=True)
def evaluate(
    cells: NDArray[np.int8],
    offsets: NDArray[np.int64],
    colour: NDArray[np.int8],
    h0: int,
    h1: int,
    k1: float,
    k2: float,
    chambers: bool,
    parity: bool,
    draw: float,
    ws: NDArray[np.int32],
    fws: NDArray[np.float64],
) -> float:
    """Score of a position for player 0 (heads ``h0``, ``h1``; positive is good for player 0).

    Args:
        cells, offsets, colour: the board (``agents.search``, ``square_colours``).
        h0, h1: the two heads.
        k1, k2: Voronoi weights of a square and of an open edge (``k2 = 0``: squares only).
        chambers: use the chamber tree (both regimes).
        parity: use the checkerboard-parity bound in the separated regime.
        draw: the score of a separated race neither side wins (0, or below with contempt).
        ws, fws: workspace (``new_workspace``).

    Returns:
        The Voronoi difference while connected, ``separated_score(F0 - F1)`` once separated.
    """
    d0 = ws[DIST0]
    d1 = ws[DIST1]
    q0 = ws[QUEUE0]
    q1 = ws[QUEUE1]
    n0 = bfs(cells, offsets, h0, d0, q0)
    n1 = bfs(cells, offsets, h1, d1, q1)
    connected = False
    for i in range(1, n0 + 1):
        if d1[q0[i]] != UNREACHED:
            connected = True
            break
    if connected:
        if chambers:
            score = chamber_weight(cells, offsets, h0, d0, d1, n0, q0, k1, k2, ws, fws)
            score -= chamber_weight(cells, offsets, h1, d1, d0, n1, q1, k1, k2, ws, fws)
        else:
            score = 0.0
            for i in range(1, n0 + 1):
                v = q0[i]
                if d0[v] < d1[v]:
                    score += k1 + k2 * free_degree(cells, offsets, v)
            for i in range(1, n1 + 1):
                v = q1[i]
                if d1[v] < d0[v]:
                    score -= k1 + k2 * free_degree(cells, offsets, v)
    else:
        f0 = _region_fill(cells, offsets, colour, h0, d0, n0, q0, chambers, parity, ws, fws)
        f1 = _region_fill(cells, offsets, colour, h1, d1, n1, q1, chambers, parity, ws, fws)
        score = separated_score(f0 - f1, draw)
    clear(d0, q0, n0)
    clear(d1, q1, n1)
    return score


@njit(cache=True)
def connected(
    cells: NDArray[np.int8], offsets: NDArray[np.int64], h0: int, h1: int, ws: NDArray[np.int32]
) -> bool:
    """Whether players at ``h0`` and ``h1`` can both reach some free square."""
    d0 = ws[DIST0]
    d1 = ws[DIST1]
    q0 = ws[QUEUE0]
    q1 = ws[QUEUE1]
    n0 = bfs(cells, offsets, h0, d0, q0)
    n1 = bfs(cells, offsets, h1, d1, q1)
    found = False
    for i in range(1, n0 + 1):
        if d1[q0[i]] != UNREACHED:
            found = True
            break
    clear(d0, q0, n0)
    clear(d1, q1, n1)
    return found
