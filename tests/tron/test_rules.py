"""The rules engine: exact moves, every collision, multi-player endings, and batch properties.

The property tests compare ``TronBatch`` against ``Reference``, the 2010 rules written out the
obvious way for one game (sets and dicts, no padding, no flat indices), so a bug has to be made twice
in two different shapes to pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tron.maps import Map, builtin_maps, parse_map, random_map
from tron.rules import (
    DELTAS,
    EMPTY,
    WALL,
    Cause,
    Direction,
    Relative,
    StepResult,
    TronBatch,
    relative_to_absolute,
)

N, E, S, W = Direction.N, Direction.E, Direction.S, Direction.W


def single(text: str, n_players: int | None = None) -> TronBatch:
    return TronBatch([parse_map(text, "test")], 1, n_players=n_players)


def play(b: TronBatch, *moves: int, forfeit: Sequence[bool] | None = None) -> StepResult:
    """One turn of game 0 of ``b``."""
    f = None if forfeit is None else np.array([forfeit], dtype=bool)
    return b.step(np.array([moves], dtype=np.int8), forfeit=f)


def heads(b: TronBatch, game: int = 0) -> list[tuple[int, int]]:
    return [(int(r), int(c)) for r, c in b.head_positions()[game]]


def causes(b: TronBatch, game: int = 0) -> list[Cause]:
    return [Cause(int(x)) for x in b.cause[game]]


# ------------------------------------------------------------------ directions and moves

ROOM5 = "5 5\n     \n     \n  1  \n     \n    2\n"


@pytest.mark.parametrize(("move", "expected"), [(N, (1, 2)), (E, (2, 3)), (S, (3, 2)), (W, (2, 1))])
def test_step__exact_head_after_each_move(move: Direction, expected: tuple[int, int]) -> None:
    b = single(ROOM5)
    result = play(b, move, N)
    assert heads(b) == [expected, (3, 4)]
    board = b.board(0)
    assert board[2, 2] == 1 and board[expected] == 1  # the old head stays as trail
    assert board[4, 4] == 2 and board[3, 4] == 2
    assert (board != EMPTY).sum() == 4
    assert b.last_move[0].tolist() == [move, N]
    assert b.turn[0] == 1 and b.alive[0].all() and not b.done[0]
    assert not result.crashed.any() and not result.ended.any()


def test_step__a_path_of_moves() -> None:
    b = single(ROOM5)
    path = []
    for p0, p1 in zip((N, N, E, E, S, S, S, W), (W, W, W, W, N, N, N, N), strict=True):
        play(b, p0, p1)
        path.append(heads(b))
    assert [h[0] for h in path] == [(1, 2), (0, 2), (0, 3), (0, 4), (1, 4), (2, 4), (3, 4), (3, 3)]
    assert [h[1] for h in path] == [(4, 3), (4, 2), (4, 1), (4, 0), (3, 0), (2, 0), (1, 0), (0, 0)]
    assert b.alive[0].all() and b.turn[0] == 8
    assert (b.board(0) > 0).sum() == 18


def test_direction__values_opposites_deltas_protocol_digits() -> None:
    assert [int(d) for d in Direction] == [0, 1, 2, 3]
    assert [d.opposite for d in Direction] == [S, W, N, E]
    assert DELTAS.tolist() == [[-1, 0], [0, 1], [1, 0], [0, -1]]
    # The AI Challenge protocol: 1 North, 2 East, 3 South, 4 West.
    assert [d.value + 1 for d in (N, E, S, W)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("heading", "action", "expected"),
    [
        (N, Relative.LEFT, W),
        (N, Relative.STRAIGHT, N),
        (N, Relative.RIGHT, E),
        (E, Relative.LEFT, N),
        (E, Relative.STRAIGHT, E),
        (E, Relative.RIGHT, S),
        (S, Relative.LEFT, E),
        (S, Relative.STRAIGHT, S),
        (S, Relative.RIGHT, W),
        (W, Relative.LEFT, S),
        (W, Relative.STRAIGHT, W),
        (W, Relative.RIGHT, N),
    ],
)
def test_relative_to_absolute(heading: Direction, action: Relative, expected: Direction) -> None:
    assert int(relative_to_absolute(heading, action)) == expected


def test_relative_to_absolute__broadcasts() -> None:
    out = relative_to_absolute(np.array([[N], [W]]), np.array([Relative.LEFT, Relative.RIGHT]))
    assert out.dtype == np.int8
    assert out.tolist() == [[W, E], [S, N]]


# ------------------------------------------------------------------ collisions, 2 players


def assert_over(b: TronBatch, winner: int, outcome: list[float], crash_turn: list[int]) -> None:
    assert b.done[0]
    assert b.winner[0] == winner
    assert b.outcome(0) == outcome
    assert b.crash_turn[0].tolist() == crash_turn


def test_crash__wall() -> None:
    b = single("5 1\n1#  2\n")
    result = play(b, E, W)
    assert result.crashed.tolist() == [[True, False]] and result.ended.tolist() == [True]
    assert causes(b) == [Cause.WALL, Cause.NONE]
    assert heads(b) == [(0, 0), (0, 3)]  # the crashed player stays where it was
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[1, -1])


@pytest.mark.parametrize("move", [N, S, W])
def test_crash__off_the_board_is_a_wall(move: Direction) -> None:
    b = single("5 1\n1   2\n")
    play(b, move, W)
    assert causes(b) == [Cause.WALL, Cause.NONE]
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[1, -1])


def test_crash__own_trail() -> None:
    b = single("4 4\n1   \n    \n    \n   2\n")
    for p0, p1 in ((E, N), (S, N), (W, W)):
        play(b, p0, p1)
        assert not b.done[0]
    assert heads(b) == [(1, 0), (1, 2)]
    play(b, N, S)  # back onto its own start square
    assert causes(b) == [Cause.TRAIL, Cause.NONE]
    assert heads(b) == [(1, 0), (2, 2)]
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[4, -1])


@pytest.mark.parametrize("move", list(Direction))
def test_crash__reversing(move: Direction) -> None:
    b = single(ROOM5)
    play(b, move, N)
    play(b, move.opposite, N)
    assert causes(b) == [Cause.TRAIL, Cause.NONE]
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[2, -1])


def test_crash__opponent_trail() -> None:
    b = single("5 3\n1 2  \n     \n     \n")
    play(b, S, S)
    play(b, E, S)
    assert heads(b) == [(1, 1), (2, 2)]
    play(b, E, E)  # onto (1, 2), where player 1 passed on turn 1
    assert causes(b) == [Cause.TRAIL, Cause.NONE]
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[3, -1])


def test_crash__head_on_onto_the_same_square_is_a_draw() -> None:
    b = single("5 1\n1   2\n")
    play(b, E, W)
    play(b, E, W)  # both onto (0, 2)
    assert causes(b) == [Cause.HEAD_ON, Cause.HEAD_ON]
    assert b.board(0)[0, 2] == EMPTY  # nobody got there
    assert heads(b) == [(0, 1), (0, 3)]
    assert_over(b, winner=-1, outcome=[0.5, 0.5], crash_turn=[2, 2])


def test_crash__head_on_onto_a_wall_is_a_wall_crash() -> None:
    b = single("3 1\n1#2\n")
    play(b, E, W)
    assert causes(b) == [Cause.WALL, Cause.WALL]
    assert_over(b, winner=-1, outcome=[0.5, 0.5], crash_turn=[1, 1])


def test_crash__swapping_squares_is_a_draw() -> None:
    b = single("4 1\n 12 \n")
    play(b, E, W)  # each onto the other's head, which is trail
    assert causes(b) == [Cause.TRAIL, Cause.TRAIL]
    assert heads(b) == [(0, 1), (0, 2)]
    assert_over(b, winner=-1, outcome=[0.5, 0.5], crash_turn=[1, 1])


def test_crash__into_the_square_another_just_left() -> None:
    b = single("4 1\n12  \n")
    play(b, E, E)  # player 0 follows onto player 1's old head: heads are trail
    assert causes(b) == [Cause.TRAIL, Cause.NONE]
    assert heads(b) == [(0, 0), (0, 2)]
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[1, -1])


def test_crash__both_on_the_same_turn_for_different_reasons_is_a_draw() -> None:
    b = single("4 1\n1  2\n")
    play(b, E, W)
    play(b, N, E)  # off the board; back onto its own trail
    assert causes(b) == [Cause.WALL, Cause.TRAIL]
    assert_over(b, winner=-1, outcome=[0.5, 0.5], crash_turn=[2, 2])


def test_first_move_may_go_anywhere_open() -> None:
    for move in Direction:
        b = single(ROOM5)
        play(b, move, N)
        assert b.alive[0].all()


# ------------------------------------------------------------------ 3 and 4 players

ROOM5_4P = "5 5\n1   2\n     \n     \n     \n4   3\n"


def test_three_players__game_goes_on_after_one_crash_and_ends_with_one_left() -> None:
    b = single("5 5\n1   2\n     \n     \n     \n    3\n")
    play(b, N, S, W)  # player 0 leaves the board
    assert causes(b) == [Cause.WALL, Cause.NONE, Cause.NONE]
    assert not b.done[0] and b.winner[0] == -1
    with pytest.raises(ValueError, match="game 0 is still running"):
        b.outcome(0)
    play(b, -7, S, W)  # a dead player's action is ignored, whatever it is
    assert heads(b) == [(0, 0), (2, 4), (4, 2)]
    assert not b.done[0]
    result = play(b, 0, E, W)
    assert result.ended.tolist() == [True]
    assert causes(b) == [Cause.WALL, Cause.WALL, Cause.NONE]
    assert_over(b, winner=2, outcome=[0.0, 0.0, 1.0], crash_turn=[1, 3, -1])


def test_three_players__head_on_of_two_ends_the_game_for_the_third() -> None:
    b = single("5 3\n1 2  \n     \n    3\n")
    play(b, E, W, N)
    assert causes(b) == [Cause.HEAD_ON, Cause.HEAD_ON, Cause.NONE]
    assert heads(b)[2] == (1, 4)
    assert_over(b, winner=2, outcome=[0.0, 0.0, 1.0], crash_turn=[1, 1, -1])


def test_three_players__draw_among_the_last_ones_who_crash_together() -> None:
    b = single("5 3\n1    \n     \n2   3\n")
    play(b, N, E, W)
    assert not b.done[0]
    play(b, S, E, W)  # both onto (2, 2)
    assert causes(b) == [Cause.WALL, Cause.HEAD_ON, Cause.HEAD_ON]
    assert_over(b, winner=-1, outcome=[0.0, 0.5, 0.5], crash_turn=[1, 2, 2])


def test_three_players__all_crash_at_once() -> None:
    b = single("3 3\n1 2\n   \n 3 \n")
    play(b, W, E, S)
    assert_over(b, winner=-1, outcome=[0.5, 0.5, 0.5], crash_turn=[1, 1, 1])


def test_four_players__continues_until_one_is_left_then_draw_of_the_last_two() -> None:
    b = single(ROOM5_4P)
    play(b, W, S, W, N)
    assert b.alive[0].tolist() == [False, True, True, True] and not b.done[0]
    play(b, N, E, W, N)
    assert b.alive[0].tolist() == [False, False, True, True] and not b.done[0]
    play(b, N, N, N, E)
    assert heads(b)[2:] == [(3, 2), (2, 1)] and not b.done[0]
    play(b, N, N, N, E)  # both onto (2, 2)
    assert causes(b) == [Cause.WALL, Cause.WALL, Cause.HEAD_ON, Cause.HEAD_ON]
    assert_over(b, winner=-1, outcome=[0.0, 0.0, 0.5, 0.5], crash_turn=[1, 2, 4, 4])


def test_four_players__three_way_head_on_and_a_survivor() -> None:
    b = single("3 3\n 1 \n2 3\n 4 \n")
    play(b, S, E, W, W)
    assert causes(b) == [Cause.HEAD_ON] * 3 + [Cause.NONE]
    assert_over(b, winner=3, outcome=[0.0, 0.0, 0.0, 1.0], crash_turn=[1, 1, 1, -1])


def test_four_players__four_way_head_on_is_a_four_way_draw() -> None:
    b = single("3 3\n 1 \n2 3\n 4 \n")
    play(b, S, E, W, N)
    assert causes(b) == [Cause.HEAD_ON] * 4
    assert_over(b, winner=-1, outcome=[0.5] * 4, crash_turn=[1] * 4)


def test_fewer_players_than_starts_use_the_first_starts() -> None:
    b = single(ROOM5_4P, n_players=2)
    assert heads(b) == [(0, 0), (0, 4)]
    board = b.board(0)
    assert board[4, 4] == EMPTY and board[4, 0] == EMPTY


# ------------------------------------------------------------------ forfeit, finished games, errors


def test_forfeit__two_players() -> None:
    b = single(ROOM5)
    result = play(b, E, N, forfeit=[True, False])
    assert result.crashed.tolist() == [[True, False]]
    assert causes(b) == [Cause.FORFEIT, Cause.NONE]
    assert heads(b) == [(2, 2), (3, 4)]  # a forfeiting player does not move
    assert b.last_move[0].tolist() == [-1, N]
    assert_over(b, winner=1, outcome=[0.0, 1.0], crash_turn=[1, -1])


def test_forfeit__both_is_a_draw_and_beats_an_illegal_action() -> None:
    b = single(ROOM5)
    play(b, 9, 9, forfeit=[True, True])  # the forfeited players' actions are not checked
    assert causes(b) == [Cause.FORFEIT, Cause.FORFEIT]
    assert_over(b, winner=-1, outcome=[0.5, 0.5], crash_turn=[1, 1])


def test_forfeit__with_a_crash_on_the_same_turn_is_a_draw() -> None:
    b = single("5 1\n1   2\n")
    play(b, W, W, forfeit=[False, True])
    assert causes(b) == [Cause.WALL, Cause.FORFEIT]
    assert_over(b, winner=-1, outcome=[0.5, 0.5], crash_turn=[1, 1])


def test_forfeit__three_players_game_goes_on_and_dead_players_are_ignored() -> None:
    b = single("5 5\n1   2\n     \n     \n     \n    3\n")
    play(b, S, S, W, forfeit=[False, True, False])
    assert causes(b) == [Cause.NONE, Cause.FORFEIT, Cause.NONE] and not b.done[0]
    play(b, S, S, W, forfeit=[False, True, False])  # forfeiting again changes nothing
    assert b.crash_turn[0].tolist() == [-1, 1, -1]
    assert heads(b) == [(2, 0), (0, 4), (4, 2)]


def test_finished_games_are_left_unchanged() -> None:
    b = single("5 1\n1   2\n")
    play(b, N, W)
    before = (b.cells.copy(), b.turn.copy(), b.heads.copy(), b.cause.copy())
    result = play(b, 77, -3, forfeit=[True, True])
    assert not result.crashed.any() and not result.ended.any()
    for x, y in zip(before, (b.cells, b.turn, b.heads, b.cause), strict=True):
        np.testing.assert_array_equal(x, y)
    assert b.outcome(0) == [0.0, 1.0]


@pytest.mark.parametrize("bad", [4, -1, 7, 100])
def test_illegal_action_values_raise(bad: int) -> None:
    b = single(ROOM5)
    with pytest.raises(ValueError, match=rf"illegal action {bad} for player 1 in game 0: use a "):
        play(b, N, bad)
    assert b.turn[0] == 0 and heads(b) == [(2, 2), (4, 4)]  # nothing happened


def test_illegal_action__unsigned_and_in_a_later_game_of_the_batch() -> None:
    b = TronBatch([parse_map(ROOM5)], 3)
    actions = np.zeros((3, 2), dtype=np.uint8)
    actions[2, 0] = 255
    with pytest.raises(ValueError, match="illegal action 255 for player 0 in game 2"):
        b.step(actions)


@pytest.mark.parametrize("actions", [[[0.0, 1.0]], [[np.nan, 1]], [[True, False]]])
def test_non_integer_actions_raise(actions: list[list[float]]) -> None:
    b = single(ROOM5)
    with pytest.raises(ValueError, match=r"actions must be integer Direction values 0\.\.3"):
        b.step(np.array(actions))


def test_actions_of_the_wrong_shape_raise() -> None:
    b = single(ROOM5)
    with pytest.raises(
        ValueError, match=r"actions must have shape \(B, P\) = \(1, 2\), got \(2,\)"
    ):
        b.step(np.array([0, 1]))


def test_actions_as_a_list_of_directions() -> None:
    b = single(ROOM5)
    b.step([[E, N]])  # type: ignore[arg-type]
    assert heads(b) == [(2, 3), (3, 4)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"maps": [], "batch_size": 1}, "at least one map"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"batch_size": 1, "n_players": 1}, r"n_players must be 2\.\.4, got 1"),
        ({"batch_size": 1, "n_players": 5}, r"n_players must be 2\.\.4, got 5"),
        ({"batch_size": 1, "n_players": 3}, "map 'test' has 2 start squares, need 3 for 3 players"),
    ],
)
def test_batch__refuses_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TronBatch(**{"maps": [parse_map(ROOM5, "test")], **kwargs})  # type: ignore[arg-type]


def test_reset__map_index_out_of_range() -> None:
    b = TronBatch([parse_map(ROOM5)], 2)
    with pytest.raises(ValueError, match=r"map_index out of range 0\.\.0"):
        b.reset([1], map_index=1)  # type: ignore[arg-type]


def test_reset__bool_mask_and_indices() -> None:
    b = TronBatch([parse_map(ROOM5)], 4)
    b.step(np.full((4, 2), N, dtype=np.int8))
    b.reset(np.array([False, True, False, True]))
    assert b.turn.tolist() == [1, 0, 1, 0]
    b.reset(np.array([2]))
    assert b.turn.tolist() == [1, 0, 0, 0]
    b.reset(np.array([], dtype=np.int64))
    assert b.turn.tolist() == [1, 0, 0, 0]


def test_batch__maps_of_different_sizes() -> None:
    small, big = parse_map("3 1\n1 2\n", "small"), parse_map(ROOM5, "big")
    b = TronBatch([big, small], 2)
    b.reset(map_index=np.array([0, 1]))
    assert b.board(1).tolist() == [[1, EMPTY, 2]]
    assert b.map_of(1) is small and b.map_of(0) is big
    b.step(np.array([[E, W], [S, W]], dtype=np.int8))
    # In game 1 player 0 went off the small board; the bigger padded board must not let it live.
    assert b.cause[1].tolist() == [Cause.WALL, Cause.NONE] and b.done[1]
    assert heads(b, 0) == [(2, 3), (4, 3)] and not b.done[0]
    assert (b.board(0) == WALL).sum() == 0


# ------------------------------------------------------------------ the reference rules

STEP = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
# How choices 0..255 become moves (see Reference.choose): about 3% raw directions, 0.4% forfeits,
# 16% moves onto any open square (head-ons happen), the rest careful moves so that games last.
RAW_BELOW = 8
CAREFUL_FROM = 48
FORFEIT_CHOICE = 137


@dataclass
class Reference:
    """One game under the 2010 rules, written out plainly."""

    m: Map
    n: int
    trail: dict[tuple[int, int], int] = field(default_factory=dict)
    heads: list[tuple[int, int]] = field(default_factory=list)
    alive: list[bool] = field(default_factory=list)
    cause: list[int] = field(default_factory=list)
    crash_turn: list[int] = field(default_factory=list)
    last_move: list[int] = field(default_factory=list)
    turn: int = 0
    done: bool = False
    winner: int = -1

    def __post_init__(self) -> None:
        self.heads = list(self.m.starts[: self.n])
        self.trail = {s: p for p, s in enumerate(self.heads)}
        self.alive = [True] * self.n
        self.cause = [0] * self.n
        self.crash_turn = [-1] * self.n
        self.last_move = [-1] * self.n

    def target(self, p: int, move: int) -> tuple[int, int]:
        (r, c), (dr, dc) = self.heads[p], STEP[move]
        return r + dr, c + dc

    def blocked(self, sq: tuple[int, int]) -> int:
        r, c = sq
        if not (0 <= r < self.m.height and 0 <= c < self.m.width) or self.m.walls[r, c]:
            return Cause.WALL
        return Cause.TRAIL if sq in self.trail else Cause.NONE

    def step(self, moves: Sequence[int], forfeit: Sequence[bool]) -> None:
        if self.done:
            return
        movers = [p for p in range(self.n) if self.alive[p] and not forfeit[p]]
        dest = {p: self.target(p, moves[p]) for p in movers}
        crash = {p: int(Cause.FORFEIT) for p in range(self.n) if self.alive[p] and forfeit[p]}
        for p in movers:
            why = self.blocked(dest[p])
            if why == Cause.NONE and sum(dest[q] == dest[p] for q in movers) > 1:
                why = Cause.HEAD_ON
            if why != Cause.NONE:
                crash[p] = why
        self.turn += 1
        for p in movers:
            if p not in crash:
                self.trail[dest[p]] = p
                self.heads[p] = dest[p]
                self.last_move[p] = moves[p]
        for p, why in crash.items():
            self.alive[p], self.cause[p], self.crash_turn[p] = False, why, self.turn
        if sum(self.alive) <= 1:
            self.done = True
            self.winner = self.alive.index(True) if any(self.alive) else -1

    def board(self) -> np.ndarray:
        board = np.where(self.m.walls, WALL, EMPTY).astype(np.int8)
        for sq, p in self.trail.items():
            board[sq] = p + 1
        return board

    def choose(self, choices: Sequence[int]) -> tuple[list[int], list[bool]]:
        """Moves for the choices: below ``RAW_BELOW`` a direction (``k % 4``, wherever it
        leads); ``FORFEIT_CHOICE`` a forfeit; below ``CAREFUL_FROM`` a move onto an open square;
        from ``CAREFUL_FROM`` on, one onto an open square no other live head can reach this turn
        when there is one."""
        moves, forfeit = [], []
        for p, k in enumerate(choices):
            safe = [d for d in range(4) if self.blocked(self.target(p, d)) == Cause.NONE]
            contested = {
                self.target(q, d) for q in range(self.n) if q != p and self.alive[q] for d in STEP
            }
            careful = [d for d in safe if self.target(p, d) not in contested]
            pool = careful if k >= CAREFUL_FROM and careful else safe
            moves.append(k % 4 if k < RAW_BELOW or not pool else pool[k % len(pool)])
            forfeit.append(k == FORFEIT_CHOICE)
        return moves, forfeit


def assert_same(b: TronBatch, g: int, ref: Reference) -> None:
    assert heads(b, g) == ref.heads
    assert b.alive[g].tolist() == ref.alive
    assert b.cause[g].tolist() == ref.cause
    assert b.crash_turn[g].tolist() == ref.crash_turn
    assert b.last_move[g].tolist() == ref.last_move
    assert (int(b.turn[g]), bool(b.done[g]), int(b.winner[g])) == (ref.turn, ref.done, ref.winner)
    np.testing.assert_array_equal(b.board(g), ref.board())


small_maps = st.builds(
    lambda h, w, n, density, seed: random_map(h, w, n_players=n, density=density, seed=seed),
    st.integers(5, 9),
    st.integers(5, 9),
    st.integers(2, 4),
    st.sampled_from([0.0, 0.1, 0.25]),
    st.integers(0, 10_000),
)
any_map = st.one_of(small_maps, st.sampled_from(builtin_maps()))


def choices(turns: int, seed: int, players: int = 4) -> list[list[int]]:
    return np.random.default_rng(seed).integers(0, 256, size=(turns, players)).tolist()


# Hypothesis keeps nested lists short; drawing the length and a seed gives games of every length.
choice_rows = st.builds(choices, st.integers(1, 80), st.integers(0, 2**32 - 1))


def resolve(m: Map, rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Turn hypothesis' choices into (T, P) moves and forfeits by playing the reference game."""
    ref = Reference(m, m.n_players)
    moves, forfeits = [], []
    for row in rows:
        mv, ff = ref.choose(row[: m.n_players])
        ref.step(mv, ff)
        moves.append(mv)
        forfeits.append(ff)
    return np.array(moves, dtype=np.int8), np.array(forfeits, dtype=bool)


@settings(max_examples=150, deadline=None)
@given(any_map, choice_rows)
def test_property__engine_matches_the_reference_rules(m: Map, rows: list[list[int]]) -> None:
    moves, forfeits = resolve(m, rows)
    b = TronBatch([m], 1)
    ref = Reference(m, m.n_players)
    for mv, ff in zip(moves, forfeits, strict=True):
        alive_before = b.alive[0].copy()
        was_done = bool(b.done[0])
        board_before = b.board(0)
        result = b.step(mv[None], forfeit=ff[None])
        ref.step(mv.tolist(), ff.tolist())
        assert_same(b, 0, ref)
        board = b.board(0)
        # Trails never shrink and walls never change.
        assert (board[board_before > 0] == board_before[board_before > 0]).all()
        np.testing.assert_array_equal(board == WALL, board_before == WALL)
        # Occupied squares grow by exactly the live players that moved and survived.
        moved = 0 if was_done else int((alive_before & ~result.crashed[0]).sum())
        assert (board > 0).sum() - (board_before > 0).sum() == moved
        assert result.crashed[0].tolist() == (alive_before & ~b.alive[0]).tolist()
        # The game ends exactly when at most one player is left, and only once.
        assert bool(b.done[0]) == (int(b.alive[0].sum()) <= 1)
        assert bool(result.ended[0]) == (b.done[0] and not was_done)
        if b.done[0]:
            last = max(ref.crash_turn)
            expected = [
                float(p == ref.winner)
                if ref.winner >= 0
                else (0.5 if ref.crash_turn[p] == last else 0.0)
                for p in range(m.n_players)
            ]
            assert b.outcome(0) == expected


# Board symmetries with what they do to a move and to a board array.
SYMMETRIES: dict[
    str, tuple[Callable[[Map], Map], Callable[[np.ndarray], np.ndarray], list[int]]
] = {
    "lr": (Map.flipped_lr, lambda a: a[:, ::-1], [N, W, S, E]),
    "ud": (Map.flipped_ud, lambda a: a[::-1, :], [S, E, N, W]),
    "rot180": (Map.rotated180, lambda a: a[::-1, ::-1], [S, W, N, E]),
    "rot90": (Map.rotated90, lambda a: np.rot90(a, k=-1), [E, S, W, N]),
}


@settings(max_examples=60, deadline=None)
@given(any_map, choice_rows, st.sampled_from(sorted(SYMMETRIES)))
def test_property__mirroring_the_map_and_moves_mirrors_the_game(
    m: Map, rows: list[list[int]], symmetry: str
) -> None:
    transform, on_board, on_move = SYMMETRIES[symmetry]
    moves, forfeits = resolve(m, rows)
    b = TronBatch([m], 1)
    mirrored = TronBatch([transform(m)], 1)
    for mv, ff in zip(moves, forfeits, strict=True):
        b.step(mv[None], forfeit=ff[None])
        mirrored.step(np.array(on_move, dtype=np.int8)[mv][None], forfeit=ff[None])
        for name in ("alive", "cause", "crash_turn", "done", "winner", "turn"):
            np.testing.assert_array_equal(getattr(b, name), getattr(mirrored, name))
        np.testing.assert_array_equal(on_board(b.board(0)), mirrored.board(0))
    if b.done[0]:
        assert b.outcome(0) == mirrored.outcome(0)


def test_mirror__left_right_swaps_east_and_west_exactly() -> None:
    m = parse_map("5 2\n1  # \n   2 \n")
    b, mirrored = TronBatch([m], 1), TronBatch([m.flipped_lr()], 1)
    b.step(np.array([[E, W]]))
    mirrored.step(np.array([[W, E]]))
    assert heads(b) == [(0, 1), (1, 2)]
    assert heads(mirrored) == [(0, 3), (1, 2)]


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Map], list[list[list[int]]], dict[int, list[bool]]]:
    """k games of n players on maps of different sizes, T turns of choices each, and resets."""
    n = draw(st.integers(2, 4))
    k = draw(st.integers(2, 5))
    turns = draw(st.integers(1, 40))
    maps = [
        random_map(
            draw(st.integers(5, 12)),
            draw(st.integers(5, 12)),
            n_players=n,
            density=draw(st.sampled_from([0.0, 0.15])),
            seed=draw(st.integers(0, 10_000)),
        )
        for _ in range(k)
    ]
    rows = [choices(turns, draw(st.integers(0, 2**32 - 1)), n) for _ in range(k)]
    reset_turns = draw(st.lists(st.integers(0, turns - 1), max_size=3, unique=True))
    resets = {t: draw(st.lists(st.booleans(), min_size=k, max_size=k)) for t in reset_turns}
    return maps, rows, resets


@settings(max_examples=40, deadline=None)
@given(batches(), st.integers(0, 2**31 - 1))
def test_property__a_batch_equals_single_games_and_resets_touch_only_their_games(
    spec: tuple[list[Map], list[list[list[int]]], dict[int, list[bool]]], seed: int
) -> None:
    maps, rows, resets = spec
    k, n = len(maps), maps[0].n_players
    plans = [resolve(m, r) for m, r in zip(maps, rows, strict=True)]
    b = TronBatch(maps, k)
    b.reset(map_index=np.arange(k))
    singles = [TronBatch([m], 1) for m in maps]
    rng = np.random.default_rng(seed)
    names = (
        "cells",
        "heads",
        "alive",
        "done",
        "winner",
        "turn",
        "crash_turn",
        "cause",
        "map_index",
    )
    for t in range(len(rows[0])):
        if t in resets:
            # Reset a subset onto the next map (map rotation), by mask or by indices.
            mask = np.array(resets[t])
            games = np.flatnonzero(mask)
            new_maps = (b.map_index[games] + 1) % k
            before = {name: getattr(b, name).copy() for name in names}
            b.reset(mask if t % 2 else games, map_index=new_maps)
            for name in names:
                np.testing.assert_array_equal(getattr(b, name)[~mask], before[name][~mask])
            for rg, mi in zip(games, new_maps, strict=True):
                singles[rg] = TronBatch([maps[mi]], 1)
        moves = np.stack([mv[t] for mv, _ in plans])
        forfeit = np.stack([ff[t] for _, ff in plans])
        # Dead players' and finished games' entries are ignored, even when they are not moves.
        ignored = ~b.alive | b.done[:, None]
        batch_moves = np.where(ignored, rng.integers(-100, 100, size=(k, n)), moves)
        result = b.step(batch_moves, forfeit=forfeit)
        for g in range(k):
            single = singles[g]
            ended = single.step(moves[g][None], forfeit=forfeit[g][None]).ended[0]
            assert result.ended[g] == ended
            assert heads(b, g) == heads(single)
            np.testing.assert_array_equal(b.board(g), single.board(0))
            for name in ("alive", "cause", "crash_turn", "last_move", "done", "winner", "turn"):
                np.testing.assert_array_equal(getattr(b, name)[g], getattr(single, name)[0])


def rollout(seed: int, steps: int = 200) -> list[np.ndarray]:
    """A seeded random-policy rollout over mixed maps with resets; returns every board state."""
    rng = np.random.default_rng(seed)
    maps = [random_map(9, 11, density=0.1, seed=int(s)) for s in rng.integers(0, 10**6, size=3)]
    b = TronBatch(maps + builtin_maps(2)[:2], 8)
    states = []
    for _ in range(steps):
        b.step(rng.integers(0, 4, size=(8, 2)).astype(np.int8))
        states.append(b.cells.copy())
        done = b.done.copy()
        b.reset(done, map_index=rng.integers(0, len(b.maps), size=int(done.sum())))
    return states


def test_same_seed_same_rollout() -> None:
    a, b, c = rollout(7), rollout(7), rollout(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
