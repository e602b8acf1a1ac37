"""The minimax agent: iterative-deepening alpha-beta with a Voronoi / chamber-tree evaluation.

Each move (``MinimaxAgent.choose``):

1. **Connected** to an opponent: iterative deepening of ``agents.search.alphabeta.alphabeta``
   (simultaneous moves searched as "I move, the opponent replies knowing my move"), one turn
   deeper per iteration, the previous iteration's best move tried first and killer moves at every
   ply. An iteration that runs out of budget is discarded: the move is the best of the deepest
   *completed* iteration. Deepening stops early once a win or loss is proven or the whole tree is
   resolved.
2. **Separated** from every opponent: the endgame fill search
   (``agents.search.alphabeta.fill_search``), iteratively deepened the same way, which stops once a
   line reaches the region's parity bound.

Budgets (``MinimaxConfig``): ``ms`` (wall-clock time per move, the default, 100 ms), ``evals``
(leaf evaluations per move: deterministic, machine-independent) or ``depth`` (fixed depth in
turns: deterministic, for tests; the fill search then gets ``fill_evals`` evaluations). Compiled
code cannot read a clock, so a time budget is turned into an evaluation budget for each iteration
with the evaluation rate measured on this machine (kept per agent, refreshed every move); the
iteration is aborted inside the compiled search when it is used up.

Levels (``LEVELS``, weakest first). Each adds what the strength ladder showed to matter (README,
"Strength ladder": every level scores at least 70 % against the one below); deeper search alone
matters less than a better evaluation, and two equal searchers on a symmetric map mostly draw.

=====  ===========  =========================================================================
level  budget       evaluation and endgame
=====  ===========  =========================================================================
1      depth 1      Voronoi squares only (K2 = 0); separated: region size, best next move
2      depth 1      Voronoi squares and edges; separated: parity bound, fill search
3      depth 2      as level 2, one turn deeper
4      depth 3      + chamber tree (both regimes)
5      100 ms       as level 4 with iterative deepening (about 8-12 turns on 15x15 maps) and
                    contempt 10: the default ``minimax``
=====  ===========  =========================================================================

Levels 1-4 are fixed-depth, so deterministic and the same on every machine.

3 and 4 players (a stated fallback, not max-n): the search plays against the *nearest* live
opponent (shortest path from our head to a square next to theirs); every other opponent is treated
as an obstacle together with every free square it could enter next turn (paranoid: it might),
unless that would leave us no move at all, in which case only its head and trail are obstacles.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from agents.base import Agent
from agents.search.alphabeta import (
    ABORTED,
    BEST,
    EVALS,
    HORIZON,
    MAX_PLY,
    TARGET,
    WIN,
    alphabeta,
    fill_search,
    new_context,
)
from agents.search.board import UNREACHED, bfs, clear, direction_offsets, free_degree
from agents.search.evaluate import (
    DIST0,
    K1,
    K2,
    QUEUE0,
    SEPARATED,
    connected,
    fill_estimate,
    new_workspace,
    region_bound,
    square_colours,
)
from tron.rules import Direction, TronBatch

logger = logging.getLogger(__name__)

#: Evaluation rate assumed before the first measurement (evaluations per second, conservative).
_INITIAL_RATE = 20_000.0
#: Largest budget of an unlimited call (fixed-depth alpha-beta).
_NO_LIMIT = 1 << 62


@dataclass(frozen=True)
class MinimaxConfig:
    """How a ``MinimaxAgent`` searches and evaluates.

    Exactly one budget applies: ``depth`` if set, else ``evals`` if set, else ``ms``.
    """

    ms: float = 100.0
    """Wall-clock time per move in milliseconds."""
    depth: int | None = None
    """Fixed alpha-beta depth in turns (deterministic)."""
    evals: int | None = None
    """Leaf evaluations per move (deterministic, machine-independent)."""
    edges: bool = True
    """Count open edges of territory (K2) besides squares (K1)."""
    chambers: bool = True
    """Use the articulation-point chamber tree in both regimes."""
    parity: bool = True
    """Bound separated regions by the checkerboard-parity argument."""
    fill: bool = True
    """Search the separated endgame (``fill_search``); without it, take the move with the best
    one-move fill estimate."""
    fill_evals: int = 300
    """Fill-search evaluations per move in fixed-depth mode."""
    contempt: float = 10.0
    """How much worse than an even position a draw is, in evaluation units (an open square of
    territory is worth about 0.6): the agent steers away from lines in which the opponent can
    force a draw (a head-on crash, an even race) unless playing on looks worse than
    ``-contempt``. It wins more against weaker players and risks a little against equal ones."""

    def __post_init__(self) -> None:
        if self.depth is not None and not 1 <= self.depth < MAX_PLY:
            raise ValueError(f"depth must be 1..{MAX_PLY - 1}, got {self.depth}")
        if self.evals is not None and self.evals < 1:
            raise ValueError(f"evals must be >= 1, got {self.evals}")
        if not self.ms > 0:
            raise ValueError(f"ms must be > 0, got {self.ms}")
        if self.fill_evals < 1:
            raise ValueError(f"fill_evals must be >= 1, got {self.fill_evals}")
        if not 0 <= self.contempt < SEPARATED:
            raise ValueError(f"contempt must be in [0, {SEPARATED:g}), got {self.contempt}")


LEVELS: dict[int, MinimaxConfig] = {
    1: MinimaxConfig(depth=1, edges=False, chambers=False, parity=False, fill=False, contempt=0.0),
    2: MinimaxConfig(depth=1, chambers=False, contempt=0.0),
    3: MinimaxConfig(depth=2, chambers=False, contempt=0.0),
    4: MinimaxConfig(depth=3, contempt=0.0),
    5: MinimaxConfig(ms=100.0, contempt=10.0),
}


def level_config(level: int, **overrides: object) -> MinimaxConfig:
    """The configuration of ``level`` (1..5), with fields replaced by ``overrides``.

    A budget given in ``overrides`` replaces the level's budget: ``ms`` clears the level's
    ``depth``, and so on.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be 1..{len(LEVELS)}, got {level}")
    base = LEVELS[level]
    if {"ms", "depth", "evals"} & overrides.keys():
        base = replace(base, depth=None, evals=None)
    return replace(base, **overrides)  # type: ignore[arg-type]


@dataclass
class SearchInfo:
    """What the last ``MinimaxAgent.choose`` did (for benchmarks, logs and tests).

    Attributes:
        move: the chosen direction.
        mode: "alphabeta", "fill" or "forced" (at most one free square: no search).
        depth: deepest completed iteration (turns for alpha-beta, moves for the fill search).
        value: its score for the searcher.
        evals: leaf evaluations in all iterations, the discarded one included.
        seconds: wall-clock time of the whole choice.
    """

    move: Direction
    mode: str
    depth: int
    value: float
    evals: int
    seconds: float


@functools.cache
def _board_constants(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return direction_offsets(width), square_colours(height, width)


class MinimaxAgent(Agent):
    """Alpha-beta search agent (see the module docstring); deterministic in ``depth``/``evals`` mode."""

    def __init__(self, config: MinimaxConfig | None = None, *, name: str = "minimax") -> None:
        self.config = config or MinimaxConfig()
        self.name = name
        self.last: SearchInfo | None = None
        self._rate = _INITIAL_RATE
        self._workspaces: dict[int, tuple[NDArray[np.int32], NDArray[np.float64]]] = {}
        warm_up()

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        """One search per game, one after the other (a time budget is per game and move)."""
        return np.array([self.choose(batch, seat, int(g)) for g in games], dtype=np.int8)

    def choose(self, batch: TronBatch, seat: int, game: int) -> Direction:
        """The move of player ``seat`` in game ``game`` (details of the search in ``self.last``)."""
        start = time.perf_counter()
        offsets, colour = _board_constants(batch.height, batch.width)
        cells = np.ascontiguousarray(batch.cells[game]).reshape(-1).copy()
        ws, fws = self._workspace(cells.size)
        me = int(batch.heads[game, seat])
        free = [d for d in range(4) if cells[me + offsets[d]] == 0]
        if len(free) <= 1:
            forced = Direction(free[0] if free else Direction.N)
            self.last = SearchInfo(forced, "forced", 0, 0.0, 0, time.perf_counter() - start)
            return forced
        opponents = [
            int(batch.heads[game, p])
            for p in range(batch.n_players)
            if p != seat and batch.alive[game, p]
        ]
        opp = self._main_opponent(cells, offsets, me, opponents, ws)
        if opp is None:
            move, depth, value, evals = self._fill(cells, offsets, colour, me, ws, fws, start)
            mode = "fill"
        else:
            others = [h for h in opponents if h != opp]
            _block_next_squares(cells, offsets, me, others)
            move, depth, value, evals = self._alphabeta(
                cells, offsets, colour, me, opp, free[0], ws, fws, start
            )
            mode = "alphabeta"
        seconds = time.perf_counter() - start
        self.last = SearchInfo(Direction(move), mode, depth, value, evals, seconds)
        logger.debug("minimax: %s", self.last)
        return Direction(move)

    # ------------------------------------------------------------------ internals

    def _workspace(self, n_cells: int) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
        if n_cells not in self._workspaces:
            self._workspaces[n_cells] = new_workspace(n_cells)
        return self._workspaces[n_cells]

    @staticmethod
    def _main_opponent(
        cells: NDArray[np.int8],
        offsets: NDArray[np.int64],
        me: int,
        opponents: list[int],
        ws: NDArray[np.int32],
    ) -> int | None:
        """The opponent to search against: the nearest one we are connected to, or None."""
        if len(opponents) == 1:
            return opponents[0] if connected(cells, offsets, me, opponents[0], ws) else None
        dist, queue = ws[DIST0], ws[QUEUE0]
        n = bfs(cells, offsets, me, dist, queue)
        best, best_d = None, UNREACHED
        for h in opponents:
            d = min(int(dist[h + off]) for off in offsets)
            if d < best_d:
                best, best_d = h, d
        clear(dist, queue, n)
        return best

    def _budget(self, start: float, used: int, fixed: int) -> int:
        """Evaluations the next iteration may use (``fixed`` in fixed-depth mode)."""
        cfg = self.config
        if cfg.depth is not None:
            return fixed
        if cfg.evals is not None:
            return max(0, cfg.evals - used)
        left = cfg.ms / 1000.0 - (time.perf_counter() - start)
        return max(0, int(left * self._rate))

    def _measure(self, evals: int, seconds: float) -> None:
        """Fold a measured evaluation rate into the agent's estimate (time mode only)."""
        if evals >= 200 and seconds > 0:
            self._rate = 0.5 * self._rate + 0.5 * evals / seconds

    def _alphabeta(
        self,
        cells: NDArray[np.int8],
        offsets: NDArray[np.int64],
        colour: NDArray[np.int8],
        me: int,
        opp: int,
        fallback: int,
        ws: NDArray[np.int32],
        fws: NDArray[np.float64],
        start: float,
    ) -> tuple[int, int, float, int]:
        cfg = self.config
        k2 = K2 if cfg.edges else 0.0
        killers = np.zeros((MAX_PLY, 2), dtype=np.int64)
        best, value, done, used = fallback, 0.0, 0, 0
        max_depth = cfg.depth if cfg.depth is not None else MAX_PLY - 1
        for depth in range(1, max_depth + 1):
            # Depth 1 always completes (at most 16 leaves), so a move is always searched.
            limit = _NO_LIMIT if depth == 1 else self._budget(start, used, _NO_LIMIT)
            if limit == 0:
                break
            ctx = new_context(limit)
            killers[0, 0] = best
            t0 = time.perf_counter()
            v = alphabeta(
                cells,
                offsets,
                colour,
                me,
                opp,
                depth,
                -2.0 * WIN,
                2.0 * WIN,
                0,
                killers,
                ctx,
                K1,
                k2,
                cfg.chambers,
                cfg.parity,
                -cfg.contempt,
                ws,
                fws,
            )
            used += int(ctx[EVALS])
            if cfg.depth is None and cfg.evals is None:
                self._measure(int(ctx[EVALS]), time.perf_counter() - t0)
            if ctx[ABORTED]:
                break
            best, value, done = int(ctx[BEST]), v, depth
            if abs(v) >= WIN - MAX_PLY or not ctx[HORIZON]:
                break
        return best, done, value, used

    def _fill(
        self,
        cells: NDArray[np.int8],
        offsets: NDArray[np.int64],
        colour: NDArray[np.int8],
        me: int,
        ws: NDArray[np.int32],
        fws: NDArray[np.float64],
        start: float,
    ) -> tuple[int, int, float, int]:
        cfg = self.config
        if not cfg.fill:
            return self._fill_by_estimate(cells, offsets, colour, me, ws, fws)
        target = region_bound(cells, offsets, colour, me, ws)
        best, value, done, used = -1, 0.0, 0, 0
        for depth in range(1, MAX_PLY):
            limit = _NO_LIMIT if depth == 1 else self._budget(start, used, cfg.fill_evals - used)
            if limit <= 0:
                break
            ctx = new_context(limit)
            ctx[TARGET] = target
            t0 = time.perf_counter()
            v = fill_search(
                cells, offsets, colour, me, depth, 0, ctx, cfg.chambers, cfg.parity, ws, fws
            )
            used += int(ctx[EVALS])
            if cfg.depth is None and cfg.evals is None:
                self._measure(int(ctx[EVALS]), time.perf_counter() - t0)
            if ctx[ABORTED]:
                break
            best, value, done = int(ctx[BEST]), v, depth
            if v >= target or not ctx[HORIZON]:
                break
        return best, done, value, used

    def _fill_by_estimate(
        self,
        cells: NDArray[np.int8],
        offsets: NDArray[np.int64],
        colour: NDArray[np.int8],
        me: int,
        ws: NDArray[np.int32],
        fws: NDArray[np.float64],
    ) -> tuple[int, int, float, int]:
        """No endgame search (``fill=False``): the move after which ``fill_estimate`` is best,
        ties to the square with fewer free neighbours (hugging walls)."""
        cfg = self.config
        best, best_key = -1, (-1.0, 0)
        for d in range(4):
            v = me + int(offsets[d])
            if cells[v] != 0:
                continue
            cells[v] = 1
            est = fill_estimate(cells, offsets, colour, v, cfg.chambers, cfg.parity, ws, fws)
            key = (est, -free_degree(cells, offsets, v))
            cells[v] = 0
            if key > best_key:
                best, best_key = d, key
        return best, 1, 1.0 + best_key[0], 4


def _block_next_squares(
    cells: NDArray[np.int8], offsets: NDArray[np.int64], me: int, heads: list[int]
) -> None:
    """Mark every free square the players at ``heads`` could enter next turn as an obstacle,
    unless that leaves the player at ``me`` without a free square (then change nothing)."""
    blocked = {h + int(off) for h in heads for off in offsets if cells[h + off] == 0}
    if all(cells[me + off] != 0 or me + int(off) in blocked for off in offsets):
        return
    for v in blocked:
        cells[v] = 4


@functools.cache
def warm_up() -> None:
    """Load (or compile, the first time on a machine) every search kernel on a tiny board, so the
    first real move is not charged for it."""
    t0 = time.perf_counter()
    height, width = 6, 6
    cells = np.full(height * width, -1, dtype=np.int8)
    for r in range(1, height - 1):
        cells[r * width + 1 : r * width + width - 1] = 0
    h0, h1 = 1 * width + 1, 4 * width + 4
    cells[h0], cells[h1] = 1, 2
    offsets, colour = _board_constants(height, width)
    ws, fws = new_workspace(cells.size)
    killers = np.zeros((MAX_PLY, 2), dtype=np.int64)
    for chambers in (False, True):
        alphabeta(
            cells,
            offsets,
            colour,
            h0,
            h1,
            2,
            -2 * WIN,
            2 * WIN,
            0,
            killers,
            new_context(_NO_LIMIT),
            K1,
            K2,
            chambers,
            True,
            0.0,
            ws,
            fws,
        )
        fill_search(
            cells, offsets, colour, h0, 2, 0, new_context(_NO_LIMIT), chambers, True, ws, fws
        )
    connected(cells, offsets, h0, h1, ws)
    region_bound(cells, offsets, colour, h0, ws)
    fill_estimate(cells, offsets, colour, h0, True, True, ws, fws)
    free_degree(cells, offsets, h0)
    logger.debug("minimax kernels ready in %.2f s", time.perf_counter() - t0)
