"""Networks of the DQN and A3C baselines: torsos picked by observation space, and Q heads.

A *torso* maps a batch of observations (with their stored dtype) to features ``(N, F)``. The DQN
puts a ``QHead`` on it; A3C puts ``acktr.policies``' policy and value heads on it
(``SharedActorCritic``), so the three learners differ in their algorithm, not their plumbing.

Torsos (``build_torso``):

- ``mlp``: ``acktr.policies.MLP`` over flattened vector observations;
- ``nature_cnn``: the Nature DQN network (32-64-64 convolutions, 512 units) over (C, 84, 84) frames;
- ``small_cnn``: the network of Mnih et al. 2013, which A3C used on Atari (16 8x8/4, 32 4x4/2,
  256 units): 4x cheaper per frame than the Nature network, which matters on a CPU;
- ``grid_cnn``: categorical grids (Tron boards, ``tron.observe``) as one-hot planes, three 3x3
  convolutions (the last with stride 2) and 256 units;
- ``auto``: ``grid_cnn`` for 2-D integer observations, the learner's CNN for (C, 84, 84) frames,
  ``mlp`` otherwise.

A learner's ``network="tron_net"`` takes the whole Tron network of ``agents.neural`` instead (the
one ACKTR and A2C train on Tron): A3C as is, DQN through ``ActorCriticQ``.

Also here: ``box_state``/``box_from_state`` keep an observation ``Box`` (bounds included: the grid
torso's categories are ``high + 1``) in a checkpoint, and ``GreedyPolicy`` turns a loaded network
into a plain ``observations -> greedy actions`` function, what the arena plays from a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from acktr.policies import MLP, Activation, AtariCNN

TorsoName = Literal["auto", "mlp", "nature_cnn", "small_cnn", "grid_cnn"]


def _init(layer: nn.Linear | nn.Conv2d, gain: float) -> None:
    nn.init.orthogonal_(layer.weight, gain)
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)


class SmallAtariCNN(nn.Module):
    """The Atari network of Mnih et al. 2013 used by A3C: (N, C, 84, 84) uint8 -> (N, 256)."""

    def __init__(self, in_channels: int = 4) -> None:
        super().__init__()
        conv1 = nn.Conv2d(in_channels, 16, kernel_size=8, stride=4)
        conv2 = nn.Conv2d(16, 32, kernel_size=4, stride=2)
        dense = nn.Linear(32 * 9 * 9, 256)
        for layer in (conv1, conv2, dense):
            _init(layer, math.sqrt(2))
        self.net = nn.Sequential(conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), dense, nn.ReLU())
        self.out_features = 256

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float() / 255.0)


class GridCNN(nn.Module):
    """Categorical grids (N, H, W) of codes ``0 .. n_categories-1`` -> features (N, 256).

    The codes become one-hot planes on the device (the observations travel as ``uint8``); the last
    convolution has stride 2 so that the dense layer reads a quarter of the squares (a 17x17 board:
    64*9*9 = 5184 inputs instead of 18496).
    """

    def __init__(
        self,
        n_categories: int,
        grid_shape: tuple[int, int],
        channels: Sequence[int] = (32, 64, 64),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        convs: list[nn.Conv2d] = [
            nn.Conv2d(n_categories, c1, kernel_size=3, padding=1),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),
            nn.Conv2d(c2, c3, kernel_size=3, stride=2, padding=1),
        ]
        h, w = ((d + 1) // 2 for d in grid_shape)
        dense = nn.Linear(c3 * h * w, hidden)
        layers: list[nn.Linear | nn.Conv2d] = [*convs, dense]
        for layer in layers:
            _init(layer, math.sqrt(2))
        self.net = nn.Sequential(
            convs[0], nn.ReLU(), convs[1], nn.ReLU(), convs[2], nn.ReLU(), nn.Flatten(), dense
        )
        self.codes: torch.Tensor
        self.register_buffer("codes", torch.arange(n_categories).view(1, -1, 1, 1))
        self.out_features = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        planes = (obs.long().unsqueeze(1) == self.codes).float()
        return torch.relu(self.net(planes))


def resolve_torso(name: TorsoName, observation_space: gym.Space, cnn: TorsoName) -> TorsoName:
    """The torso ``auto`` stands for (``cnn`` for frames), or ``name`` itself."""
    if name != "auto":
        return name
    shape = observation_space.shape or ()
    if len(shape) == 3 and shape[1:] == (84, 84):
        return cnn
    if (
        isinstance(observation_space, gym.spaces.Box)
        and len(shape) == 2
        and np.issubdtype(observation_space.dtype, np.integer)
    ):
        return "grid_cnn"
    return "mlp"


def build_torso(
    name: TorsoName,
    observation_space: gym.Space,
    *,
    hidden: Sequence[int] = (64, 64),
    activation: Activation = "relu",
    cnn: TorsoName = "nature_cnn",
) -> tuple[nn.Module, int]:
    """A torso for ``observation_space`` and its feature width.

    Args:
        name: a torso name (see the module docstring).
        observation_space: a ``Box``.
        hidden: MLP hidden widths.
        activation: MLP activation.
        cnn: the CNN ``auto`` picks for (C, 84, 84) frames.

    Raises:
        ValueError: a torso that does not fit the observations, or an unknown name.
    """
    shape = observation_space.shape
    if not isinstance(observation_space, gym.spaces.Box) or shape is None:
        raise ValueError(f"observation space {observation_space} is not a Box")
    name = resolve_torso(name, observation_space, cnn)
    if name == "mlp":
        mlp = MLP(int(np.prod(shape)), hidden, activation)
        return mlp, mlp.out_features
    if name in ("nature_cnn", "small_cnn"):
        if len(shape) != 3 or shape[1:] != (84, 84):
            raise ValueError(
                f"network {name!r} expects (C, 84, 84) frames, got observations of shape {shape}"
            )
        if name == "small_cnn":
            small = SmallAtariCNN(shape[0])
            return small, small.out_features
        nature = AtariCNN(shape[0], (32, 64, 64))
        return nature, nature.out_features
    if name == "grid_cnn":
        high = np.asarray(observation_space.high)
        if len(shape) != 2 or not np.issubdtype(observation_space.dtype, np.integer):
            raise ValueError(
                f"network 'grid_cnn' expects 2-D integer grids, got {observation_space}"
            )
        grid = GridCNN(int(high.max()) + 1, (shape[0], shape[1]))
        return grid, grid.out_features
    raise ValueError(
        f"unknown network {name!r}: choose auto, mlp, nature_cnn, small_cnn or grid_cnn"
    )


class QHead(nn.Module):
    """Features (N, F) -> action values (N, A); dueling or plain.

    Dueling (Wang et al. 2016): ``Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')``, the mean
    subtracted so that V and A are identifiable. Not in the paper: both streams are single linear
    layers on the shared features (the paper gave each stream its own 512-unit layer).
    """

    def __init__(self, in_features: int, n_actions: int, dueling: bool = False) -> None:
        super().__init__()
        self.advantage = nn.Linear(in_features, n_actions)
        _init(self.advantage, 1.0)
        self.value: nn.Linear | None = None
        if dueling:
            self.value = nn.Linear(in_features, 1)
            _init(self.value, 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        a = self.advantage(features)
        if self.value is None:
            return a
        return self.value(features) + a - a.mean(dim=-1, keepdim=True)


class ActorCriticQ(nn.Module):
    """Q-values from an actor-critic module's two outputs (``acktr.policies``' contract).

    Plain: the logits are the Q-values. Dueling: the value output is ``V`` and the logits the
    advantages, ``Q = V + A - mean(A)``. This lets DQN train the very network the actor-critic
    learners use (the Tron network of ``agents.neural``), so a comparison differs in the algorithm
    only.
    """

    def __init__(self, actor_critic: nn.Module, dueling: bool) -> None:
        super().__init__()
        self.actor_critic = actor_critic
        self.dueling = dueling

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        logits, value = self.actor_critic(obs)
        if not self.dueling:
            return logits
        return value.unsqueeze(-1) + logits - logits.mean(dim=-1, keepdim=True)


def tron_net(observation_space: gym.Space, action_space: gym.Space) -> nn.Module:
    """The Tron actor-critic network of ``agents.neural`` (what ACKTR and A2C train on Tron).

    Raises:
        ValueError: spaces that are not Tron's.
    """
    from agents.neural import tron_policy

    return tron_policy(observation_space, action_space)


class QNetwork(nn.Module):
    """A torso and a ``QHead``: observations (N, *obs_shape) -> Q-values (N, A)."""

    def __init__(self, torso: nn.Module, out_features: int, n_actions: int, dueling: bool) -> None:
        super().__init__()
        self.torso = torso
        self.head = QHead(out_features, n_actions, dueling)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs))


def box_state(space: gym.spaces.Box) -> dict[str, torch.Tensor]:
    """A ``Box`` as checkpoint tensors (bounds, whose shape and dtype are the space's)."""
    return {"low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high)}


def box_from_state(state: Mapping[str, torch.Tensor]) -> gym.spaces.Box:
    """The ``Box`` that ``box_state`` stored (the grid torso reads its categories off ``high``)."""
    low, high = state["low"].numpy(), state["high"].numpy()
    return gym.spaces.Box(low=low, high=high, dtype=low.dtype)


@dataclass
class GreedyPolicy:
    """A trained network as a plain function: observations -> greedy actions.

    What the arena wraps to play from a checkpoint (``dqn:PATH``, ``a3c:PATH``): it encodes the
    board as the learner's env did and calls this.

    Attributes:
        model: the network, in eval mode.
        observation_space: the observations it was trained on (a batch is ``(N, *shape)``).
        action_space: its ``Discrete`` actions.
        device: where the network runs.
        scores: picks the scores whose arg-max is the greedy action from the model's output
            (Q-values; an actor-critic's logits).
    """

    model: nn.Module
    observation_space: gym.spaces.Box
    action_space: gym.spaces.Discrete
    device: torch.device
    scores: Callable[[Any], torch.Tensor]

    @torch.no_grad()
    def __call__(self, obs: NDArray[Any]) -> NDArray[np.int64]:
        """Greedy actions ``(N,)`` for observations ``(N, *shape)`` (or one action for one
        observation without the batch axis)."""
        obs = np.asarray(obs)
        single = obs.shape == self.observation_space.shape
        batch = torch.as_tensor(obs[None] if single else obs, device=self.device)
        actions = self.scores(self.model(batch)).argmax(dim=-1).cpu().numpy().astype(np.int64)
        return np.asarray(actions[0]) if single else actions
