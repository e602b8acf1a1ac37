"""Observations: the category table on hand-made positions, padding, seats, both encoding paths."""

from __future__ import annotations

import numpy as np
import pytest

import tron.observe as observe
from tron.maps import Map, get_map, parse_map
from tron.observe import N_CATEGORIES, Category, Encoder, encode, obs_shape, planes
from tron.rules import Direction, TronBatch

N, E, S, W = Direction.N, Direction.E, Direction.S, Direction.W

# 6 wide, 4 high; player 1 at (1, 1), player 2 at (1, 4).
SMALL = parse_map("6 4\n#    #\n 1  2 \n      \n  ##  \n", "small")


def played(moves: list[tuple[int, int]], m: Map = SMALL) -> TronBatch:
    batch = TronBatch([m], 1)
    for a in moves:
        batch.step(np.array([a]))
    return batch


@pytest.fixture(params=["lookup", "arithmetic"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both encoding paths (table lookup for small calls, numpy passes for big)."""
    monkeypatch.setattr(observe, "_LOOKUP_MAX_SQUARES", 10**9 if request.param == "lookup" else 0)
    return str(request.param)


def test_observe__table_on_hand_made_position(path: str) -> None:
    # Both move south: trails at the starts, heads at (2, 1) and (2, 4).
    batch = played([(S, S)])
    seat0 = np.array(
        [
            [1, 0, 0, 0, 0, 1, 1],
            [0, 2, 0, 0, 3, 0, 1],
            [0, 4, 0, 0, 5, 0, 1],
            [0, 0, 1, 1, 0, 0, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ],
        dtype=np.uint8,
    )
    # The same board from seat 1: own and opponent swap, nothing else moves.
    seat1 = np.array(
        [
            [1, 0, 0, 0, 0, 1, 1],
            [0, 3, 0, 0, 2, 0, 1],
            [0, 5, 0, 0, 4, 0, 1],
            [0, 0, 1, 1, 0, 0, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ],
        dtype=np.uint8,
    )
    enc = Encoder(batch, (5, 7))
    np.testing.assert_array_equal(enc.encode(0)[0], seat0)
    np.testing.assert_array_equal(enc.encode(1)[0], seat1)
    both = enc.encode_all()
    assert both.shape == (1, 2, 5, 7)
    np.testing.assert_array_equal(both[0, 0], seat0)
    np.testing.assert_array_equal(both[0, 1], seat1)


def test_observe__crashed_head_is_trail(path: str) -> None:
    # Player 1 goes west to (2, 0); player 2 reverses north into its own trail and crashes.
    batch = played([(S, S), (W, N)])
    assert batch.done[0] and batch.winner[0] == 0
    expected0 = np.array(
        [
            [1, 0, 0, 0, 0, 1],
            [0, 2, 0, 0, 3, 0],
            [4, 2, 0, 0, 3, 0],
            [0, 0, 1, 1, 0, 0],
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(encode(batch, 0)[0], expected0)
    expected1 = np.array(
        [
            [1, 0, 0, 0, 0, 1],
            [0, 3, 0, 0, 2, 0],
            [5, 3, 0, 0, 2, 0],
            [0, 0, 1, 1, 0, 0],
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(encode(batch, 1)[0], expected1)


def test_observe__start_position_of_room15() -> None:
    batch = TronBatch([get_map("room15")], 1)
    obs = encode(batch, 1)[0]
    assert obs.shape == (15, 15) and obs.dtype == np.uint8
    (r0, c0), (r1, c1) = get_map("room15").starts
    assert obs[r0, c0] == Category.OPPONENT_HEAD and obs[r1, c1] == Category.OWN_HEAD
    assert (obs == Category.EMPTY).sum() == 15 * 15 - 2


def test_observe__smaller_maps_sit_top_left_padded_with_walls(path: str) -> None:
    maps = [get_map("room10"), get_map("oblong"), get_map("room15")]
    batch = TronBatch(maps, 3)
    batch.reset(map_index=np.array([0, 1, 2]))
    obs = Encoder(batch, 20).encode(0)
    assert obs.shape == (3, 20, 20)
    for g, m in enumerate(maps):
        inside = obs[g, : m.height, : m.width]
        expected = np.where(m.walls, Category.WALL, Category.EMPTY)
        (r0, c0), (r1, c1) = m.starts
        expected[r0, c0], expected[r1, c1] = Category.OWN_HEAD, Category.OPPONENT_HEAD
        np.testing.assert_array_equal(inside, expected)
        assert (obs[g, m.height :, :] == Category.WALL).all()
        assert (obs[g, :, m.width :] == Category.WALL).all()


def test_observe__default_size_is_the_largest_map() -> None:
    batch = TronBatch([get_map("oblong"), get_map("room10")], 2)
    assert Encoder(batch).shape == (13, 17)
    assert obs_shape([(13, 17), (10, 10)]) == (13, 17)
    assert obs_shape([(13, 17)], 25) == (25, 25)
    assert obs_shape([(13, 17)], (13, 20)) == (13, 20)


def test_observe__size_smaller_than_a_map_is_refused() -> None:
    with pytest.raises(ValueError, match=r"smaller than the largest map, 13x17.*never cropped"):
        obs_shape([(13, 17)], 15)
    with pytest.raises(ValueError, match="positive"):
        obs_shape([(5, 5)], 0)


def test_observe__three_and_four_players_share_opponent_codes(path: str) -> None:
    m = get_map("room16-4p")
    batch = TronBatch([m], 1)
    batch.step(np.array([[E, S, W, N]]))
    both = Encoder(batch).encode_all()[0]
    heads = batch.head_positions()[0]
    for s in range(4):
        for p, (r, c) in enumerate(m.starts):
            assert both[s, r, c] == (Category.OWN_TRAIL if p == s else Category.OPPONENT_TRAIL)
        for p, (r, c) in enumerate(heads):
            assert both[s, r, c] == (Category.OWN_HEAD if p == s else Category.OPPONENT_HEAD)


def reference(batch: TronBatch, game: int, seat: int, shape: tuple[int, int]) -> np.ndarray:
    """The table of the module docstring, square by square."""
    board = batch.board(game)
    out = np.full(shape, Category.WALL, dtype=np.uint8)
    for (r, c), v in np.ndenumerate(board):
        if v == -1:
            code = Category.WALL
        elif v == 0:
            code = Category.EMPTY
        else:
            code = Category.OWN_TRAIL if v == seat + 1 else Category.OPPONENT_TRAIL
        out[r, c] = code
    for p, (r, c) in enumerate(batch.head_positions()[game]):
        if batch.alive[game, p]:
            out[r, c] = Category.OWN_HEAD if p == seat else Category.OPPONENT_HEAD
    return out


@pytest.mark.parametrize(
    ("names", "n_players"),
    [(["room10", "maze", "oblong"], 2), (["room17-3p"], 3), (["room16-4p", "arena21-4p"], 4)],
)
def test_observe__both_paths_match_the_table_in_random_games(
    names: list[str], n_players: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    maps = [get_map(n) for n in names]
    batch = TronBatch(maps, 6, n_players=n_players)
    batch.reset(map_index=rng.integers(0, len(maps), 6))
    enc = Encoder(batch, 22)
    for _ in range(25):
        batch.step(rng.integers(0, 4, (6, n_players)))
        seats = rng.integers(0, n_players, 6)
        games = np.array([4, 1, 3])
        results = []
        for limit in (0, 10**9):
            monkeypatch.setattr(observe, "_LOOKUP_MAX_SQUARES", limit)
            results.append(
                (
                    enc.encode_all(),
                    enc.encode(seats),
                    enc.encode(1, games),
                    enc.encode_all(games),
                    enc.encode(0, games[:1]),
                )
            )
        for fast, slow in zip(*results, strict=True):
            np.testing.assert_array_equal(fast, slow)
        all_seats, per_game, picked, picked_all, one = results[0]
        for g in range(6):
            for s in range(n_players):
                np.testing.assert_array_equal(all_seats[g, s], reference(batch, g, s, (22, 22)))
            np.testing.assert_array_equal(per_game[g], all_seats[g, seats[g]])
        np.testing.assert_array_equal(picked, all_seats[games, 1])
        np.testing.assert_array_equal(picked_all, all_seats[games])
        np.testing.assert_array_equal(one[0], all_seats[games[0], 0])
        batch.reset(np.flatnonzero(batch.done))


def test_observe__writes_into_out_and_checks_it() -> None:
    batch = TronBatch([SMALL], 3)
    enc = Encoder(batch)
    out = np.full((3, 4, 6), 99, dtype=np.uint8)
    assert enc.encode(0, out=out) is out
    assert out.max() < N_CATEGORIES
    with pytest.raises(
        ValueError, match=r"out must be a C-contiguous uint8 array of shape \(3, 4, 6\)"
    ):
        enc.encode(0, out=np.zeros((3, 4, 6), dtype=np.int64))
    with pytest.raises(ValueError, match="one per game"):
        enc.encode(np.array([0, 1]))


def test_planes__one_hot() -> None:
    obs = np.array([[[0, 1], [4, 5]]], dtype=np.uint8)
    p = planes(obs)
    assert p.shape == (1, N_CATEGORIES, 2, 2) and p.dtype == np.float32
    np.testing.assert_array_equal(p.sum(axis=1), 1)
    assert p[0, 4, 1, 0] == 1 and p[0, 5, 1, 1] == 1 and p[0, 1, 0, 1] == 1
    assert planes(obs, np.bool_).dtype == np.bool_
