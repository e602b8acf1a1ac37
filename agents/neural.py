"""The Tron network and the agent that plays from a trained checkpoint.

``TronNet`` is the actor-critic network the self-play learners (ACKTR, A2C) train on Tron
observations (``tron.observe``): an ``(N, S_h, S_w)`` batch of ``uint8`` square categories in, four
logits (absolute ``Direction`` values N, E, S, W) and a state value out, the contract of
``acktr.policies``. ``NeuralAgent`` plays a seat of many games with it: one encoding of all its
games and one forward pass per turn, greedy (arg-max, deterministic) or sampled.

The network, sized for a 2-core CPU, where K-FAC's Kronecker factors of the convolutions (one
``(9 C + 1)``-square matrix from every board position of every sample) cost more than the forward
pass; about 51k parameters (53k with the ``voronoi`` features):

1. The board is padded with one ring of ``WALL`` (squares off a map are walls, so the first
   convolution sees the true border) and expanded to six one-hot planes on the device. With
   ``features="voronoi"`` five more planes join them (``agents.features``: who reaches each square
   first, mine / theirs / tie, and ``1 / (1 + d)`` of both heads' breadth-first distances), which a
   few 3x3 convolutions cannot compute themselves.
2. A 3x3 convolution of 32 channels at full resolution, then three more at half resolution (the
   first of them has stride 2, the last dilation 2): receptive field 17x17 squares, a whole 15x15
   room seen from any head, at a quarter of the positions. Half resolution cut K-FAC's statistics
   3.4x (update time 3.9 s -> 1.05 s for 640 samples, one thread).
3. Pooling that does not depend on the board size: the first layer's features under the player's
   own head (they see exactly the four squares a move can enter), the last layer's under its own
   head and (mean) under the opponents' heads, and the last layer's mean and max over the board
   (with ``voronoi``, also the territory sizes and a "separated" flag).
   The network therefore plays on any map, whatever size it was trained on; only the statistics
   of the pooled features change with the board's size.
4. A 128-unit dense layer, then ``acktr.policies``' policy head (4 logits) and value head.

The legal-move mask (``mask=True``): moves into a wall, a trail (the own one too, so never a
reversal) or the opponent's head get a logit of -1e9, so the policy gives them probability 0 in
rollouts, in the loss, in K-FAC's Fisher samples and in play. With no legal move at all (a forced
crash) the logits are left alone. The first shipped agent had no mask and spent its first 300k
steps learning not to crash (README); the mask is read off the observation, so it costs nothing.

Both choices are saved in the state dict (``feature_set``, ``move_mask``) and in the checkpoint's
JSON config (``network``, from ``TronNet.describe``); a state dict without them (the first shipped
agent's) is the six planes without a mask, so old checkpoints load and play as they were trained.

Checkpoints are the learners' own (``acktr.training``): ``acktr:PATH`` and ``a2c:PATH`` read the
model's state dict from them and rebuild ``TronNet`` from the tensor shapes, so no Python object
is unpickled; any other file gives a one-line ``SpecError`` that says what the file is.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from acktr.policies import PolicyHead, ValueHead
from acktr.training import CheckpointError, read_checkpoint
from agents import features as board_features
from agents.base import FORFEIT, Agent
from agents.registry import SpecError, agent_types, register
from tron.observe import N_CATEGORIES, Category, Encoder
from tron.rules import TronBatch

#: The shipped ACKTR agent, the model behind the ``acktr`` spec with no path.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "acktr_tron.pt"
#: The learners whose checkpoints hold a ``TronNet`` (their registry names).
NEURAL_ALGOS = ("acktr", "a2c")

_EMPTY = int(Category.EMPTY)
_WALL = int(Category.WALL)
_OWN_HEAD = int(Category.OWN_HEAD)
_OPPONENT_HEAD = int(Category.OPPONENT_HEAD)


def _init(layer: nn.Linear | nn.Conv2d, gain: float) -> None:
    nn.init.orthogonal_(layer.weight, gain)
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)


#: Input feature sets of ``TronNet`` (index = the code saved in its state dict).
FEATURE_SETS = ("board", "voronoi")
# A masked move's logit: finite, so that softmax gives it exactly 0 and entropy stays a number
# (0 * -inf would be NaN).
_MASKED_LOGIT = -1e9


def legal_moves(padded: torch.Tensor) -> torch.Tensor:
    """Which of the four moves (N, E, S, W) enter an empty square, ``(N, 4)`` bool.

    Args:
        padded: ``(N, 1, H + 2, W + 2)`` categories with a ring of ``WALL`` around the board.

    A move is legal when the square it enters is ``EMPTY``: walls, trails (the own one included,
    which rules out reversing) and the opponent's head (a trail by the time the move lands) crash.
    A board without a live own head has no legal move.
    """
    own = (padded == _OWN_HEAD)[:, :, 1:-1, 1:-1]
    empty = padded == _EMPTY
    neighbours = (
        empty[:, :, :-2, 1:-1],  # N: the row above
        empty[:, :, 1:-1, 2:],  # E
        empty[:, :, 2:, 1:-1],  # S
        empty[:, :, 1:-1, :-2],  # W
    )
    return torch.stack([(own & n).flatten(1).any(dim=1) for n in neighbours], dim=1)


class TronNet(nn.Module):
    """Tron observations ``(N, S_h, S_w)`` uint8 -> logits ``(N, 4)`` and values ``(N,)``.

    See the module docstring for the layers.

    Args:
        channels: output channels of each convolution (the second one has stride 2).
        dilations: dilation of each convolution (same length as ``channels``, at least 2).
        hidden: width of the dense layer.
        features: ``board`` (the six one-hot planes) or ``voronoi`` (plus the planes of
            ``agents.features.voronoi_features`` into the first convolution, its scalars into the
            dense layer).
        mask: give moves into a wall, a trail or a head (``legal_moves``) a logit of -1e9, so that
            they are never sampled nor played, while any move is legal.
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 32, 32, 32),
        dilations: Sequence[int] = (1, 1, 1, 2),
        hidden: int = 128,
        *,
        features: str = "board",
        mask: bool = False,
    ) -> None:
        super().__init__()
        if len(channels) != len(dilations) or len(channels) < 2:
            raise ValueError("channels and dilations need the same length, at least 2")
        if features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")
        self.channels = tuple(int(c) for c in channels)
        self.dilations = tuple(int(d) for d in dilations)
        self.hidden = int(hidden)
        self.features = features
        self.mask = bool(mask)
        voronoi = features == "voronoi"
        convs = []
        width = N_CATEGORIES + (board_features.N_PLANES if voronoi else 0)
        for i, (c, d) in enumerate(zip(self.channels, self.dilations, strict=True)):
            stride = 2 if i == 1 else 1
            conv = nn.Conv2d(width, c, kernel_size=3, stride=stride, padding=d, dilation=d)
            _init(conv, math.sqrt(2))
            convs.append(conv)
            width = c
        self.convs = nn.ModuleList(convs)
        scalars = board_features.N_SCALARS if voronoi else 0
        self.dense = nn.Linear(self.channels[0] + 4 * width + scalars, self.hidden)
        _init(self.dense, math.sqrt(2))
        self.policy_head = PolicyHead(self.hidden, gym.spaces.Discrete(4))
        self.value_head = ValueHead(self.hidden)
        self.codes: torch.Tensor
        self.register_buffer(
            "codes", torch.arange(N_CATEGORIES).view(1, -1, 1, 1), persistent=False
        )
        # Saved with the weights: dilations, features and the mask leave no trace in the shapes.
        self.dilation: torch.Tensor
        self.register_buffer("dilation", torch.tensor(self.dilations))
        self.feature_set: torch.Tensor
        self.register_buffer("feature_set", torch.tensor(FEATURE_SETS.index(features)))
        self.move_mask: torch.Tensor
        self.register_buffer("move_mask", torch.tensor(self.mask))

    def describe(self) -> dict[str, Any]:
        """The architecture as JSON-able settings (learners store it in the checkpoint's config)."""
        return {
            "network": "TronNet",
            "channels": list(self.channels),
            "dilations": list(self.dilations),
            "hidden": self.hidden,
            "features": self.features,
            "mask": self.mask,
            "parameters": sum(p.numel() for p in self.parameters()),
        }

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits over (N, E, S, W) and state values for a batch of observations."""
        x = F.pad(obs.long(), (1, 1, 1, 1), value=_WALL).unsqueeze(1)  # (N, 1, H+2, W+2)
        own = (x == _OWN_HEAD).float()
        opponents = (x == _OPPONENT_HEAD).float()
        planes = (x == self.codes).float()
        extra: list[torch.Tensor] = []
        if self.features == "voronoi":
            voronoi, scalars = board_features.voronoi_features(obs.detach().cpu().numpy())
            planes = torch.cat([planes, torch.from_numpy(voronoi).to(planes.device)], dim=1)
            extra.append(torch.from_numpy(scalars).to(planes.device))
        h = torch.relu(self.convs[0](planes))
        # Full resolution under the head: the first layer sees exactly the four moves' squares.
        own_local = (h * own).sum(dim=(2, 3))
        for conv in self.convs[1:]:
            h = torch.relu(conv(h))
        # The heads' squares on the half-resolution grid (the windows of the strided layer).
        own_half = F.max_pool2d(own, 3, stride=2, padding=1)
        opp_half = F.max_pool2d(opponents, 3, stride=2, padding=1)
        # A crashed player has no head on the board: its head features are zeros.
        own_features = (h * own_half).sum(dim=(2, 3)) / own_half.sum(dim=(2, 3)).clamp(min=1.0)
        opponent_features = (h * opp_half).sum(dim=(2, 3)) / opp_half.sum(dim=(2, 3)).clamp(min=1.0)
        pooled = torch.cat(
            [
                own_local,
                own_features,
                opponent_features,
                h.mean(dim=(2, 3)),
                h.amax(dim=(2, 3)),
                *extra,
            ],
            dim=1,
        )
        hidden = torch.relu(self.dense(pooled))
        logits = self.policy_head(hidden)
        if self.mask:
            legal = legal_moves(x)
            # With no legal move (a forced crash, or a finished game) every move stays open.
            illegal = ~legal & legal.any(dim=1, keepdim=True)
            logits = logits.masked_fill(illegal, _MASKED_LOGIT)
        return logits, self.value_head(hidden)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> TronNet:
        """A network shaped after ``state`` (a ``TronNet`` state dict), with its weights loaded.

        State dicts saved before the ``feature_set`` and ``move_mask`` buffers existed (the first
        shipped agent's) are the ``board`` features without a mask.

        Raises:
            ValueError: ``state`` is not the state dict of a ``TronNet``.
        """
        state = dict(state)
        state.setdefault("feature_set", torch.tensor(0))
        state.setdefault("move_mask", torch.tensor(False))
        try:
            dilations = [int(d) for d in state["dilation"].tolist()]
            channels = [int(state[f"convs.{i}.weight"].shape[0]) for i in range(len(dilations))]
            hidden = int(state["dense.weight"].shape[0])
            features = FEATURE_SETS[int(state["feature_set"])]
            mask = bool(state["move_mask"])
            # The initialisation is overwritten at once: keep it off the global random stream, so
            # that loading a network (a league snapshot, say) does not change a seeded run.
            with torch.random.fork_rng(devices=[]):
                net = cls(channels, dilations, hidden, features=features, mask=mask)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError) as e:
            raise ValueError(f"not a Tron network's weights (missing or bad {e})") from None
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(
                f"weights do not fit a Tron network: {str(e).splitlines()[0]}"
            ) from None
        return net


def tron_policy(
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    features: str = "voronoi",
    mask: bool = True,
) -> TronNet:
    """The policy factory the learners take as ``policy=`` (``network="custom"``) on Tron envs.

    Args:
        observation_space: the env's single observation space.
        action_space: the env's single action space.
        features: the network's input features (``TronNet``).
        mask: mask the moves that crash (``TronNet``).

    Raises:
        ValueError: spaces that are not Tron's (2-D uint8 categories, ``Discrete(4)``).
    """
    shape = observation_space.shape or ()
    if (
        not isinstance(observation_space, gym.spaces.Box)
        or len(shape) != 2
        or observation_space.dtype != np.uint8
        or not isinstance(action_space, gym.spaces.Discrete)
        or int(action_space.n) != 4
    ):
        raise ValueError(
            f"the Tron network takes (S_h, S_w) uint8 boards and Discrete(4) moves, got "
            f"{observation_space} / {action_space}"
        )
    return TronNet(features=features, mask=mask)


def load_network(path: str | os.PathLike[str], algo: str | None = None) -> TronNet:
    """The ``TronNet`` of a learner checkpoint (file or run directory), in eval mode on the CPU.

    Args:
        path: a checkpoint written by ``acktr``'s ``ACKTR`` or ``A2C`` trained on ``tron``.
        algo: when given, the learner the checkpoint must come from.

    Raises:
        CheckpointError: unreadable or foreign file, a checkpoint of another learner, or weights of
            another network (an Atari or MuJoCo run, say).
    """
    checkpoint = read_checkpoint(path)
    if checkpoint.algo not in NEURAL_ALGOS:
        raise CheckpointError(
            f"{path} is a {checkpoint.algo} checkpoint; this agent plays {' and '.join(NEURAL_ALGOS)}"
            f" checkpoints (try {checkpoint.algo}:PATH)"
        )
    if algo is not None and checkpoint.algo != algo:
        raise CheckpointError(
            f"{path} is a {checkpoint.algo} checkpoint: use {checkpoint.algo}:PATH"
        )
    model = checkpoint.state.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(f"{path} holds no model weights")
    try:
        net = TronNet.from_state_dict(model)
    except ValueError as e:
        env = checkpoint.config.get("env_id")
        raise CheckpointError(f"{path} (trained on {env!r}) holds no Tron network: {e}") from None
    return net.eval()


class NeuralAgent(Agent):
    """Plays one seat of many games with a ``TronNet``: one encoding and one forward pass a turn.

    Args:
        net: the network (put in eval mode).
        greedy: play the arg-max move (deterministic); otherwise sample from the policy.
        seed: seeds the sampling.
        name: display name.
    """

    def __init__(
        self, net: TronNet, *, greedy: bool = True, seed: int = 0, name: str = "neural"
    ) -> None:
        self.net = net.eval()
        self.greedy = greedy
        self.name = name
        self._generator = torch.Generator().manual_seed(seed)
        self._encoder: Encoder | None = None

    def _encoder_for(self, batch: TronBatch) -> Encoder:
        if self._encoder is None or self._encoder.batch is not batch:
            self._encoder = Encoder(batch)
        return self._encoder

    @torch.no_grad()
    def logits(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> torch.Tensor:
        """The network's logits ``(G, 4)`` for ``seat`` in each of ``games``."""
        obs = self._encoder_for(batch).encode(seat, np.asarray(games, dtype=np.int64))
        return self.net(torch.from_numpy(obs))[0]

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        """The greedy or sampled move of ``seat`` in each of ``games``."""
        if len(games) == 0:
            return np.zeros(0, dtype=np.int8)
        logits = self.logits(batch, seat, games)
        if self.greedy:
            moves = logits.argmax(dim=1)
        else:
            moves = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=self._generator)
            moves = moves.squeeze(1)
        return moves.numpy().astype(np.int8)


def make_neural_agent(algo: str, argument: str, seed: int) -> NeuralAgent:
    """The agent of spec ``ALGO[:PATH]`` (``acktr`` alone: the shipped model).

    Raises:
        SpecError: no path and no shipped model, or a checkpoint that cannot be played.
    """
    if argument:
        path = Path(argument).expanduser()
    elif algo == "acktr":
        path = SHIPPED_MODEL
        if not path.exists():
            raise SpecError(
                f"no shipped model at {path}: train one with `tron train acktr --env tron` "
                "and pass acktr:PATH"
            )
    else:
        raise SpecError(f"{algo} needs a checkpoint: {algo}:PATH")
    try:
        net = load_network(path, algo)
    except CheckpointError as e:
        raise SpecError(str(e)) from None
    return NeuralAgent(net, greedy=True, seed=seed, name=algo)


class PolicyAgent(Agent):
    """Plays one seat of many games with a greedy policy from a DQN or A3C checkpoint.

    The board is encoded at the observation shape the learner was trained on, so the agent plays
    every map up to that size.

    Args:
        policy: observations ``(N, H, W)`` -> greedy actions ``(N,)`` (``agents.networks.GreedyPolicy``).
        obs_shape: the ``(H, W)`` observation shape the policy expects.
        name: display name.
    """

    def __init__(self, policy: Any, obs_shape: tuple[int, int], *, name: str = "policy") -> None:
        self.policy = policy
        self.obs_shape = obs_shape
        self.name = name
        self._encoder: Encoder | None = None

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        """The policy's greedy move of ``seat`` in each of ``games``."""
        if len(games) == 0:
            return np.zeros(0, dtype=np.int8)
        if self._encoder is None or self._encoder.batch is not batch:
            self._encoder = Encoder(batch)
        games = np.asarray(games, dtype=np.int64)
        h, w = self.obs_shape
        obs = self._encoder.encode(seat, games)
        # Maps sit top-left with walls beyond them, so a crop or a wall padding of the batch-wide
        # encoding is exactly the encoding at the network's size, for every map that fits it.
        if obs.shape[1] < h or obs.shape[2] < w:
            padded = np.full(
                (len(games), max(h, obs.shape[1]), max(w, obs.shape[2])),
                int(Category.WALL),
                dtype=np.uint8,
            )
            padded[:, : obs.shape[1], : obs.shape[2]] = obs
            obs = padded
        obs = np.ascontiguousarray(obs[:, :h, :w])
        moves = np.asarray(self.policy(obs), dtype=np.int8).reshape(len(games))
        # A fixed-size network cannot see a larger board: it gives those games up, saying why.
        heights = np.array([batch.maps[i].height for i in batch.map_index[games]])
        widths = np.array([batch.maps[i].width for i in batch.map_index[games]])
        moves[(heights > h) | (widths > w)] = FORFEIT
        return moves

    def forfeit_reason(self, game: int) -> str:
        """Why a game was given up: the board is larger than the network's observations."""
        h, w = self.obs_shape
        return f"the map is larger than the {h}x{w} boards {self.name} was trained on"


def make_policy_agent(algo: str, argument: str, seed: int) -> PolicyAgent:
    """The agent of spec ``dqn:PATH`` or ``a3c:PATH`` (a checkpoint of ``tron train dqn|a3c``).

    Raises:
        SpecError: no path, an unreadable or foreign checkpoint, or one not trained on Tron boards.
    """
    if not argument:
        raise SpecError(f"{algo} needs a checkpoint: {algo}:PATH")
    path = Path(argument).expanduser()
    if path.is_dir():
        path = path / "checkpoint.pt"
    try:
        if algo == "dqn":
            from agents.dqn import load_policy as load_dqn

            policy = load_dqn(path)
        else:
            from agents.a3c import load_policy as load_a3c

            policy = load_a3c(path)
    except (CheckpointError, ValueError) as e:
        raise SpecError(str(e)) from None
    shape = tuple(policy.observation_space.shape)
    if len(shape) != 2 or policy.action_space.n != 4:
        raise SpecError(
            f"{path}: a {algo} checkpoint with observations {shape} and "
            f"{policy.action_space.n} actions was not trained on Tron boards (`--env tron`)"
        )
    return PolicyAgent(policy, (int(shape[0]), int(shape[1])), name=algo)


def _acktr(argument: str, seed: int) -> Agent:
    return make_neural_agent("acktr", argument, seed)


def _a2c(argument: str, seed: int) -> Agent:
    return make_neural_agent("a2c", argument, seed)


#: Registry entries of the neural agents: name -> (factory, usage, summary).
NEURAL_SPECS: dict[str, tuple[Any, str, str]] = {
    "acktr": (
        _acktr,
        "acktr[:PATH]",
        "a network trained by ACKTR self-play (default: the shipped models/acktr_tron.pt)",
    ),
    "a2c": (_a2c, "a2c:PATH", "a network trained by A2C self-play, from its checkpoint"),
    "dqn": (
        lambda argument, seed: make_policy_agent("dqn", argument, seed),
        "dqn:PATH",
        "a greedy DQN policy trained on Tron (tron train dqn --env tron), from its checkpoint",
    ),
    "a3c": (
        lambda argument, seed: make_policy_agent("a3c", argument, seed),
        "a3c:PATH",
        "a greedy A3C policy trained on Tron (tron train a3c --env tron), from its checkpoint",
    ),
}


def register_specs() -> None:
    """Make ``acktr[:PATH]`` and ``a2c:PATH`` specs resolve (once; a second call does nothing)."""
    known = {t.name for t in agent_types()}
    for name, (factory, usage, summary) in NEURAL_SPECS.items():
        if name not in known:
            register(name, factory, usage=usage, summary=summary)


register_specs()
