"""The compiled search kernels: the board model against the engine, and hand-computed scores."""

from __future__ import annotations

import numpy as np
import pytest

from agents.search.alphabeta import (
    WIN,
    alphabeta,
    new_context,
    rollout,
)
from agents.search.board import (
    BOTH_CRASH,
    CONTINUE,
    FIRST_CRASHES,
    SECOND_CRASHES,
    direction_offsets,
    largest_part,
    transition,
)
from agents.search.evaluate import (
    K1,
    K2,
    SCRATCH,
    SEPARATED,
    evaluate,
    fill_estimate,
    new_workspace,
    parity_bound,
    region_bound,
    square_colours,
)
from tron.maps import Map, parse_map
from tron.rules import TronBatch


def _board(text: str) -> tuple[TronBatch, np.ndarray, np.ndarray, np.ndarray]:
    """A one-game batch of a map text, its flat cells, offsets and square colours."""
    batch = TronBatch([parse_map(text)], 1)
    cells = batch.cells[0].reshape(-1).copy()
    return (
        batch,
        cells,
        direction_offsets(batch.width),
        square_colours(batch.height, batch.width),
    )


def _random_map(rng: np.random.Generator) -> Map:
    h, w = rng.integers(3, 8, size=2)
    walls = rng.random((h, w)) < 0.2
    free = np.argwhere(~walls)
    while len(free) < 2:
        walls[:] = False
        free = np.argwhere(~walls)
    a, b = rng.choice(len(free), size=2, replace=False)
    return Map("random", walls, (tuple(free[a]), tuple(free[b])))


# ---------------------------------------------------------------------------- the rules


def test_transition__agrees_with_the_engine_on_thousands_of_random_games() -> None:
    """Every one of the 16 move pairs of every turn of 2000 random games (random maps, random
    moves, crashes included): the search's outcome is the engine's, and so is the board after."""
    rng = np.random.default_rng(0)
    expected = {
        (False, False): CONTINUE,
        (True, False): FIRST_CRASHES,
        (False, True): SECOND_CRASHES,
        (True, True): BOTH_CRASH,
    }
    pairs = np.array([(m0, m1) for m0 in range(4) for m1 in range(4)])
    checked = 0
    for _ in range(100):
        maps = [_random_map(rng) for _ in range(20)]
        games = TronBatch(maps, 20)
        games.reset(map_index=np.arange(20))
        offsets = direction_offsets(games.width)
        probe = TronBatch(maps, 20 * 16)
        while not games.done.all():
            running = np.flatnonzero(~games.done)
            # Every pair from the same position: copy each running game 16 times.
            for name in ("cells", "heads", "alive", "done", "winner", "turn", "map_index"):
                getattr(probe, name)[:] = np.repeat(getattr(games, name), 16, axis=0)
            result = probe.step(np.tile(pairs, (20, 1)))
            flat = games.cells.reshape(20, -1)
            for g in running:
                h0, h1 = games.heads[g]
                for k, (m0, m1) in enumerate(pairs):
                    crashed = tuple(result.crashed[16 * g + k])
                    got = transition(flat[g], h0 + offsets[m0], h1 + offsets[m1])
                    assert got == expected[crashed], (g, m0, m1)
                    checked += 1
            # Advance with random moves; where the game goes on, the search's board update
            # (both destinations become obstacles) must give the engine's board.
            moves = rng.integers(0, 4, size=(20, 2))
            before = flat.copy()
            step = games.step(moves)
            for g in running:
                if step.ended[g]:
                    continue
                model = before[g] != 0
                for p in (0, 1):
                    model[games.heads[g, p]] = True
                assert np.array_equal(model, flat[g] != 0)
    assert checked > 2000 * 16


def test_alphabeta__proven_results_hold_on_the_engine() -> None:
    """Whenever a depth-1 search proves a win or a loss, every engine continuation confirms it."""
    rng = np.random.default_rng(1)
    proven = 0
    for _ in range(1000):
        game_map = _random_map(rng)
        batch = TronBatch([game_map], 1)
        flat = batch.cells.reshape(-1)
        # a random number of random safe moves: cramped positions where proofs are common
        for _ in range(int(rng.integers(0, 12))):
            if batch.done[0]:
                break
            moves = []
            for p in (0, 1):
                safe = [d for d in range(4) if flat[batch.heads[0, p] + batch.offsets[d]] == 0]
                moves.append(rng.choice(safe) if safe else 0)
            batch.step(np.array([moves]))
        if batch.done[0]:
            continue
        cells = batch.cells[0].reshape(-1).copy()
        offsets = direction_offsets(batch.width)
        colour = square_colours(batch.height, batch.width)
        ws, fws = new_workspace(cells.size)
        ctx = new_context(1 << 40)
        h0, h1 = (int(h) for h in batch.heads[0])
        killers = np.zeros((256, 2), dtype=np.int64)
        value = alphabeta(
            cells, offsets, colour, h0, h1, 1, -2 * WIN, 2 * WIN, 0, killers, ctx, K1, K2,
            True, True, 0.0, ws, fws,
        )  # fmt: skip
        if abs(value) < WIN - 10:
            continue
        proven += 1
        # Outcome of each of our moves against the opponent's best reply, on the engine.
        worst = []
        for m0 in range(4):
            scores = []
            for m1 in range(4):
                probe = TronBatch([game_map], 1)
                probe.cells[:] = batch.cells
                probe.heads[:] = batch.heads
                probe.step(np.array([[m0, m1]]))
                scores.append(probe.outcome(0)[0] if probe.done[0] else 0.5)
            worst.append(min(scores))
        if value > 0:
            assert max(worst) == 1.0  # some move wins against every reply
        else:
            assert max(worst) == 0.0  # every move loses against some reply
    assert proven > 50


# ---------------------------------------------------------------------------- evaluation


def test_evaluate__voronoi_squares_and_edges_by_hand() -> None:
    """``1   2 `` (one row): player 0 owns (0,1); (0,2) is equally far from both (neutral);
    player 1 owns (0,3) and (0,5). Free neighbours: (0,1) 1, (0,3) 1, (0,5) 0. So
    N0 - N1 = 1 - 2 and E0 - E1 = 1 - 1: the score is -K1."""
    _, cells, offsets, colour = _board("6 1\n1   2 \n")
    ws, fws = new_workspace(cells.size)
    h0, h1 = 1 * 8 + 1, 1 * 8 + 5
    score = evaluate(cells, offsets, colour, h0, h1, K1, K2, False, True, 0.0, ws, fws)
    assert score == pytest.approx(-K1)
    # Squares only (K2 = 0): the same, edges do not matter here.
    assert evaluate(
        cells, offsets, colour, h0, h1, K1, 0.0, False, True, 0.0, ws, fws
    ) == pytest.approx(-K1)
    # With chambers, player 1's two squares are dead ends on either side of its head: it can
    # only use one, the better (0,3) with weight K1 + K2. Player 0 has (0,1), also K1 + K2.
    assert evaluate(
        cells, offsets, colour, h0, h1, K1, K2, True, True, 0.0, ws, fws
    ) == pytest.approx(0.0)
    # The workspace is left clean: the same call gives the same score.
    assert evaluate(
        cells, offsets, colour, h0, h1, K1, K2, False, True, 0.0, ws, fws
    ) == pytest.approx(-K1)


def test_evaluate__separated_race_by_hand() -> None:
    """``1  #   2``: walled apart, player 0 can make 2 moves, player 1 can make 3."""
    _, cells, offsets, colour = _board("8 1\n1  #   2\n")
    ws, fws = new_workspace(cells.size)
    h0, h1 = 1 * 10 + 1, 1 * 10 + 8
    score = evaluate(cells, offsets, colour, h0, h1, K1, K2, True, True, 0.0, ws, fws)
    assert score == -SEPARATED - 1
    score = evaluate(cells, offsets, colour, h1, h0, K1, K2, False, False, 0.0, ws, fws)
    assert score == SEPARATED + 1


def test_parity_bound__by_hand() -> None:
    # from a head of colour c: squares of the other colour come first on any path
    assert parity_bound(same=2, other=3) == 5
    assert parity_bound(same=3, other=3) == 6
    assert parity_bound(same=5, other=1) == 2
    assert parity_bound(same=0, other=4) == 1


def test_fill_estimate__dead_ends_and_parity() -> None:
    """A T: the head (row 1) can go into the left arm (3 squares) or the right arm (5), not both;
    the square above the head is a third dead end. The estimate is the longest arm: 5."""
    text = "9 4\n### #####\n   1     \n#########\n2        \n"
    _, cells, offsets, colour = _board(text)
    ws, fws = new_workspace(cells.size)
    head = 2 * 11 + 4
    assert fill_estimate(cells, offsets, colour, head, True, True, ws, fws) == 5.0
    # Without chambers the whole region counts (1 + 3 + 5 squares), parity-bounded: 3 squares
    # have the head's colour, 6 the other, so at most 2 * 3 + 1 = 7 moves; 9 without parity.
    assert fill_estimate(cells, offsets, colour, head, False, True, ws, fws) == 7.0
    assert fill_estimate(cells, offsets, colour, head, False, False, ws, fws) == 9.0
    assert region_bound(cells, offsets, colour, head, ws) == 7


def test_fill_estimate__parity_bound_of_a_room() -> None:
    """A 3x3 room with the head in a corner: 4 free squares share its colour, 4 do not, so at
    most 8 moves (and 8 are possible: a snake)."""
    _, cells, offsets, colour = _board("3 3\n1  \n   \n  2\n")
    cells[3 * 5 + 3] = 0  # free the '2' square: the room is the head's alone
    ws, fws = new_workspace(cells.size)
    head = 1 * 5 + 1
    assert fill_estimate(cells, offsets, colour, head, True, True, ws, fws) == 8.0
    assert rollout(cells, offsets, colour, head, ws[SCRATCH], ws, fws) == 8


def test_largest_part__a_cut_square_keeps_one_side() -> None:
    """Entering the middle of a corridor cuts it: 3 squares on one side, 2 on the other."""
    _, cells, offsets, _ = _board("7 4\n#######\n1      \n#######\n2      \n")
    ws, _ = new_workspace(cells.size)
    v = 2 * 9 + 4  # (1, 3): (1, 4..6) on its right, (1, 1..2) on its left
    assert largest_part(cells, offsets, v, ws[0], ws[2]) == 3
    assert (ws[0] == ws[0].max()).all()  # distances restored
