"""Voronoi features and the legal-move mask of the Tron network, on hand-made boards."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.features import voronoi_features
from agents.neural import NeuralAgent, TronNet, legal_moves
from tron.maps import get_map
from tron.observe import Category
from tron.rules import TronBatch

E, W, M, H, T = (
    int(Category.EMPTY),
    int(Category.WALL),
    int(Category.OWN_TRAIL),
    int(Category.OWN_HEAD),
    int(Category.OPPONENT_HEAD),
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _board() -> np.ndarray:
    # Own head top-left, the opponent's bottom-right, one wall square.
    return np.array([[[H, E, E, E], [E, W, E, E], [E, E, E, T]]], dtype=np.uint8)


def test_voronoi_features__hand_made_board() -> None:
    planes, scalars = voronoi_features(_board())
    assert planes.shape == (1, 5, 5, 6) and planes.dtype == np.float32
    inner = planes[0, :, 1:-1, 1:-1]
    # Own distances: 0 1 2 3 / 1 - 3 4 / 2 3 4 5; the opponent's: 5 4 3 2 / 4 - 2 1 / 3 2 1 0.
    np.testing.assert_array_equal(inner[0], [[0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(inner[1], [[0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 0]])
    np.testing.assert_array_equal(inner[2], np.zeros((3, 4)))
    np.testing.assert_allclose(
        inner[3], [[0, 1 / 2, 1 / 3, 1 / 4], [1 / 2, 0, 1 / 4, 1 / 5], [1 / 3, 1 / 4, 1 / 5, 0]]
    )
    np.testing.assert_allclose(
        inner[4], [[0, 1 / 5, 1 / 4, 1 / 3], [1 / 5, 0, 1 / 3, 1 / 2], [1 / 4, 1 / 3, 1 / 2, 0]]
    )
    # The padding ring stays 0.
    assert planes[0, :, 0].sum() == 0 and planes[0, :, :, -1].sum() == 0
    # 9 empty squares: 4 own, 5 the opponent's, no tie, both reach all 9, not separated.
    np.testing.assert_allclose(scalars[0], [4 / 9, 5 / 9, 0, 1, 1, 0])


def test_voronoi_features__ties_separation_and_a_missing_opponent() -> None:
    tie = np.array([[[H, E, T]]], dtype=np.uint8)
    planes, scalars = voronoi_features(tie)
    np.testing.assert_array_equal(planes[0, :3, 1, 1:-1], [[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(scalars[0], [0, 0, 1, 1, 1, 0])

    walled = np.array([[[H, E, W, E, E, T]]], dtype=np.uint8)
    _, scalars = voronoi_features(walled)
    np.testing.assert_allclose(scalars[0], [1 / 3, 2 / 3, 0, 1 / 3, 2 / 3, 1])

    alone = np.array([[[H, E, M, E]]], dtype=np.uint8)  # the opponent has crashed
    planes, scalars = voronoi_features(alone)
    np.testing.assert_array_equal(planes[0, 0, 1, 1:-1], [0, 1, 0, 0])
    assert planes[0, 1:3].sum() == 0 and planes[0, 4].sum() == 0
    np.testing.assert_allclose(scalars[0], [1 / 2, 0, 0, 1 / 2, 0, 1])


def _padded(obs: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(obs).long()
    return F.pad(x, (1, 1, 1, 1), value=W).unsqueeze(1)


def test_legal_moves__hand_made_board() -> None:
    # Own head in the middle: N is a wall, E the opponent's head, S empty, W its own trail.
    obs = np.array([[[E, W, E], [M, H, T], [E, E, E]]], dtype=np.uint8)
    assert legal_moves(_padded(obs)).tolist() == [[False, False, True, False]]
    # In a corner, the board's edge is a wall; without an own head no move is legal.
    corner = np.array([[[H, E], [E, E]], [[E, E], [E, T]]], dtype=np.uint8)
    assert legal_moves(_padded(corner)).tolist() == [[False, True, True, False], [False] * 4]


def test_tron_net__mask_gives_crashing_moves_no_probability() -> None:
    torch.manual_seed(0)
    net = TronNet(features="voronoi", mask=True)
    obs = np.array([[[E, W, E], [M, H, T], [E, E, E]]], dtype=np.uint8)
    probs = torch.softmax(net(torch.from_numpy(obs))[0], dim=1)
    assert probs[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    # Every move crashes: the logits are left as they are (no NaN, a choice among crashes).
    trapped = np.array([[[W, W, W], [M, H, T], [E, W, E]]], dtype=np.uint8)
    logits = net(torch.from_numpy(trapped))[0]
    assert torch.isfinite(logits).all() and (logits > -1.0).all()


def test_neural_agent__masked_network_never_samples_a_crashing_move() -> None:
    torch.manual_seed(1)
    agent = NeuralAgent(TronNet(features="voronoi", mask=True), greedy=False, seed=3)
    batch = TronBatch([get_map("room10"), get_map("pillars")], 24)
    batch.reset(np.arange(24), map_index=np.arange(24) % 2)
    flat = batch.cells.reshape(batch.batch_size, -1)
    checked = 0
    for _ in range(60):
        running = np.flatnonzero(~batch.done)
        if running.size == 0:
            break
        moves = np.zeros((batch.batch_size, 2), dtype=np.int64)
        for seat in (0, 1):
            games = running[batch.alive[running, seat]]
            moves[games, seat] = agent.act(batch, seat, games)
            # Which moves enter an empty square, from the engine's own board.
            targets = batch.heads[games, seat][:, None] + batch.offsets[None, :]
            free = flat[games[:, None], targets] == 0
            has_move = free.any(axis=1)
            assert free[np.arange(games.size), moves[games, seat]][has_move].all()
            checked += int(has_move.sum())
        batch.step(moves)
    assert checked > 500
