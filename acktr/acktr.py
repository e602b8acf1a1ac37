"""ACKTR and A2C: one synchronous advantage actor-critic, two optimizers.

The loop, per update (CleanRL style, top to bottom in ``ActorCriticLearner.learn``):

1. *Rollout*: ``n_steps`` steps of every sub-environment with the current policy.
2. *Targets*: advantages and returns by ``compute_advantages`` (n-step returns, or GAE), with
   episode ends and truncations handled under gymnasium's NEXT_STEP autoreset.
3. *Update*: ``optimizer="kfac"`` is ACKTR (Wu et al., 2017): the true Fisher from the model's own
   sampled distributions inside ``KFAC.fisher()``, then the loss, then a K-FAC step with trust
   region and momentum; ``optimizer="rmsprop"`` is A2C, the paper's baseline, on the same code.

Three layouts:

- ``shared`` (Atari): one torso with a policy and a value head, one optimizer, loss
  ``-mean(A log pi(a|s)) + vf_coef * mean((R - V)^2) / 2 - ent_coef * H``; the ACKTR Fisher is the
  joint one of the paper: ``-log pi(a~pi)`` plus ``vf_fisher_coef`` times the negative
  log-likelihood of a unit Gaussian on the value, target ``V + N(0, 1)`` detached.
- ``joint`` (classic control): the same loss and joint Fisher over a policy network and a value
  network that share no layer.
- ``separate`` (the paper's MuJoCo setup): a policy and a value network, each with its own
  optimizer. Per update the value network takes ``vf_iters`` steps on the returns, then the policy
  one step on standardised GAE advantages, and the policy step size adapts to keep the KL between
  successive policies near ``desired_kl`` (x1.5 or /1.5 outside [desired/2, 2 desired]).

Data parallelism: ``distribute(world)`` makes a learner one rank of a ``torch.distributed`` run
(``acktr.distributed``): each rank steps its own envs, and the gradients, K-FAC factors and every
other batch statistic are averaged across ranks, so all ranks take the step of one process with all
the envs.

Reset steps (the step after an episode ended, which only resets the env) are left out of every
loss. Rewards are whatever the env gives (Atari's are clipped by ``acktr.envs``); the logged
``charts/episodic_return`` comes from ``RecordEpisodeStatistics`` (game scores).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from numpy.typing import NDArray
from torch import nn
from torch.distributions import kl_divergence

from acktr.distributed import World, rank_seed
from acktr.envs import (
    check_autoreset,
    ensure_episode_statistics,
    finished_episodes,
)
from acktr.kfac import KFAC
from acktr.policies import (
    action_distribution,
    build_actor_critic,
    distribution_mode,
    param_dim,
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

log = logging.getLogger(__name__)

T = TypeVar("T", bound="ActorCriticLearner")

#: A network factory: (observation space, action space) -> actor-critic module.
PolicyFactory = Callable[[gym.Space, gym.Space], nn.Module]


@dataclass(frozen=True)
class ActorCriticConfig:
    """Hyperparameters of ACKTR and A2C (defaults: ACKTR on classic control)."""

    optimizer: Literal["kfac", "rmsprop"] = "kfac"
    """``kfac`` is ACKTR, ``rmsprop`` is A2C."""
    layout: Literal["shared", "joint", "separate"] = "shared"
    """``shared``: one torso, two heads, one optimizer (Atari). ``joint``: a policy and a value
    network trained together by one optimizer, one joint Fisher (classic control). ``separate``:
    the two networks each with their own optimizer and update (the paper's MuJoCo setup)."""
    network: Literal["acktr_cnn", "nature_cnn", "mlp", "custom"] = "mlp"
    """Built-in network (``acktr.policies``), or ``custom`` for a module passed as ``policy=``."""
    hidden: tuple[int, ...] = (64, 64)
    """MLP hidden widths."""
    activation: Literal["tanh", "relu"] = "tanh"
    """MLP activation."""
    n_steps: int = 20
    """Steps per sub-environment per update (batch = n_steps * num_envs)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 1.0
    """GAE lambda; 1.0 gives the n-step returns of A2C/ACKTR on Atari."""
    ent_coef: float = 0.01
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight (shared layout)."""
    normalize_advantages: bool = False
    """Standardise advantages per batch (the MuJoCo setup does)."""
    normalize_obs: bool = False
    """Running mean/std observation normalisation, updated every step (ZFilter of the original)."""
    obs_clip: float = 5.0
    """Clip normalised observations to [-obs_clip, obs_clip]."""
    lr: float = 0.25
    """Learning rate (K-FAC: the maximum step size before the trust region)."""
    lr_schedule: Literal["linear", "constant"] = "linear"
    """``linear`` decays lr to 0 at ``learn``'s ``total_timesteps``, like the original."""
    max_grad_norm: float | None = None
    """Clip the loss gradient's norm before every optimizer step (``none``: no clip). A2C clips at
    0.5; ACKTR leaves it to K-FAC, which clips its cold steps at 0.5 like the original."""
    momentum: float = 0.9
    """K-FAC momentum."""
    stat_decay: float = 0.99
    """K-FAC running-average decay of the Kronecker factors."""
    damping: float = 0.01
    """K-FAC damping."""
    kl_clip: float = 0.001
    """K-FAC trust region (bound on the second-order KL of a step)."""
    inverse_every: int = 10
    """K-FAC: refresh the factor inverses every this many steps."""
    cold_steps: int = 0
    """K-FAC: first-order steps before preconditioning starts."""
    vf_fisher_coef: float = 1.0
    """Weight of the value term in ACKTR's joint Fisher (shared and joint layouts)."""
    fisher_fraction: float = 1.0
    """Part of the batch the Fisher pass runs on (every k-th example counted env by env, through
    its own forward pass: ``fisher_subbatch``); 1 is the paper. Its cost is the im2col
    statistics of the conv factors."""
    stats_every: int = 1
    """K-FAC: run the Fisher pass on every this many updates only (1 is the paper); ``stat_decay``
    stays per update (each pass decays the factors by ``stat_decay ** stats_every``)."""
    conv_statistics_dtype: Literal["float32", "bfloat16"] = "float32"
    """K-FAC: dtype of the conv layers' im2col statistics products; ``bfloat16`` is about 4x
    faster on a CPU with native bfloat16 (AVX512-BF16, AMX), and may be slower on others."""
    inverse_dtype: Literal["float64", "float32"] = "float64"
    """K-FAC: dtype of the factor inversions; ``float32`` halves their cost."""
    rms_alpha: float = 0.99
    """RMSprop smoothing constant."""
    rms_eps: float = 1e-5
    """RMSprop epsilon."""
    desired_kl: float | None = None
    """Separate layout: adapt the policy step size towards this KL per update (``none``: the lr
    schedule instead)."""
    vf_lr: float = 0.001
    """Separate layout: value network learning rate."""
    vf_iters: int = 25
    """Separate layout: value optimizer steps per update."""
    vf_kl_clip: float = 0.3
    """Separate layout: value K-FAC trust region."""
    vf_damping: float = 0.1
    """Separate layout: value K-FAC damping."""
    vf_stat_decay: float = 0.95
    """Separate layout: value K-FAC factor decay."""
    vf_cold_steps: int = 0
    """Separate layout: value K-FAC first-order steps before preconditioning."""


@dataclass(frozen=True)
class Preset:
    """A suite's settings: the config and the number of parallel environments."""

    num_envs: int
    config: ActorCriticConfig


_ACKTR_ATARI = ActorCriticConfig(
    network="acktr_cnn", n_steps=20, lr=0.25, ent_coef=0.01, vf_coef=0.5, cold_steps=10
)
_ACKTR_MUJOCO = ActorCriticConfig(
    layout="separate",
    n_steps=2500,
    gae_lambda=0.97,
    ent_coef=0.0,
    normalize_advantages=True,
    normalize_obs=True,
    lr=0.03,
    lr_schedule="constant",
    max_grad_norm=None,
    kl_clip=0.01,
    inverse_every=2,
    cold_steps=1,
    desired_kl=0.002,
    # Not the original's 0.001: K-FAC on a unit-Gaussian value loss is a Gauss-Newton step, so
    # 0.001 moves the critic 0.1% of the way to the batch's least-squares fit per iteration; on
    # Hopper its explained variance was 0.38 at 100-150k steps (A2C's RMSprop critic: 0.74) and
    # ACKTR lost to A2C. At 0.1 the value trust region (vf_kl_clip) sets most steps. See
    # docs/acktr-mujoco.md.
    vf_lr=0.1,
    vf_cold_steps=50,
)
PRESETS: dict[tuple[str, str], Preset] = {
    ("acktr", "atari"): Preset(32, _ACKTR_ATARI),
    ("acktr", "mujoco"): Preset(1, _ACKTR_MUJOCO),
    # Not from the paper (it has no classic-control runs): measured on CartPole-v1, see README.
    ("acktr", "classic"): Preset(
        8,
        ActorCriticConfig(
            layout="joint",
            n_steps=32,
            gae_lambda=0.95,
            ent_coef=0.0,
            vf_coef=0.25,
            normalize_advantages=True,
            kl_clip=0.01,
        ),
    ),
    ("a2c", "atari"): Preset(
        16,
        dataclasses.replace(
            _ACKTR_ATARI,
            optimizer="rmsprop",
            network="nature_cnn",
            n_steps=5,
            lr=7e-4,
            max_grad_norm=0.5,
            cold_steps=0,
        ),
    ),
    # Same layout and KL-adaptive step as ACKTR's MuJoCo setup: only the optimizer (and its
    # learning rates) differ.
    ("a2c", "mujoco"): Preset(
        1,
        dataclasses.replace(
            _ACKTR_MUJOCO, optimizer="rmsprop", lr=7e-4, max_grad_norm=0.5, vf_lr=0.001
        ),
    ),
    ("a2c", "classic"): Preset(
        8,
        ActorCriticConfig(
            optimizer="rmsprop",
            layout="joint",
            n_steps=5,
            lr=7e-4,
            ent_coef=0.0,
            vf_coef=0.25,
            max_grad_norm=0.5,
        ),
    ),
}


def register_preset(algo: str, suite: str, preset: Preset) -> None:
    """Add or replace the preset ``for_env`` uses for ``algo`` on envs of ``suite``."""
    PRESETS[(algo, suite)] = preset


def compute_advantages(
    rewards: NDArray[np.floating],
    values: NDArray[np.floating],
    terminated: NDArray[np.bool_],
    truncated: NDArray[np.bool_],
    gamma: float,
    gae_lambda: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Advantages and returns of a rollout under NEXT_STEP autoreset.

    With ``done_t = terminated_t or truncated_t``::

        delta_t = r_t + gamma * (1 - terminated_t) * v_{t+1} - v_t
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},     A_T = 0
        R_t     = A_t + v_t

    ``v_{t+1}`` is the value of the observation step ``t`` returned. After a truncation that is the
    episode's final observation (the next step only resets the env), so a truncated episode
    bootstraps from it; a terminated one does not bootstrap. ``lambda = 1`` gives the n-step
    return ``R_t = r_t + gamma R_{t+1}`` cut at episode ends and bootstrapped from ``v_T``.
    Entries of reset steps are meaningless and must be masked out by the caller.

    Args:
        rewards: (T, N) rewards r_t.
        values: (T + 1, N) values of the observations acted on, then of the last observation.
        terminated: (T, N) episode ended in a terminal state at step t.
        truncated: (T, N) episode was cut at step t (time limit).
        gamma: discount.
        gae_lambda: GAE lambda.

    Returns:
        (advantages, returns), each (T, N) float32.
    """
    steps = rewards.shape[0]
    not_terminal = 1.0 - terminated.astype(np.float64)
    not_done = 1.0 - (terminated | truncated).astype(np.float64)
    advantages = np.zeros(rewards.shape, dtype=np.float64)
    next_advantage = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in reversed(range(steps)):
        delta = rewards[t] + gamma * not_terminal[t] * values[t + 1] - values[t]
        next_advantage = delta + gamma * gae_lambda * not_done[t] * next_advantage
        advantages[t] = next_advantage
    returns = advantages + values[:-1]
    return advantages.astype(np.float32), returns.astype(np.float32)


class RunningMeanStd:
    """Running mean and variance of observations (parallel-batch update of Chan et al.)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: NDArray[Any]) -> None:
        self.update_from_moments(batch.mean(axis=0), batch.var(axis=0), batch.shape[0])

    def update_from_moments(
        self, batch_mean: NDArray[Any], batch_var: NDArray[Any], n: float
    ) -> None:
        """Merge the moments of a batch of ``n`` observations (``var`` with divisor ``n``)."""
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * n / total
        self.var = (
            self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        ) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": torch.from_numpy(self.mean.copy()),
            "var": torch.from_numpy(self.var.copy()),
            "count": float(self.count),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.mean = state["mean"].numpy().astype(np.float64)
        self.var = state["var"].numpy().astype(np.float64)
        self.count = float(state["count"])


@dataclass
class Rollout:
    """One batch of experience, time-major. Shapes: T steps, N envs."""

    obs: torch.Tensor  # (T, N, *obs_shape) as fed to the network
    actions: torch.Tensor  # (T, N) or (T, N, action_dim)
    valid: torch.Tensor  # (T, N) bool: False on reset steps
    advantages: torch.Tensor  # (T, N)
    returns: torch.Tensor  # (T, N)


def fisher_subbatch(obs: torch.Tensor, valid: torch.Tensor, stride: int) -> torch.Tensor:
    """The examples of a rollout that the Fisher pass sees: every ``stride``-th valid one, counted
    env by env (env-major), so that the sub-batch spreads over all envs and all time steps.

    A time-major stride would take whole trajectories of a few envs (with 32 envs and stride 16,
    only envs 0 and 16), whose steps are strongly correlated.

    Args:
        obs: ``(T, N, *obs_shape)``.
        valid: ``(T, N)`` bool, False on reset steps.
        stride: 1 takes every valid example (then in the time-major order of the loss).
    """
    if stride == 1:
        return obs[valid]
    return obs.transpose(0, 1)[valid.t()][::stride]


def _space_to_json(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Discrete):
        return {"kind": "discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {"kind": "box", "shape": list(space.shape), "dtype": str(space.dtype)}
    raise ValueError(f"unsupported space {space}")


def _space_from_json(data: Mapping[str, Any], bounds: Mapping[str, Any]) -> gym.Space:
    """A space from ``_space_to_json``; ``bounds`` holds ``low``/``high`` tensors of a Box, if
    known (observation bounds are not stored: the networks need only shape and dtype)."""
    if data["kind"] == "discrete":
        return gym.spaces.Discrete(int(data["n"]))
    dtype = np.dtype(data["dtype"])
    if "low" in bounds:
        return gym.spaces.Box(bounds["low"].numpy(), bounds["high"].numpy(), dtype=dtype)
    shape = tuple(data["shape"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return gym.spaces.Box(info.min, info.max, shape=shape, dtype=dtype)
    return gym.spaces.Box(-np.inf, np.inf, shape=shape, dtype=dtype)


class ActorCriticLearner(LearnerBase):
    """Synchronous advantage actor-critic on a gymnasium vector env; see the module docstring.

    Use ``ACKTR`` or ``A2C``; they differ only in their default ``config`` and registry name.

    Args:
        env: a vector env with NEXT_STEP autoreset (``acktr.envs.make_vec_env`` builds them).
        config: hyperparameters; default: the class's preset for the env's kind of spaces.
        policy: an actor-critic module, or a factory ``(obs_space, action_space) -> module``,
            following the contract of ``acktr.policies`` (use ``network="custom"``).
        seed: seeds torch (network initialisation, action sampling) and the env resets.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
    """

    algo: ClassVar[str] = "actor-critic"
    config_class: ClassVar[type[Any]] = ActorCriticConfig
    config: ActorCriticConfig
    optimizer_name: ClassVar[str] = "kfac"

    def __init__(
        self,
        env: VectorEnv,
        config: ActorCriticConfig | None = None,
        *,
        policy: nn.Module | PolicyFactory | None = None,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        if config is None:
            config = self.preset(
                _suite_for_spaces(env.single_observation_space, env.single_action_space)
            ).config
        self._setup(
            env.single_observation_space, env.single_action_space, config, policy, seed, device
        )
        self.set_env(env)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def _preset_table(cls) -> dict[str, Preset]:
        return {suite: p for (algo, suite), p in PRESETS.items() if algo == cls.algo}

    def _setup(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: ActorCriticConfig,
        policy: nn.Module | PolicyFactory | None,
        seed: int,
        device: str,
    ) -> None:
        if config.optimizer != self.optimizer_name:
            other = "A2C" if config.optimizer == "rmsprop" else "ACKTR"
            raise ValueError(
                f"{type(self).__name__} uses optimizer {self.optimizer_name!r}, the config "
                f"asks for "
                f"{config.optimizer!r}: use {other}"
            )
        param_dim(action_space)  # rejects unsupported action spaces early
        self.config = config
        self.seed = seed
        self.device = resolve_device(device)
        self.observation_space = observation_space
        self.action_space = action_space
        self.env: VectorEnv | None = None
        self.env_id: str | None = None
        self.suite: str | None = None
        self.num_timesteps = 0
        torch.manual_seed(seed)
        if policy is None:
            if config.network == "custom":
                raise ValueError("network 'custom' needs the module or factory as policy=")
            model = build_actor_critic(
                config.network,
                observation_space,
                action_space,
                separate=config.layout != "shared",
                hidden=config.hidden,
                activation=config.activation,
            )
        else:
            model = (
                policy if isinstance(policy, nn.Module) else policy(observation_space, action_space)
            )
        if config.layout == "separate" and not (hasattr(model, "pi") and hasattr(model, "vf")):
            raise ValueError(
                f"layout {config.layout!r} needs a module with a policy network .pi and a "
                "value network .vf "
                "(acktr.policies.SeparateActorCritic)"
            )
        self.model = model.to(self.device)
        shape = observation_space.shape
        assert shape is not None
        self.obs_rms = RunningMeanStd(tuple(shape)) if config.normalize_obs else None
        self._lr_now = config.lr
        self._pi_lr = config.lr  # KL-adaptive policy step size (separate layout)
        self.world = World()
        self._samples = 0  # this rank's samples in the current update: its weight across ranks
        self._build_optimizers()
        self._episodes = EpisodeWindow()
        self._obs: NDArray[Any] | None = None
        self._prev_done: NDArray[np.bool_] | None = None

    def _build_optimizers(self) -> None:
        c = self.config
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        if c.layout != "separate":
            self.optimizers["model"] = self._optimizer(
                self.model, lambda _: self._lr_now, c.kl_clip, c.damping, c.stat_decay, c.cold_steps
            )
        else:
            self.optimizers["pi"] = self._optimizer(
                self._pi, lambda _: self._pi_lr, c.kl_clip, c.damping, c.stat_decay, c.cold_steps
            )
            self.optimizers["vf"] = self._optimizer(
                self._vf,
                lambda _: c.vf_lr,
                c.vf_kl_clip,
                c.vf_damping,
                c.vf_stat_decay,
                c.vf_cold_steps,
            )

    def _optimizer(
        self,
        module: nn.Module,
        lr: Callable[[int], float],
        kl_clip: float,
        damping: float,
        stat_decay: float,
        cold_steps: int,
    ) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "kfac":
            return KFAC(
                module,
                lr=lr,
                momentum=c.momentum,
                stat_decay=stat_decay,
                damping=damping,
                kl_clip=kl_clip,
                inverse_every=c.inverse_every,
                stats_every=c.stats_every,
                cold_steps=cold_steps,
                conv_statistics_dtype=torch.bfloat16
                if c.conv_statistics_dtype == "bfloat16"
                else None,
                inverse_dtype=torch.float32 if c.inverse_dtype == "float32" else torch.float64,
            )
        # RMSprop's lr is set before every step (schedules and the KL-adaptive step size).
        return torch.optim.RMSprop(module.parameters(), lr=lr(0), alpha=c.rms_alpha, eps=c.rms_eps)

    @property
    def _pi(self) -> nn.Module:
        return self.model.pi  # type: ignore[return-value]

    @property
    def _vf(self) -> nn.Module:
        return self.model.vf  # type: ignore[return-value]

    def set_env(self, env: VectorEnv) -> None:
        """Train on ``env`` from the next ``learn``; its episodes start afresh.

        Raises:
            ValueError: spaces that differ from the learner's, or an autoreset mode other than
                NEXT_STEP.
        """
        check_autoreset(env)
        obs_space, act_space = env.single_observation_space, env.single_action_space
        if obs_space.shape != self.observation_space.shape or _space_to_json(
            act_space
        ) != _space_to_json(self.action_space):
            raise ValueError(
                f"env spaces {obs_space} / {act_space} differ from the learner's "
                f"{self.observation_space} / {self.action_space}"
            )
        self.env = ensure_episode_statistics(env)
        self._obs = None

    def distribute(self, world: World) -> None:
        """Train as one rank of a data-parallel run (``acktr.distributed``); every rank calls it.

        The learner's env is this rank's slice of the run's envs, the same number on every rank.
        Rank 0's parameters are broadcast, so every rank starts from the same network; from then
        on every update averages the gradients across the ranks (weighted by their numbers of
        valid samples), the K-FAC factors before each inversion, the advantage standardisation,
        the observation-normalisation statistics and the KL of the adaptive step size, so all
        ranks take the same step and keep identical parameters. ``num_timesteps`` counts every
        rank's env steps. Rank ``r`` resets its envs with seeds ``seed + r * num_envs + i``, the
        seeds of one process running all the envs; its action sampling has its own seed.

        Raises:
            acktr.distributed.DistributedError: if the process group failed.
        """
        self.world = world
        world.broadcast_([*self.model.parameters(), *self.model.buffers()])
        for optimizer in self.optimizers.values():
            if isinstance(optimizer, KFAC):
                optimizer.distribute(world)
        if world.rank > 0:
            # Otherwise every rank would sample the same actions (the same seed, or in a resumed
            # run the same RNG state, restored from rank 0's checkpoint).
            torch.manual_seed(rank_seed(self.seed, world.rank, self.num_timesteps))
        self._obs = None

    # -- acting --------------------------------------------------------------------------------

    def _normalize(self, obs: NDArray[Any], update: bool) -> torch.Tensor:
        if self.obs_rms is None:
            return torch.as_tensor(obs).to(self.device)
        if update:
            self._update_obs_rms(obs)
        z = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + 1e-8)
        clip = self.config.obs_clip
        return torch.as_tensor(np.clip(z, -clip, clip), dtype=torch.float32).to(self.device)

    def _update_obs_rms(self, obs: NDArray[Any]) -> None:
        """Merge this step's observations of every rank into the normaliser, in rank order."""
        assert self.obs_rms is not None
        if self.world.size == 1:
            self.obs_rms.update(obs)
            return
        batch = obs.reshape(obs.shape[0], -1).astype(np.float64)
        moments = np.concatenate([batch.mean(axis=0), batch.var(axis=0), [batch.shape[0]]])
        d, shape = batch.shape[1], self.obs_rms.mean.shape
        for part in self.world.all_gather(torch.from_numpy(moments).to(self.world.device)):
            m = part.cpu().numpy()
            self.obs_rms.update_from_moments(m[:d].reshape(shape), m[d:-1].reshape(shape), m[-1])

    def _to_env_action(self, actions: torch.Tensor) -> NDArray[Any]:
        out = actions.cpu().numpy()
        if isinstance(self.action_space, gym.spaces.Box):
            return np.clip(out, self.action_space.low, self.action_space.high).astype(
                self.action_space.dtype
            )
        return out.astype(np.int64)

    @torch.no_grad()
    def predict(self, obs: NDArray[Any], deterministic: bool = True) -> NDArray[Any]:
        """Actions for observations (N, *obs_shape), or for one observation without batch axis.

        Box actions are clipped to the action space. The observation normaliser is applied but not
        updated.
        """
        obs = np.asarray(obs)
        shape = tuple(self.observation_space.shape or ())
        single = obs.shape == shape
        batch = obs[None] if single else obs
        if batch.shape[1:] != shape:
            raise ValueError(
                f"observations of shape {obs.shape}: this policy takes {shape} or (N, *{shape})"
            )
        params, _ = self.model(self._normalize(batch, update=False))
        if deterministic:
            actions = distribution_mode(params, self.action_space)
        else:
            actions = action_distribution(params, self.action_space).sample()
        out = self._to_env_action(actions)
        return out[0] if single else out

    # -- training ------------------------------------------------------------------------------

    def learn(
        self: T, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = False
    ) -> T:
        """Train until ``num_timesteps`` reaches ``total_timesteps``.

        ``total_timesteps`` is a target, not an increment, so a loaded learner continues the same
        learning-rate schedule: ``learn(10_000_000)`` on a checkpoint at 4M trains 6M more steps.

        Args:
            total_timesteps: step count to reach (all sub-environments counted).
            callback: called after every update with ``(learner, metrics)``; ``False`` stops.
            progress_bar: show a tqdm bar with steps/s and the mean return of the last 100
                episodes.
        """
        if self.env is None:
            raise ValueError("no env to train on: pass one to load(...) or call set_env(env)")
        env = self.env
        if self._obs is None:
            seed = reset_seed(self.seed, self.num_timesteps) + self.world.rank * env.num_envs
            self._obs, _ = env.reset(seed=seed)
            self._prev_done = np.zeros(env.num_envs, dtype=bool)
        if total_timesteps <= self.num_timesteps:
            log.warning(
                "learn(%d): already at %d steps, nothing to do", total_timesteps, self.num_timesteps
            )
        show = progress_bar and self.world.is_main
        bar = ProgressBar(total_timesteps, self.num_timesteps) if show else None
        try:
            while self.num_timesteps < total_timesteps:
                start = time.perf_counter()
                if self.config.lr_schedule == "linear":
                    self._lr_now = self.config.lr * (1.0 - self.num_timesteps / total_timesteps)
                batch = self._rollout()
                metrics = self._update(batch)
                metrics.update(self._episodes.pop_metrics())
                steps = self.config.n_steps * env.num_envs * self.world.size
                metrics["charts/steps_per_s"] = steps / (time.perf_counter() - start)
                if bar is not None:
                    bar.update(self.num_timesteps, self._episodes.mean_return())
                if callback is not None and callback(self, metrics) is False:
                    break
        finally:
            if bar is not None:
                bar.close()
        return self

    @torch.no_grad()
    def _rollout(self) -> Rollout:
        env = self.env
        assert env is not None and self._obs is not None and self._prev_done is not None
        steps, n = self.config.n_steps, env.num_envs
        obs_buf: list[torch.Tensor] = []
        act_buf: list[torch.Tensor] = []
        rewards = np.zeros((steps, n), dtype=np.float64)
        terminated = np.zeros((steps, n), dtype=bool)
        truncated = np.zeros((steps, n), dtype=bool)
        valid = np.zeros((steps, n), dtype=bool)
        values = np.zeros((steps + 1, n), dtype=np.float64)
        finished: list[tuple[float, int]] = []
        # Counted when it arrived, as the previous rollout's last observation.
        obs = self._normalize(self._obs, update=False)
        for t in range(steps):
            params, value = self.model(obs)
            actions = action_distribution(params, self.action_space).sample()
            obs_buf.append(obs)
            act_buf.append(actions)
            values[t] = value.cpu().numpy()
            valid[t] = ~self._prev_done
            next_obs, reward, term, trunc, info = env.step(self._to_env_action(actions))
            rewards[t], terminated[t], truncated[t] = reward, term, trunc
            self._prev_done = np.logical_or(term, trunc)
            finished += finished_episodes(info)
            self._obs = next_obs
            obs = self._normalize(next_obs, update=True)
            self.num_timesteps += n * self.world.size
        for episodes in self.world.all_gather_object(finished):
            self._episodes.add(episodes)
        values[steps] = self.model(obs)[1].cpu().numpy()
        advantages, returns = compute_advantages(
            rewards, values, terminated, truncated, self.config.gamma, self.config.gae_lambda
        )
        return Rollout(
            obs=torch.stack(obs_buf),
            actions=torch.stack(act_buf),
            valid=torch.as_tensor(valid, device=self.device),
            advantages=torch.as_tensor(advantages, device=self.device),
            returns=torch.as_tensor(returns, device=self.device),
        )

    def _update(self, batch: Rollout) -> dict[str, float]:
        # Reset steps are dropped here, once, so that no loss or Fisher pass sees them.
        mask = batch.valid
        obs, actions = batch.obs[mask], batch.actions[mask]
        advantages, returns = batch.advantages[mask], batch.returns[mask]
        self._samples = int(mask.sum())
        # Gathered only for an update whose Fisher pass runs (never for A2C's first-order steps).
        stride = self._fisher_stride()
        fisher_obs = None
        if stride > 1 and any(self._statistics_due(name) for name in self.optimizers):
            fisher_obs = fisher_subbatch(batch.obs, mask, stride)
        if self.config.normalize_advantages:
            advantages = self._standardize(advantages)
        if self.config.layout != "separate":
            metrics = self._update_shared(obs, actions, advantages, returns, fisher_obs)
        else:
            metrics = self._update_separate(obs, actions, advantages, returns, fisher_obs)
        return self._metrics_over_ranks(metrics)

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / (std + 1e-8)`` with the mean and (unbiased) std of every rank's ``x``."""
        if self.world.size == 1:
            return (x - x.mean()) / (x.std() + 1e-8) if x.numel() > 1 else x
        sums = torch.stack([x.double().sum(), x.new_tensor(x.numel(), dtype=torch.float64)])
        self.world.all_reduce_sum_([sums])
        total, count = sums.tolist()
        if count <= 1:
            return x
        mean = total / count
        square = (x.double() - mean).square().sum().reshape(1)
        self.world.all_reduce_sum_([square])
        std = math.sqrt(float(square) / (count - 1))
        return ((x - mean) / (std + 1e-8)).to(x.dtype)

    def _metrics_over_ranks(self, metrics: dict[str, float]) -> dict[str, float]:
        """The ``losses/`` metrics averaged over the ranks, weighted by their samples."""
        if self.world.size == 1:
            return metrics
        keys = [k for k in metrics if k.startswith("losses/")]
        values = torch.tensor(
            [metrics[k] for k in keys], dtype=torch.float64, device=self.world.device
        )
        self.world.all_reduce_mean_([values], weight=self._samples)
        return {**metrics, **dict(zip(keys, values.tolist(), strict=True))}

    def _rank_mean(self, value: float) -> float:
        """``value``, a mean over this rank's samples, averaged over every rank's samples."""
        if self.world.size == 1:
            return value
        box = torch.tensor([value], dtype=torch.float64, device=self.world.device)
        self.world.all_reduce_mean_([box], weight=self._samples)
        return float(box)

    def _explained_variance(self, values: torch.Tensor, returns: torch.Tensor) -> float:
        """``1 - Var(returns - values) / Var(returns)`` over every rank's samples (0 when the
        returns do not vary). In several ranks the variances are pooled from summed moments: a
        mean of the ranks' own values would not be the batch's."""
        if self.world.size == 1:
            return _explained_variance(values, returns)
        r, d = returns.double(), (returns - values).double()
        moments = torch.stack(
            [r.new_tensor(float(r.numel())), r.sum(), r.square().sum(), d.sum(), d.square().sum()]
        ).to(self.world.device)
        self.world.all_reduce_sum_([moments])
        n, sum_r, sum_rr, sum_d, sum_dd = moments.tolist()
        if n < 2:
            return 0.0
        var = (sum_rr - sum_r * sum_r / n) / (n - 1)
        if var <= 0.0 or not math.isfinite(var):
            return 0.0
        return 1.0 - (sum_dd - sum_d * sum_d / n) / (n - 1) / var

    def _step(self, name: str, loss: torch.Tensor, module: nn.Module, lr: float) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad()
        loss.backward()
        # The gradient of the mean loss over every rank's samples: one all-reduce (a no-op in one
        # process); K-FAC's trust region is then computed from the same gradient on every rank.
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        self.world.all_reduce_mean_(grads, weight=self._samples)
        if self.config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(module.parameters(), self.config.max_grad_norm)
        if not isinstance(optimizer, KFAC):
            for group in optimizer.param_groups:
                group["lr"] = lr
        optimizer.step()

    def _fisher_pass(self, name: str, fisher_loss: torch.Tensor) -> None:
        if not self._statistics_due(name):
            return
        optimizer = self.optimizers[name]
        assert isinstance(optimizer, KFAC)
        with optimizer.fisher():
            fisher_loss.backward(retain_graph=True)

    def _statistics_due(self, name: str) -> bool:
        optimizer = self.optimizers[name]
        return isinstance(optimizer, KFAC) and optimizer.statistics_due

    def _fisher_stride(self) -> int:
        return max(1, round(1.0 / self.config.fisher_fraction))

    def _update_shared(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        fisher_obs: torch.Tensor | None,
    ) -> dict[str, float]:
        c = self.config
        params, values = self.model(obs)
        dist = action_distribution(params, self.action_space)
        if self._statistics_due("model"):
            # The true Fisher: the model's own distributions, sampled, never the training targets.
            f_dist, f_values = dist, values
            if fisher_obs is not None:
                f_params, f_values = self.model(fisher_obs)
                f_dist = action_distribution(f_params, self.action_space)
            value_sample = (f_values + torch.randn_like(f_values)).detach()
            pi_fisher = -f_dist.log_prob(f_dist.sample()).mean()
            vf_fisher = 0.5 * (f_values - value_sample).pow(2).mean()
            self._fisher_pass("model", pi_fisher + c.vf_fisher_coef * vf_fisher)
        log_prob = dist.log_prob(actions)
        entropy = dist.entropy().mean()
        policy_loss = -(advantages * log_prob).mean()
        value_loss = 0.5 * (returns - values).pow(2).mean()
        loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * entropy
        self._step("model", loss, self.model, self._lr_now)
        return {
            "losses/policy_loss": policy_loss.item(),
            "losses/value_loss": value_loss.item(),
            "losses/entropy": entropy.item(),
            "losses/explained_variance": self._explained_variance(values.detach(), returns),
            "charts/learning_rate": self._lr_now,
        }

    def _update_separate(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        fisher_obs: torch.Tensor | None,
    ) -> dict[str, float]:
        c = self.config
        # Value network first, as in the original: advantages were computed with its old values.
        with torch.no_grad():
            explained = self._explained_variance(self._vf(obs), returns)
        vf_nus: list[float] = []
        for _ in range(c.vf_iters):
            values = self._vf(obs)
            if c.optimizer == "kfac":
                f_values = values if fisher_obs is None else self._vf(fisher_obs)
                value_sample = (f_values + torch.randn_like(f_values)).detach()
                self._fisher_pass("vf", 0.5 * (f_values - value_sample).pow(2).mean())
            value_loss = 0.5 * (returns - values).pow(2).mean()
            self._step("vf", value_loss, self._vf, c.vf_lr)
            vf_nus += self._trust_region_scale("vf")
        with torch.no_grad():
            explained_after = self._explained_variance(self._vf(obs), returns)

        params = self._pi(obs)
        dist = action_distribution(params, self.action_space)
        if c.optimizer == "kfac":
            f_dist = dist
            if fisher_obs is not None:
                f_dist = action_distribution(self._pi(fisher_obs), self.action_space)
            self._fisher_pass("pi", -f_dist.log_prob(f_dist.sample()).mean())
        entropy = dist.entropy().mean()
        policy_loss = -(advantages * dist.log_prob(actions)).mean()
        pi_lr = self._pi_lr if c.desired_kl is not None else self._lr_now
        self._step("pi", policy_loss - c.ent_coef * entropy, self._pi, pi_lr)

        pi_nus = self._trust_region_scale("pi")
        with torch.no_grad():
            old = action_distribution(params.detach(), self.action_space)
            new = action_distribution(self._pi(obs), self.action_space)
            kl = self._rank_mean(kl_divergence(old, new).mean().item())
        if c.desired_kl is not None:
            if kl > 2 * c.desired_kl:
                self._pi_lr = max(1e-8, self._pi_lr / 1.5)
            elif kl < c.desired_kl / 2:
                self._pi_lr = min(1.0, self._pi_lr * 1.5)
        metrics = {
            "losses/policy_loss": policy_loss.item(),
            "losses/value_loss": value_loss.item(),
            "losses/entropy": entropy.item(),
            "losses/explained_variance": explained,
            "losses/explained_variance_after_fit": explained_after,
            "losses/policy_kl": kl,
            "charts/learning_rate": pi_lr,
        }
        if isinstance(self.action_space, gym.spaces.Box):
            metrics["losses/policy_std"] = params.detach().chunk(2, dim=-1)[1].exp().mean().item()
        if pi_nus:
            metrics["losses/policy_nu"] = pi_nus[0]
        if vf_nus:
            metrics["losses/value_nu"] = float(np.mean(vf_nus))
        return metrics

    def _trust_region_scale(self, name: str) -> list[float]:
        """``[nu]`` of the K-FAC step just taken by optimizer ``name``, or ``[]`` (RMSprop, or a
        cold or skipped K-FAC step)."""
        optimizer = self.optimizers[name]
        nu = optimizer.last_nu if isinstance(optimizer, KFAC) else None
        return [] if nu is None else [nu]

    # -- persistence ---------------------------------------------------------------------------

    def _checkpoint_json(self) -> dict[str, Any]:
        out = {
            **super()._checkpoint_json(),
            "num_envs": self.env.num_envs * self.world.size if self.env is not None else None,
            "ranks": self.world.size,
            "observation_space": _space_to_json(self.observation_space),
            "action_space": _space_to_json(self.action_space),
        }
        # A custom network that describes itself (its input encoding, say) is recorded for readers
        # of the checkpoint; loading still rebuilds it from the module or factory passed again.
        describe = getattr(self.model, "describe", None)
        if callable(describe):
            out["network"] = describe()
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint (state dicts, RNG states, JSON config) atomically to ``path``.

        In a data-parallel run every rank calls it (the K-FAC factors are averaged across the
        ranks first) and rank 0 writes the file.
        """
        for optimizer in self.optimizers.values():
            if isinstance(optimizer, KFAC):
                optimizer.synchronize_factors()
        if not self.world.is_main:
            return
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "rng": rng_state(),
            "pi_lr": self._pi_lr,
            "lr_now": self._lr_now,
        }
        if self.obs_rms is not None:
            state["obs_rms"] = self.obs_rms.state_dict()
        if isinstance(self.action_space, gym.spaces.Box):
            state["action_bounds"] = {
                "low": torch.as_tensor(self.action_space.low),
                "high": torch.as_tensor(self.action_space.high),
            }
        save_checkpoint(
            path,
            algo=self.algo,
            config=self._checkpoint_json(),
            num_timesteps=self.num_timesteps,
            state=state,
        )

    @classmethod
    def load(
        cls: type[T],
        path: str | os.PathLike[str],
        env: VectorEnv | None = None,
        device: str = "auto",
        *,
        policy: nn.Module | PolicyFactory | None = None,
    ) -> T:
        """A learner restored from a checkpoint written by ``save``.

        Args:
            path: checkpoint file or run directory.
            env: the env to keep training on (not needed for ``predict``); its episodes restart,
                reset with a seed derived from the run's seed and step count.
            device: where to put the network.
            policy: the module or factory again, for checkpoints of ``network="custom"``.

        Raises:
            CheckpointError: unreadable file or a checkpoint of another learner.
            ValueError: an env whose spaces differ from the checkpoint's.
        """
        learner = cls._restore(path, policy, device)
        if env is not None:
            learner.set_env(env)
        return learner

    @classmethod
    def _spaces_from_checkpoint(
        cls, meta: Mapping[str, Any], state: Mapping[str, Any]
    ) -> tuple[gym.Space, gym.Space]:
        observation_space = _space_from_json(meta["observation_space"], {})
        return observation_space, _space_from_json(
            meta["action_space"], state.get("action_bounds", {})
        )

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if self.obs_rms is not None:
            self.obs_rms.load_state_dict(state["obs_rms"])
        self._pi_lr = float(state["pi_lr"])
        self._lr_now = float(state["lr_now"])
        set_rng_state(state["rng"])

    def describe(self) -> dict[str, Any]:
        """Algorithm, env, preset and every hyperparameter (printed by ``tron train``)."""
        num_envs = self.env.num_envs * self.world.size if self.env is not None else None
        return self._describe(self.model, num_envs, str(self.device), ranks=self.world.size)


def _explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    var = returns.var().item() if returns.numel() > 1 else 0.0
    if var == 0.0 or not math.isfinite(var):
        return 0.0
    return 1.0 - (returns - values).var().item() / var


def _suite_for_spaces(observation_space: gym.Space, action_space: gym.Space) -> str:
    shape = observation_space.shape or ()
    if len(shape) == 3 and shape[1:] == (84, 84):
        return "atari"
    if isinstance(action_space, gym.spaces.Box):
        return "mujoco"
    return "classic"


@register_learner("acktr")
class ACKTR(ActorCriticLearner):
    """ACKTR (Wu et al., 2017): actor-critic with the K-FAC trust-region optimizer."""

    algo = "acktr"
    optimizer_name = "kfac"


@register_learner("a2c")
class A2C(ActorCriticLearner):
    """A2C: the same actor-critic with RMSprop, the ACKTR paper's baseline."""

    algo = "a2c"
    optimizer_name = "rmsprop"
