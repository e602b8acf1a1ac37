"""Networks and action distributions."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from acktr.policies import (
    AtariCNN,
    SeparateActorCritic,
    SharedActorCritic,
    action_distribution,
    build_actor_critic,
    distribution_mode,
    param_dim,
)

FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
VECTOR = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)


@pytest.mark.parametrize(
    ("channels", "last", "dense_in"), [((32, 64, 32), 32, 1568), ((32, 64, 64), 64, 3136)]
)
def test_atari_cnn_shapes(channels: tuple[int, int, int], last: int, dense_in: int) -> None:
    cnn = AtariCNN(4, channels)
    convs = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (last, (3, 3), (1, 1)),
    ]
    dense = [m for m in cnn.modules() if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(dense_in, 512)]
    out = cnn(torch.full((2, 4, 84, 84), 255, dtype=torch.uint8))
    assert out.shape == (2, 512) and (out >= 0).all()


def test_shared_network_for_discrete_actions() -> None:
    model = build_actor_critic("acktr_cnn", FRAMES, gym.spaces.Discrete(6))
    assert isinstance(model, SharedActorCritic)
    params, value = model(torch.zeros(3, 4, 84, 84, dtype=torch.uint8))
    assert params.shape == (3, 6) and value.shape == (3,)


def test_first_policy_is_near_uniform() -> None:
    # Policy output initialised with gain 0.01: the first actions are close to uniform.
    model = build_actor_critic("mlp", VECTOR, gym.spaces.Discrete(4))
    params, _ = model(torch.randn(64, 5))
    probs = action_distribution(params, gym.spaces.Discrete(4)).probs
    assert torch.allclose(probs, torch.full_like(probs, 0.25), atol=0.02)


def test_gaussian_policy_has_state_independent_log_std() -> None:
    actions = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    model = build_actor_critic("mlp", VECTOR, actions, separate=True)
    assert isinstance(model, SeparateActorCritic)
    assert not set(map(id, model.pi.parameters())) & set(map(id, model.vf.parameters()))
    params, value = model(torch.randn(4, 5))
    assert params.shape == (4, 4) and value.shape == (4,)
    assert torch.equal(params[:, 2:], torch.zeros(4, 2))  # log-std starts at 0 in every state
    log_std = model.pi[1].log_std
    assert log_std is not None and log_std.shape == (2,)


def test_gaussian_log_prob_and_entropy_by_hand() -> None:
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    params = torch.tensor([[0.0, 1.0, 0.0, math.log(2.0)]])  # means 0, 1; stds 1, 2
    dist = action_distribution(params, space)
    action = torch.tensor([[1.0, -1.0]])
    # log N(1; 0, 1) + log N(-1; 1, 2) = (-1/2 - log sqrt(2 pi)) + (-1/2 - log 2 - log sqrt(2 pi))
    expected = -1.0 - math.log(2.0) - math.log(2 * math.pi)
    assert dist.log_prob(action).item() == pytest.approx(expected)
    assert dist.entropy().item() == pytest.approx(1.0 + math.log(2 * math.pi) + math.log(2.0))
    assert torch.equal(distribution_mode(params, space), torch.tensor([[0.0, 1.0]]))


def test_categorical_mode_is_the_arg_max() -> None:
    params = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert distribution_mode(params, gym.spaces.Discrete(3)).tolist() == [1, 0]


def test_bad_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="use network 'mlp'"):
        build_actor_critic("acktr_cnn", VECTOR, gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="unsupported action space"):
        param_dim(gym.spaces.MultiDiscrete([2, 3]))
    with pytest.raises(ValueError, match="unsupported action space"):
        param_dim(gym.spaces.Box(-1, 1, (2, 2)))
