"""Scripted bots on hand-made positions."""

from __future__ import annotations

import numpy as np

from agents.simple import ChaserAgent, GreedyAgent, RandomAgent, WallHuggerAgent
from tron.maps import get_map, parse_map
from tron.rules import Direction, TronBatch

N, E, S, W = Direction.N, Direction.E, Direction.S, Direction.W
ONE = np.array([0])


def _batch(text: str) -> TronBatch:
    return TronBatch([parse_map(text)], 1)


def test_random__only_safe_moves_uniformly_and_seeded() -> None:
    batch = _batch("5 1\n 1 2 \n")  # from (0, 1) only west and east are safe
    games = np.zeros(400, dtype=np.intp)
    moves = RandomAgent(seed=3).act(batch, 0, games)
    assert set(moves.tolist()) == {E, W}
    assert 150 < (moves == E).sum() < 250
    assert np.array_equal(moves, RandomAgent(seed=3).act(batch, 0, games))
    assert not np.array_equal(moves, RandomAgent(seed=4).act(batch, 0, games))
    boxed = _batch("3 1\n12 \n")  # no safe move at all: still a Direction
    assert RandomAgent().act(boxed, 0, ONE)[0] in range(4)


def test_greedy__takes_the_side_with_more_space() -> None:
    # from (1, 2): west leaves 1 more square, east 3
    batch = _batch("7 4\n#######\n  1    \n#######\n2      \n")
    assert GreedyAgent().act(batch, 0, ONE)[0] == E


def test_greedy__counts_only_the_part_it_can_use() -> None:
    """Heading south from (0, 3) into the middle of the row-1 corridor would cut it: 4 squares
    on either side, of which it could use one side. West or east keeps all 8 reachable. A plain
    flood fill from (1, 3) counts all 8 there too, and the heading would win the tie."""
    batch = _batch("7 4\n## 1 ##\n       \n#######\n2      \n")
    batch.last_move[0, 0] = S
    assert GreedyAgent().act(batch, 0, ONE)[0] == E
    batch.last_move[0, 0] = W  # a tie between east and west goes to the heading
    assert GreedyAgent().act(batch, 0, ONE)[0] == W


def test_wallhugger__runs_clockwise_along_walls() -> None:
    batch = _batch("5 4\n1    \n     \n     \n    2\n")
    bot = WallHuggerAgent()
    path = []
    for _ in range(5):
        d = bot.act(batch, 0, ONE)[0]
        path.append(Direction(int(d)))
        # player 1 stays out of the way: it walks its bottom row west
        batch.step(np.array([[d, W]]))
    # east along the top wall to the corner, then down the east wall
    assert path == [E, E, E, E, S]


def test_wallhugger__avoids_a_dead_end_while_it_has_a_choice() -> None:
    # heading east at (1,1): east (1,2) is a dead end (walls all round), south keeps going.
    batch = _batch("5 4\n#####\n#1 ##\n# ###\n#  2#\n")
    batch.last_move[0, 0] = E
    assert WallHuggerAgent().act(batch, 0, ONE)[0] == S


def test_chaser__heads_for_the_opponent() -> None:
    batch = TronBatch([get_map("room15")], 1)
    bot = ChaserAgent()
    assert bot.act(batch, 0, ONE)[0] == E  # player 1 is due east
    assert bot.act(batch, 1, ONE)[0] == W
    # the way to player 1 is west then down through (1, 2); greedy prefers the open east
    batch = _batch("7 3\n   1   \n## # ##\n2      \n")
    assert bot.act(batch, 0, ONE)[0] == W
    assert GreedyAgent().act(batch, 0, ONE)[0] == E


def test_chaser__plays_greedy_once_walled_apart() -> None:
    batch = _batch("7 4\n## 1 ##\n       \n#######\n2      \n")
    batch.last_move[0, 0] = S
    assert ChaserAgent().act(batch, 0, ONE)[0] == GreedyAgent().act(batch, 0, ONE)[0] == E


def test_bots__act_on_many_games_at_once() -> None:
    batch = TronBatch([get_map("room15"), get_map("pillars")], 6)
    batch.reset(map_index=np.array([0, 1, 0, 1, 0, 1]))
    games = np.array([0, 2, 3, 5])
    for bot in (RandomAgent(), GreedyAgent(), WallHuggerAgent(), ChaserAgent()):
        moves = bot.act(batch, 1, games)
        assert moves.shape == (4,) and moves.dtype == np.int8
        single = [bot.act(batch, 1, np.array([g]))[0] for g in games]
        if not isinstance(bot, RandomAgent):
            assert moves.tolist() == single
