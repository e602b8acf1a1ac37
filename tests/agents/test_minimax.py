"""The minimax agent on hand-made positions, its budgets, levels and the endgame fill."""

from __future__ import annotations

import numpy as np
import pytest

from agents.minimax import LEVELS, MinimaxAgent, MinimaxConfig, level_config
from agents.search.alphabeta import WIN
from agents.search.board import direction_offsets
from agents.search.evaluate import SEPARATED, new_workspace, region_bound, square_colours
from agents.simple import GreedyAgent
from tron.maps import Map, builtin_maps, get_map, parse_map
from tron.rules import Direction, TronBatch

# Player 1 (top) must come down its corridor; moving east now walls it into a 2-square pocket
# while player 0 keeps 3 squares: a win in 3 turns. North or west lets player 1 out.
FORCED_WIN = "6 3\n##2###\n#  ###\n 1    \n"
# North (into the gap) looks best by space (3 squares beyond it), but player 1 answers west and
# the gap becomes a dead end: lost next turn. East holds a draw (3 squares each).
ONE_MOVE_TRAP = "6 3\n   2  \n## ###\n  1   \n"


def _batch(text: str) -> TronBatch:
    return TronBatch([parse_map(text)], 1)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_minimax__finds_the_forced_win(depth: int) -> None:
    agent = MinimaxAgent(MinimaxConfig(depth=depth))
    assert agent.choose(_batch(FORCED_WIN), 0, 0) == Direction.E
    assert agent.last is not None
    assert agent.last.value >= SEPARATED  # a won race from depth 1 on
    if depth >= 3:
        assert agent.last.value >= WIN - 3  # proven: the pocket runs out on turn 3


def test_minimax__forced_win_is_won_on_the_engine() -> None:
    """Play it out: minimax (depth 3) as player 0 wins against every reply of player 1."""
    for replies in ([Direction.S, Direction.W], [Direction.S, Direction.S]):
        batch = _batch(FORCED_WIN)
        agent = MinimaxAgent(MinimaxConfig(depth=3))
        turn = 0
        while not batch.done[0]:
            m0 = agent.choose(batch, 0, 0)
            m1 = replies[turn] if turn < len(replies) else Direction.N
            batch.step(np.array([[m0, m1]]))
            turn += 1
        assert batch.winner[0] == 0


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_minimax__avoids_the_one_move_trap(depth: int) -> None:
    batch = _batch(ONE_MOVE_TRAP)
    agent = MinimaxAgent(MinimaxConfig(depth=depth))
    assert agent.choose(batch, 0, 0) == Direction.E
    # The trap is real: greedy walks into it and the engine confirms it loses.
    assert GreedyAgent().act(batch, 0, np.array([0]))[0] == Direction.N
    batch.step(np.array([[Direction.N, Direction.W]]))
    batch.step(np.array([[Direction.N, Direction.W]]))
    assert batch.done[0] and batch.winner[0] == 1


def test_minimax__contempt_avoids_a_head_on_draw_it_can_afford() -> None:
    """room15 after three moves each: the heads (7, 6) and (7, 8) face each other across (7, 7).
    Taking it risks a head-on draw; leaving it to the other side costs about 29 (Voronoi units).
    Without contempt the draw is better; with contempt 100 it is not (the default 10 still
    takes the square: a 29-unit loss is worse than a draw)."""
    batch = TronBatch([get_map("room15")], 1)
    for _ in range(3):
        batch.step(np.array([[Direction.E, Direction.W]]))
    plain = MinimaxAgent(MinimaxConfig(depth=3, contempt=0.0))
    assert plain.choose(batch, 0, 0) == Direction.E
    assert plain.last is not None and plain.last.value == 0.0
    default = MinimaxAgent(MinimaxConfig(depth=3))
    assert default.choose(batch, 0, 0) == Direction.E
    assert default.last is not None and default.last.value == -10.0
    proud = MinimaxAgent(MinimaxConfig(depth=3, contempt=100.0))
    assert proud.choose(batch, 0, 0) in (Direction.N, Direction.S)
    assert proud.last is not None and -100.0 < proud.last.value < -20.0


def test_minimax__fixed_depth_and_eval_budgets_are_deterministic() -> None:
    batch = TronBatch([get_map("pillars")], 1)
    batch.step(np.array([[Direction.E, Direction.W]]))
    for config in (MinimaxConfig(depth=4), MinimaxConfig(evals=3000)):
        runs = []
        for _ in range(2):
            agent = MinimaxAgent(config)
            runs.append([agent.choose(batch, seat, 0) for seat in (0, 1)])
            assert agent.last is not None
            runs[-1].append(agent.last.evals)  # type: ignore[arg-type]
        assert runs[0] == runs[1]


def test_minimax__time_budget_discards_the_unfinished_iteration() -> None:
    """A 1 ms budget on an open 25x25 board: the deepest completed iteration is shallow, and it
    is the one that chose the move (the aborted one spent evaluations but left no trace)."""
    batch = TronBatch([get_map("room25")], 1)
    agent = MinimaxAgent(MinimaxConfig(ms=1.0))
    move = agent.choose(batch, 0, 0)
    info = agent.last
    assert info is not None and info.mode == "alphabeta"
    assert 1 <= info.depth < 10
    fixed = MinimaxAgent(MinimaxConfig(depth=info.depth))
    assert fixed.choose(batch, 0, 0) == move
    assert fixed.last is not None and fixed.last.value == pytest.approx(info.value)


def test_minimax__plays_legal_moves_in_3_and_4_player_games() -> None:
    """The nearest-opponent fallback: every move of a 4-player game is one a player survives
    whenever a safe square exists (no pointless crash)."""
    for name in ("room16-4p", "arena21-4p", "pillars21-3p"):
        game_map = get_map(name)
        batch = TronBatch([game_map], 1)
        agent = MinimaxAgent(MinimaxConfig(depth=2))
        flat = batch.cells.reshape(-1)
        while not batch.done[0]:
            moves = np.zeros((1, batch.n_players), dtype=np.int64)
            for p in np.flatnonzero(batch.alive[0]):
                moves[0, p] = agent.choose(batch, int(p), 0)
                safe = [flat[batch.heads[0, p] + batch.offsets[d]] == 0 for d in range(4)]
                assert safe[moves[0, p]] or not any(safe)
            batch.step(moves)


def test_levels__are_documented_and_ordered() -> None:
    assert sorted(LEVELS) == [1, 2, 3, 4, 5]
    assert LEVELS[1].depth == 1 and not LEVELS[1].chambers and not LEVELS[1].edges
    assert [LEVELS[k].depth for k in range(1, 5)] == [1, 1, 2, 3]
    assert LEVELS[5] == MinimaxConfig()  # the default is the strongest level
    assert LEVELS[5].ms == 100.0 and LEVELS[5].contempt == 10.0
    assert level_config(3, ms=50.0) == MinimaxConfig(ms=50.0, chambers=False, contempt=0.0)
    assert level_config(5, depth=2).depth == 2
    with pytest.raises(ValueError, match=r"level must be 1\.\.5"):
        level_config(6)
    with pytest.raises(ValueError, match="depth must be"):
        MinimaxConfig(depth=0)


# ---------------------------------------------------------------------------- endgame fill

# The longest path from player 0's start on ``maze``, alone: 179 moves (an exhaustive
# branch-and-bound pruned by the region's parity bound, which is admissible). Its parity bound,
# 199, cannot be reached: the maze's dead ends cost 20 squares to any path.
_MAZE_LONGEST = 179


def _alone(game_map: Map) -> Map:
    """The map with player 1 moved to a sealed pocket below it: player 0 is alone."""
    h, w = game_map.walls.shape
    walls = np.ones((h + 2, w), dtype=bool)
    walls[:h] = game_map.walls
    walls[h + 1, 0] = False
    return Map(f"{game_map.name}-alone", walls, (game_map.starts[0], (h + 1, 0)))


@pytest.mark.parametrize("name", [m.name for m in builtin_maps()])
def test_fill__alone_fills_at_least_95_percent_of_the_bound(name: str) -> None:
    """Player 0 alone in its region moves until it crashes; the moves made are compared with the
    region's checkerboard-parity bound (on ``maze``, with the true longest path, see above)."""
    batch = TronBatch([_alone(get_map(name))], 1)
    offsets = direction_offsets(batch.width)
    flat = batch.cells.reshape(-1)
    ws, _ = new_workspace(flat.size)
    colour = square_colours(batch.height, batch.width)
    bound = region_bound(flat.copy(), offsets, colour, int(batch.heads[0, 0]), ws)
    if name == "maze":
        assert bound == 199
        bound = _MAZE_LONGEST
    agent = MinimaxAgent(MinimaxConfig(depth=1, fill_evals=150))
    moves = 0
    while True:
        d = agent.choose(batch, 0, 0)
        dest = batch.heads[0, 0] + offsets[d]
        if flat[dest] != 0:
            break
        # Step player 0 alone (the engine would end the game: player 1 is boxed in).
        flat[dest] = 1
        batch.heads[0, 0] = dest
        batch.last_move[0, 0] = d
        moves += 1
        assert agent.last is not None and agent.last.mode in ("fill", "forced")
    assert moves >= 0.95 * bound, f"{name}: {moves} of {bound}"
