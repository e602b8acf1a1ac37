"""Actor-critic networks and action distributions.

The interface the learners rely on is one method. An *actor-critic module* is any ``nn.Module``
whose forward maps a batch of observations to action-distribution parameters and state values::

    params, value = model(obs)   # obs: (N, *obs_shape) -> params: (N, P), value: (N,)

``params`` are read by ``action_distribution`` according to the action space:

- ``Discrete(n)``: ``P = n`` logits of a categorical distribution;
- ``Box`` of shape ``(d,)``: ``P = 2 d``, the mean then the log standard deviation of a diagonal
  Gaussian (a state-independent log-std is a parameter broadcast over the batch: ``PolicyHead``).

A network of your own (the Tron network in ``agents/``, say) plugs in by following this contract;
``PolicyHead`` and ``ValueHead`` build the two outputs from any feature extractor. Observations
reach the module with their stored dtype (``uint8`` frames for Atari); a module converts them.

The MuJoCo setup of the ACKTR paper keeps the policy and the value function in two networks, each
with its own K-FAC optimizer; ``SeparateActorCritic`` holds them as ``pi`` (obs -> params) and
``vf`` (obs -> value), the two attributes a learner asks for in that layout.

Initialisation follows the reference implementations: orthogonal weights with gain sqrt(2) in the
hidden layers, 0.01 on the policy output (near-uniform first policy) and 1 on the value output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

Activation = Literal["tanh", "relu"]
NetworkName = Literal["acktr_cnn", "nature_cnn", "mlp"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _init(layer: nn.Linear | nn.Conv2d, gain: float) -> None:
    nn.init.orthogonal_(layer.weight, gain)
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)


def param_dim(action_space: gym.Space) -> int:
    """Width ``P`` of the distribution parameters for ``action_space``.

    Raises:
        ValueError: for an action space other than ``Discrete`` or a 1-D ``Box``.
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return 2 * action_space.shape[0]
    raise ValueError(
        f"unsupported action space {action_space}: actor-critic learners take Discrete or a "
        "1-D Box (flatten other spaces with a gymnasium wrapper)"
    )


def action_distribution(params: torch.Tensor, action_space: gym.Space) -> Distribution:
    """The action distribution that ``params`` (N, P) describe for ``action_space``.

    ``log_prob`` and ``entropy`` of the result are per sample, shape (N,): a Gaussian's are summed
    over the action dimensions (``Independent``).
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical(logits=params, validate_args=False)
    mean, log_std = params.chunk(2, dim=-1)
    return Independent(Normal(mean, log_std.exp(), validate_args=False), 1, validate_args=False)


def distribution_mode(params: torch.Tensor, action_space: gym.Space) -> torch.Tensor:
    """The most likely action: the arg-max logit, or the Gaussian mean."""
    if isinstance(action_space, gym.spaces.Discrete):
        return params.argmax(dim=-1)
    return params.chunk(2, dim=-1)[0]


class AtariCNN(nn.Module):
    """The Atari torso: three convolutions and a 512-unit layer over (N, C, 84, 84) uint8 frames.

    ``channels=(32, 64, 64)`` is the Nature DQN network; ``(32, 64, 32)`` is the ACKTR paper's
    variant, whose last convolution was cut to 32 channels to make its K-FAC factor (32*9+1 = 289
    rows instead of 577, and 1568+1 instead of 3136+1 for the dense layer) cheap to invert.
    """

    def __init__(self, in_channels: int = 4, channels: Sequence[int] = (32, 64, 64)) -> None:
        super().__init__()
        c1, c2, c3 = channels
        convs: list[nn.Conv2d] = [
            nn.Conv2d(in_channels, c1, kernel_size=8, stride=4),
            nn.Conv2d(c1, c2, kernel_size=4, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, stride=1),
        ]
        dense = nn.Linear(c3 * 7 * 7, 512)
        layers: list[nn.Linear | nn.Conv2d] = [*convs, dense]
        for layer in layers:
            _init(layer, math.sqrt(2))
        self.net = nn.Sequential(
            convs[0], nn.ReLU(), convs[1], nn.ReLU(), convs[2], nn.ReLU(), nn.Flatten(), dense
        )
        self.out_features = 512

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # Frames arrive as uint8 so that the rollout buffer and host-to-device copies stay small.
        return torch.relu(self.net(obs.float() / 255.0))


class MLP(nn.Module):
    """Fully connected layers with one activation after each, over flattened observations."""

    def __init__(
        self, in_features: int, hidden: Sequence[int] = (64, 64), activation: Activation = "tanh"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            linear = nn.Linear(width, h)
            _init(linear, math.sqrt(2))
            layers += [linear, _ACTIVATIONS[activation]()]
            width = h
        self.net = nn.Sequential(nn.Flatten(), *layers)
        self.out_features = width

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float())


class PolicyHead(nn.Module):
    """Features (N, F) -> distribution parameters (N, P) for ``action_space``.

    For a ``Box`` the log standard deviation is a learned vector shared by all states (the paper's
    MuJoCo policy), initialised to ``log_std_init``; it is not a ``Linear`` weight, so K-FAC treats
    it with its first-order rule.
    """

    def __init__(self, in_features: int, action_space: gym.Space, log_std_init: float = 0.0):
        super().__init__()
        width = param_dim(action_space)
        self.continuous = isinstance(action_space, gym.spaces.Box)
        self.linear = nn.Linear(in_features, width // 2 if self.continuous else width)
        _init(self.linear, 0.01)
        self.log_std = (
            nn.Parameter(torch.full((width // 2,), log_std_init)) if self.continuous else None
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.linear(features)
        if self.log_std is None:
            return out
        return torch.cat([out, self.log_std.expand_as(out)], dim=-1)


class ValueHead(nn.Module):
    """Features (N, F) -> state values (N,)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        _init(self.linear, 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features).squeeze(-1)


class SharedActorCritic(nn.Module):
    """One torso feeding a policy head and a value head (the Atari and classic-control layout)."""

    def __init__(self, torso: nn.Module, out_features: int, action_space: gym.Space) -> None:
        super().__init__()
        self.torso = torso
        self.policy_head = PolicyHead(out_features, action_space)
        self.value_head = ValueHead(out_features)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.torso(obs)
        return self.policy_head(features), self.value_head(features)


class SeparateActorCritic(nn.Module):
    """A policy network ``pi`` and a value network ``vf`` that share nothing (the MuJoCo layout)."""

    def __init__(self, pi: nn.Module, vf: nn.Module) -> None:
        super().__init__()
        self.pi = pi
        self.vf = vf

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pi(obs), self.vf(obs)


def build_actor_critic(
    network: NetworkName,
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    separate: bool = False,
    hidden: Sequence[int] = (64, 64),
    activation: Activation = "tanh",
) -> nn.Module:
    """A built-in actor-critic network for the given spaces.

    Args:
        network: ``"acktr_cnn"`` (32-64-32-512), ``"nature_cnn"`` (32-64-64-512) or ``"mlp"``.
        observation_space: a ``Box``; the CNNs want (C, 84, 84) frames.
        action_space: ``Discrete`` or a 1-D ``Box``.
        separate: two networks of the same shape for policy and value (``SeparateActorCritic``)
            instead of one shared torso.
        hidden: MLP hidden widths.
        activation: MLP activation.

    Raises:
        ValueError: for a network that does not fit the spaces.
    """
    shape = observation_space.shape
    if shape is None:
        raise ValueError(f"observation space {observation_space} has no shape")

    def torso() -> tuple[nn.Module, int]:
        if network == "mlp":
            mlp = MLP(int(np.prod(shape)), hidden, activation)
            return mlp, mlp.out_features
        if network in ("acktr_cnn", "nature_cnn"):
            if len(shape) != 3 or shape[1:] != (84, 84):
                raise ValueError(
                    f"network {network!r} expects (C, 84, 84) frames, got observations of shape "
                    f"{shape}; use network 'mlp' for vector observations"
                )
            channels = (32, 64, 32) if network == "acktr_cnn" else (32, 64, 64)
            cnn = AtariCNN(shape[0], channels)
            return cnn, cnn.out_features
        raise ValueError(f"unknown network {network!r}: choose acktr_cnn, nature_cnn or mlp")

    if not separate:
        body, width = torso()
        return SharedActorCritic(body, width, action_space)
    pi_body, pi_width = torso()
    vf_body, vf_width = torso()
    return SeparateActorCritic(
        nn.Sequential(pi_body, PolicyHead(pi_width, action_space)),
        nn.Sequential(vf_body, ValueHead(vf_width)),
    )
