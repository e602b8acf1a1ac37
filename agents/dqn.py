"""DQN: Double DQN with a target network, n-step returns and dueling heads as options.

The loop, per vector-env step (top to bottom in ``DQN.learn``):

1. *Act*: epsilon-greedy on the online network, epsilon decaying linearly from ``eps_start`` to
   ``eps_end`` over the first ``exploration_steps`` env steps.
2. *Store*: the step goes into the replay buffer (``agents.replay``: one frame per step, stacks
   and n-step windows rebuilt from indices at sampling).
3. *Learn*: every ``train_freq`` env steps, once ``learning_starts`` transitions are stored,
   ``gradient_steps`` minibatch steps on the Huber loss (``smooth_l1``, delta 1) between
   ``Q(s_t, a_t)`` and the n-step Double DQN target (van Hasselt et al. 2016)::

       y_t = G_t^(m) + gamma^m * Q_target(s_{t+m}, argmax_a Q_online(s_{t+m}, a))

   with ``G_t^(m)`` the discounted reward sum over ``m = n`` steps or up to the episode's end
   (no bootstrap after termination, bootstrap from the final observation after truncation);
   ``double=False`` takes ``max_a Q_target`` (Nature DQN). The gradient norm is clipped at
   ``max_grad_norm``.
4. *Sync*: the target network copies the online one every ``target_update_interval`` gradient
   steps (the Nature paper's unit: parameter updates).

Everything the loop does every step stays out of Python loops over envs: one forward pass for all
sub-environments' actions, one ``add`` per vector step. The replay buffer is not part of a
checkpoint (an Atari buffer is 7 GB): a loaded learner refills ``learning_starts`` transitions with
its current epsilon before it updates again.

Presets (``PRESETS``): ``atari`` follows CleanRL's ``dqn_atari`` (Adam 1e-4, buffer 1M, batch 32,
learning from 80k steps, an update every 4 steps, target sync every 1000 env steps, epsilon 1 ->
0.01 over 1M steps) with Double DQN on; ``classic`` follows the rl-baselines3-zoo CartPole-v1
settings; ``tron`` (the Tron network of ACKTR and A2C, dueling off, 3-step targets) is a
starting point for the Tron envs, not a tuned setting.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import VectorEnv
from numpy.typing import NDArray
from torch import nn

from acktr.envs import (
    check_autoreset,
    ensure_episode_statistics,
    finished_episodes,
)
from acktr.training import (
    Callback,
    EpisodeWindow,
    LearnerBase,
    ProgressBar,
    register_learner,
    reset_seed,
    resolve_device,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from agents.networks import (
    ActorCriticQ,
    GreedyPolicy,
    QNetwork,
    box_from_state,
    box_state,
    build_torso,
    tron_net,
)
from agents.replay import ReplayBuffer

log = logging.getLogger(__name__)

T = TypeVar("T", bound="DQN")

#: A Q-network factory: (observation space, action space) -> module mapping obs (N, ...) to (N, A).
QNetworkFactory = Callable[[gym.Space, gym.Space], nn.Module]


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of DQN (defaults: the classic-control preset)."""

    network: Literal["auto", "mlp", "nature_cnn", "small_cnn", "grid_cnn", "tron_net", "custom"] = (
        "auto"
    )
    """Torso (``agents.networks``); ``auto`` picks by observation space; ``tron_net`` is the Tron
    network of ACKTR and A2C with its logits as Q-values (``ActorCriticQ``); ``custom`` takes the
    module passed as ``q_network=``."""
    hidden: tuple[int, ...] = (64, 64)
    """MLP hidden widths."""
    activation: Literal["tanh", "relu"] = "relu"
    """MLP activation."""
    dueling: bool = False
    """Dueling value/advantage heads (Wang et al. 2016)."""
    double: bool = True
    """Double DQN target: the online network picks the bootstrap action, the target rates it."""
    n_step: int = 3
    """n of the n-step return targets."""
    gamma: float = 0.99
    """Discount."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (all sub-environments together)."""
    frame_stack: int = 0
    """Frames per observation stacked along the first axis, stored once each; 0: the first axis
    of (C, H, W) ``uint8`` observations, else 1 (whole observations stored)."""
    padding: Literal["zero", "first"] = "zero"
    """What the env shows before an episode's first frame in a stack (ale-py: zero)."""
    batch_size: int = 64
    """Minibatch size."""
    learning_starts: int = 1000
    """Transitions stored before the first gradient step."""
    train_freq: int = 256
    """Env steps (all sub-environments counted) between updates."""
    gradient_steps: int = 128
    """Gradient steps per update."""
    target_update_interval: int = 128
    """Gradient steps between target-network syncs (hard copies)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """``adam``, or ``rmsprop`` (centred, as in the Nature paper)."""
    lr: float = 2.3e-3
    """Learning rate."""
    optimizer_eps: float = 1e-8
    """Optimizer epsilon (Nature RMSprop: 0.01; Dopamine's Adam: 1.5e-4)."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient norm of each step (``none``: no clip)."""
    eps_start: float = 1.0
    """Initial exploration epsilon."""
    eps_end: float = 0.04
    """Final exploration epsilon."""
    exploration_steps: int = 8_000
    """Env steps over which epsilon decays linearly."""
    log_every: int = 1_000
    """Env steps between calls of ``learn``'s callback (metrics averaged over the interval)."""


@dataclass(frozen=True)
class Preset:
    """A suite's settings: the config and the number of parallel environments."""

    num_envs: int
    config: DQNConfig


PRESETS: dict[str, Preset] = {
    "classic": Preset(1, DQNConfig()),
    "atari": Preset(
        1,
        DQNConfig(
            network="nature_cnn",
            n_step=1,
            buffer_size=1_000_000,
            batch_size=32,
            learning_starts=80_000,
            train_freq=4,
            gradient_steps=1,
            target_update_interval=250,
            lr=1e-4,
            eps_end=0.01,
            exploration_steps=1_000_000,
            max_grad_norm=10.0,
            log_every=10_000,
        ),
    ),
    "tron": Preset(
        16,
        DQNConfig(
            network="tron_net",
            buffer_size=200_000,
            batch_size=64,
            learning_starts=10_000,
            train_freq=16,
            gradient_steps=2,
            target_update_interval=1_000,
            lr=1e-4,
            eps_end=0.02,
            exploration_steps=200_000,
            log_every=10_000,
        ),
    ),
}


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then ``end``."""
    if duration <= 0 or step >= duration:
        return end
    return start + (end - start) * step / duration


@register_learner("dqn")
class DQN(LearnerBase):
    """Double DQN on a gymnasium vector env with a ``Discrete`` action space.

    Args:
        env: a vector env with NEXT_STEP autoreset (``acktr.envs.make_vec_env``, or
            ``tron.env.TronVectorEnv`` against fixed opponents).
        config: hyperparameters; default: the ``classic`` preset.
        q_network: a module or a factory ``(obs_space, action_space) -> module`` mapping
            observations to Q-values (use ``network="custom"``).
        seed: seeds torch (initialisation), the exploration and replay sampling, and the env resets.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
    """

    algo: ClassVar[str] = "dqn"
    config_class: ClassVar[type[Any]] = DQNConfig
    config: DQNConfig

    def __init__(
        self,
        env: VectorEnv,
        config: DQNConfig | None = None,
        *,
        q_network: nn.Module | QNetworkFactory | None = None,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self._setup(
            env.single_observation_space,
            env.single_action_space,
            config or PRESETS["classic"].config,
            q_network,
            seed,
            device,
        )
        self.set_env(env)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def _preset_table(cls) -> dict[str, Preset]:
        return PRESETS

    def _setup(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: DQNConfig,
        q_network: nn.Module | QNetworkFactory | None,
        seed: int,
        device: str,
    ) -> None:
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"DQN needs a Discrete action space, got {action_space}")
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"DQN needs a Box observation space, got {observation_space}")
        for name in ("n_step", "batch_size", "train_freq", "gradient_steps"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
        if config.target_update_interval < 1:
            raise ValueError(
                f"target_update_interval must be >= 1, got {config.target_update_interval}"
            )
        self.config = config
        self.seed = seed
        self.device = resolve_device(device)
        self.observation_space: gym.spaces.Box = observation_space
        self.action_space: gym.spaces.Discrete = action_space
        self.env: VectorEnv | None = None
        self.env_id: str | None = None
        self.suite: str | None = None
        self.num_timesteps = 0
        self.num_gradient_steps = 0
        self.num_target_updates = 0
        torch.manual_seed(seed)
        self._np_rng = np.random.default_rng(seed)
        self.q_net = self._build_network(q_network).to(self.device)
        self.target_net = self._build_network(q_network).to(self.device)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self.optimizer: torch.optim.Optimizer
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(
                self.q_net.parameters(), lr=config.lr, eps=config.optimizer_eps, foreach=True
            )
        else:
            self.optimizer = torch.optim.RMSprop(
                self.q_net.parameters(),
                lr=config.lr,
                alpha=0.95,
                eps=config.optimizer_eps,
                centered=True,
                foreach=True,
            )
        self.buffer: ReplayBuffer | None = None
        self._episodes = EpisodeWindow()
        self._obs: NDArray[Any] | None = None

    def _build_network(self, q_network: nn.Module | QNetworkFactory | None) -> nn.Module:
        c = self.config
        if c.network == "custom":
            if q_network is None:
                raise ValueError("network 'custom' needs the module or factory as q_network=")
            if isinstance(q_network, nn.Module):
                # The target network is a copy of the given module, never the module itself.
                return copy.deepcopy(q_network)
            return q_network(self.observation_space, self.action_space)
        if q_network is not None:
            raise ValueError(f"q_network= is only used with network 'custom', not {c.network!r}")
        if c.network == "tron_net":
            return ActorCriticQ(tron_net(self.observation_space, self.action_space), c.dueling)
        torso, width = build_torso(
            c.network,
            self.observation_space,
            hidden=c.hidden,
            activation=c.activation,
            cnn="nature_cnn",
        )
        return QNetwork(torso, width, int(self.action_space.n), c.dueling)

    def set_env(self, env: VectorEnv) -> None:
        """Train on ``env`` from the next ``learn``; its episodes start afresh and the replay
        buffer restarts empty (it is laid out per sub-environment).

        Raises:
            ValueError: spaces that differ from the learner's, or an autoreset mode other than
                NEXT_STEP.
        """
        check_autoreset(env)
        obs_space, act_space = env.single_observation_space, env.single_action_space
        if (
            obs_space.shape != self.observation_space.shape
            or obs_space.dtype != self.observation_space.dtype
            or act_space != self.action_space
        ):
            raise ValueError(
                f"env spaces {obs_space} / {act_space} differ from the learner's "
                f"{self.observation_space} / {self.action_space}"
            )
        c = self.config
        shape = tuple(self.observation_space.shape)
        frame_stack = c.frame_stack
        if frame_stack == 0:
            stacked = len(shape) == 3 and self.observation_space.dtype == np.uint8
            frame_stack = shape[0] if stacked else 1
        self.env = ensure_episode_statistics(env)
        self.buffer = ReplayBuffer(
            c.buffer_size,
            env.num_envs,
            shape,
            self.observation_space.dtype,
            frame_stack=frame_stack,
            n_step=c.n_step,
            gamma=c.gamma,
            padding=c.padding,
            rng=self._np_rng,
        )
        log.info(
            "replay buffer: %d transitions, %.3g GB when full",
            self.buffer.capacity,
            self.buffer.nbytes / 1e9,
        )
        self._obs = None

    # -- acting --------------------------------------------------------------------------------

    def exploration_rate(self) -> float:
        """Epsilon at the current step count."""
        c = self.config
        return linear_schedule(c.eps_start, c.eps_end, c.exploration_steps, self.num_timesteps)

    @torch.no_grad()
    def q_values(self, obs: NDArray[Any]) -> NDArray[np.float32]:
        """Q-values (N, A) of a batch of observations under the online network."""
        batch = torch.as_tensor(np.asarray(obs), device=self.device)
        return self.q_net(batch).float().cpu().numpy()

    def predict(self, obs: NDArray[Any], deterministic: bool = True) -> NDArray[np.int64]:
        """Greedy actions for observations (N, *obs_shape), or for one without the batch axis;
        ``deterministic=False`` explores with the current epsilon."""
        obs = np.asarray(obs)
        single = obs.shape == self.observation_space.shape
        batch = obs[None] if single else obs
        eps = 0.0 if deterministic else self.exploration_rate()
        actions = self._epsilon_greedy(batch, eps)
        return np.asarray(actions[0]) if single else actions

    def _epsilon_greedy(self, obs: NDArray[Any], eps: float) -> NDArray[np.int64]:
        n = obs.shape[0]
        explore: NDArray[np.bool_] = np.asarray(self._np_rng.random(n) < eps)
        random_actions = self._np_rng.integers(int(self.action_space.n), size=n, dtype=np.int64)
        if explore.all():
            # Early in training nearly every action is random: skip the forward pass.
            return np.asarray(random_actions)
        greedy = self.q_values(obs).argmax(axis=1)
        return np.where(explore, random_actions, greedy).astype(np.int64)

    # -- training ------------------------------------------------------------------------------

    def learn(
        self: T, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = False
    ) -> T:
        """Train until ``num_timesteps`` reaches ``total_timesteps`` (a target, not an increment).

        Args:
            total_timesteps: step count to reach (all sub-environments counted).
            callback: called every ``log_every`` env steps with ``(learner, metrics)``; ``False``
                stops training.
            progress_bar: show a tqdm bar with steps/s and the mean return of the last 100
                episodes.
        """
        if self.env is None or self.buffer is None:
            raise ValueError("no env to train on: pass one to load(...) or call set_env(env)")
        env, buffer, c = self.env, self.buffer, self.config
        if self._obs is None:
            self._obs, _ = env.reset(seed=reset_seed(self.seed, self.num_timesteps))
        if total_timesteps <= self.num_timesteps:
            log.warning(
                "learn(%d): already at %d steps, nothing to do", total_timesteps, self.num_timesteps
            )
        bar = ProgressBar(total_timesteps, self.num_timesteps) if progress_bar else None
        next_log = (self.num_timesteps // c.log_every + 1) * c.log_every
        window = _UpdateStats()
        log_start, log_steps = time.perf_counter(), self.num_timesteps
        try:
            while self.num_timesteps < total_timesteps:
                obs = self._obs
                eps = self.exploration_rate()
                actions = self._epsilon_greedy(obs, eps)
                next_obs, rewards, terminated, truncated, info = env.step(actions)
                buffer.add(obs, actions, rewards, terminated, truncated)
                self._episodes.add(finished_episodes(info))
                self._obs = next_obs
                before = self.num_timesteps
                self.num_timesteps += env.num_envs
                if buffer.steps_added * buffer.num_envs >= c.learning_starts:
                    updates = self.num_timesteps // c.train_freq - before // c.train_freq
                    for _ in range(updates):
                        window.add(self.update(c.gradient_steps))
                if bar is not None:
                    bar.update(self.num_timesteps, self._episodes.mean_return())
                if self.num_timesteps >= next_log or self.num_timesteps >= total_timesteps:
                    now = time.perf_counter()
                    metrics = window.pop()
                    metrics.update(self._episodes.pop_metrics())
                    metrics["charts/epsilon"] = eps
                    metrics["charts/gradient_steps"] = float(self.num_gradient_steps)
                    metrics["charts/target_updates"] = float(self.num_target_updates)
                    metrics["charts/steps_per_s"] = (self.num_timesteps - log_steps) / max(
                        now - log_start, 1e-9
                    )
                    log_start, log_steps = now, self.num_timesteps
                    next_log = (self.num_timesteps // c.log_every + 1) * c.log_every
                    if callback is not None and callback(self, metrics) is False:
                        break
        finally:
            if bar is not None:
                bar.close()
        return self

    def update(self, gradient_steps: int = 1) -> dict[str, float]:
        """``gradient_steps`` minibatch steps from the replay buffer, syncing the target network
        every ``target_update_interval`` gradient steps.

        Returns:
            the mean TD loss and mean Q(s, a) of the steps.

        Raises:
            ValueError: the buffer holds no complete transition yet.
        """
        assert self.buffer is not None
        c = self.config
        losses, q_means = [], []
        for _ in range(gradient_steps):
            batch = self.buffer.sample(c.batch_size)
            obs = torch.as_tensor(batch.obs, device=self.device)
            next_obs = torch.as_tensor(batch.next_obs, device=self.device)
            actions = torch.as_tensor(batch.actions, device=self.device)
            returns = torch.as_tensor(batch.returns, device=self.device)
            discounts = torch.as_tensor(batch.discounts, device=self.device)
            with torch.no_grad():
                q_next_target = self.target_net(next_obs)
                if c.double:
                    a_next = self.q_net(next_obs).argmax(dim=1, keepdim=True)
                    q_next = q_next_target.gather(1, a_next).squeeze(1)
                else:
                    q_next = q_next_target.max(dim=1).values
                y = returns + discounts * q_next
            q = self.q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
            loss = F.smooth_l1_loss(q, y)
            self.optimizer.zero_grad()
            loss.backward()
            if c.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.q_net.parameters(), c.max_grad_norm, foreach=True)
            self.optimizer.step()
            self.num_gradient_steps += 1
            if self.num_gradient_steps % c.target_update_interval == 0:
                self.target_net.load_state_dict(self.q_net.state_dict())
                self.num_target_updates += 1
            losses.append(loss.item())
            q_means.append(q.mean().item())
        return {
            "losses/td_loss": float(np.mean(losses)),
            "losses/q_values": float(np.mean(q_means)),
        }

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint (networks, optimizer, counters, RNG states, JSON config) atomically;
        the replay buffer is not saved."""
        state: dict[str, Any] = {
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self._np_rng),
            "num_gradient_steps": self.num_gradient_steps,
            "num_target_updates": self.num_target_updates,
            "observation_space": box_state(self.observation_space),
        }
        config = {
            **self._checkpoint_json(),
            "num_envs": self.env.num_envs if self.env is not None else None,
            "n_actions": int(self.action_space.n),
        }
        save_checkpoint(
            path, algo=self.algo, config=config, num_timesteps=self.num_timesteps, state=state
        )

    @classmethod
    def load(
        cls: type[T],
        path: str | os.PathLike[str],
        env: VectorEnv | None = None,
        device: str = "auto",
        *,
        q_network: nn.Module | QNetworkFactory | None = None,
    ) -> T:
        """A learner restored from a checkpoint written by ``save``.

        Args:
            path: checkpoint file or run directory.
            env: the env to keep training on (not needed for ``predict``); its episodes restart
                and the replay buffer refills ``learning_starts`` transitions before updates.
            device: where to put the networks.
            q_network: the module or factory again, for checkpoints of ``network="custom"``.

        Raises:
            CheckpointError: unreadable file or a checkpoint of another learner.
            ValueError: an env whose spaces differ from the checkpoint's.
        """
        learner = cls._restore(path, q_network, device)
        if env is not None:
            learner.set_env(env)
        return learner

    @classmethod
    def _spaces_from_checkpoint(
        cls, meta: Mapping[str, Any], state: Mapping[str, Any]
    ) -> tuple[gym.Space, gym.Space]:
        observation_space = box_from_state(state["observation_space"])
        return observation_space, gym.spaces.Discrete(int(meta["n_actions"]))

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_gradient_steps = int(state["num_gradient_steps"])
        self.num_target_updates = int(state["num_target_updates"])
        set_rng_state(state["rng"], self._np_rng)

    def describe(self) -> dict[str, Any]:
        """Algorithm, env, preset and every hyperparameter (printed by ``tron train``)."""
        return self._describe(
            self.q_net,
            self.env.num_envs if self.env is not None else None,
            str(self.device),
            replay_gb_when_full=round(self.buffer.nbytes / 1e9, 3) if self.buffer else None,
        )


class _UpdateStats:
    """Loss statistics of the updates since the last log."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._count = 0

    def add(self, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1

    def pop(self) -> dict[str, float]:
        out = {k: v / self._count for k, v in self._sums.items()} if self._count else {}
        self._sums, self._count = {}, 0
        return out


def load_policy(
    path: str | os.PathLike[str],
    device: str = "cpu",
    *,
    q_network: nn.Module | QNetworkFactory | None = None,
) -> GreedyPolicy:
    """A DQN checkpoint as a function from observations to greedy actions (arg-max Q).

    Raises:
        CheckpointError: unreadable file or not a DQN checkpoint.
    """
    learner = DQN.load(path, device=device, q_network=q_network)
    learner.q_net.eval()
    return GreedyPolicy(
        model=learner.q_net,
        observation_space=learner.observation_space,
        action_space=learner.action_space,
        device=learner.device,
        scores=lambda q: q,
    )
