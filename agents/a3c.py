"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016), with real worker processes.

``K`` worker processes (``torch.multiprocessing``) each own their env(s) and a local copy of the
network. A worker loops (``_worker_loop``, top to bottom)::

    pull:  theta_local <- theta_global
    act:   t_max steps of its env(s) with pi(. | s; theta_local)
    learn: n-step returns R_t = r_t + gamma r_{t+1} + ... + gamma^{T-t} V(s_T)  (0 after a terminal)
           loss = -log pi(a_t|s_t) (R_t - V(s_t)) + vf_coef (R_t - V(s_t))^2 / 2 - ent_coef H(pi)
           gradients of the loss w.r.t. theta_local, norm clipped at max_grad_norm
    push:  the gradients update theta_global in place with shared RMSprop, no lock (Hogwild)

The global network lives in shared memory, and so do the RMSprop statistics (``SharedRMSprop``):
the paper found one ``g`` shared by all workers more robust than per-worker statistics. The
learning rate decays linearly to 0 over the run, read off a shared step counter. Between a
worker's pull and its push other workers push their own updates; ``worker_stats`` counts, per
worker, its updates and how many of them found the global parameters already changed
(``stale``), the asynchrony the algorithm is built on.

The workers start together: each builds its env(s), then waits until all of them have, so a
short run's step budget is shared by all ``K`` (a late worker would otherwise find it used up).
The parent process starts the workers, reads their reports (episodes, losses) from a queue, calls
``learn``'s callback (logs, checkpoints, early stop) and owns shutdown: workers stop when the
shared counter reaches the target, when the callback returns ``False``, on Ctrl-C (workers ignore
SIGINT; the parent stops them and re-raises ``KeyboardInterrupt``) and when one of them raises (the
others are stopped, and ``A3CWorkerError`` carries the worker's traceback to the caller). Every
path joins the workers, terminating any that do not stop; a worker also exits by itself if its
parent disappears, so none is left orphaned.

Envs are built inside the workers by an ``EnvFactory`` (worker index -> vector env): an env's
threads or subprocesses would not survive being copied into a worker. The default start method is
``fork`` (workers inherit registered env factories and any network); with ``spawn`` the factory
and a custom network must be picklable and importable in a fresh interpreter.

Not from the paper: a worker may run several envs (``envs_per_worker``) and batch their forward
passes; 1 is the paper's setting. Reports and checkpoints are asynchronous too: a checkpoint is a
snapshot of the global network taken while workers write to it, as Hogwild allows, and a run is
not reproducible step for step (the interleaving of workers depends on the machine).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import queue
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import gymnasium as gym
import numpy as np
import torch
import torch.multiprocessing as mp
from gymnasium.vector import VectorEnv
from numpy.typing import NDArray
from torch import nn

from acktr.acktr import compute_advantages
from acktr.envs import (
    check_autoreset,
    ensure_episode_statistics,
    finished_episodes,
    make_vec_env,
)
from acktr.policies import SharedActorCritic, action_distribution, distribution_mode
from acktr.training import (
    Callback,
    EpisodeWindow,
    LearnerBase,
    ProgressBar,
    register_learner,
    reset_seed,
    save_checkpoint,
)
from agents.networks import GreedyPolicy, box_from_state, box_state, build_torso, tron_net

log = logging.getLogger(__name__)

T = TypeVar("T", bound="A3C")

#: Builds the vector env of one worker from its index (0 .. num_workers-1).
EnvFactory = Callable[[int], VectorEnv]
#: An actor-critic factory: (observation space, action space) -> module (``acktr.policies``).
PolicyFactory = Callable[[gym.Space, gym.Space], nn.Module]


@dataclass(frozen=True)
class A3CConfig:
    """Hyperparameters of A3C (defaults: the classic-control preset)."""

    network: Literal["auto", "mlp", "nature_cnn", "small_cnn", "grid_cnn", "tron_net", "custom"] = (
        "auto"
    )
    """Torso (``agents.networks``; ``auto`` takes the paper's ``small_cnn`` for Atari frames) under
    ``acktr.policies``' heads; ``tron_net`` is the Tron network ACKTR and A2C train; ``custom``
    takes the actor-critic module passed as ``policy=``."""
    hidden: tuple[int, ...] = (64, 64)
    """MLP hidden widths."""
    activation: Literal["tanh", "relu"] = "tanh"
    """MLP activation."""
    num_workers: int = 2
    """Worker processes (actor-learners)."""
    envs_per_worker: int = 1
    """Envs each worker steps together (the paper: 1)."""
    t_max: int = 5
    """Steps per env between a worker's updates (the n of the n-step returns)."""
    gamma: float = 0.99
    """Discount."""
    ent_coef: float = 0.01
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    lr: float = 7e-4
    """Initial learning rate of the shared RMSprop."""
    lr_schedule: Literal["linear", "constant"] = "linear"
    """``linear`` anneals the learning rate to 0 at ``learn``'s ``total_timesteps``."""
    rms_alpha: float = 0.99
    """Decay of the shared squared-gradient average."""
    rms_eps: float = 0.1
    """Added to the squared-gradient average under the square root (the paper's form)."""
    max_grad_norm: float | None = 40.0
    """Clip each worker's gradient norm before the push (``none``: no clip)."""
    loss_reduction: Literal["mean", "sum"] = "mean"
    """How a worker's ``t_max * envs_per_worker`` samples make its loss: ``sum`` accumulates their
    gradients, as the paper's pseudocode and ChainerRL's A3C do; ``mean`` averages them. With
    ``rms_eps`` 0.1 under the root the gradient's scale sets the step size (summing 5 samples is a
    5x larger step), so the ``atari`` preset sums; with a small ``rms_eps`` it matters little."""
    start_method: Literal["fork", "spawn", "forkserver"] = "fork"
    """How worker processes start (``fork``: Linux, inherits the parent's registries)."""
    log_every: int = 10_000
    """Env steps (all workers) between calls of ``learn``'s callback."""


@dataclass(frozen=True)
class Preset:
    """A suite's settings: the config (its ``num_workers`` is the preset's worker count)."""

    config: A3CConfig


PRESETS: dict[str, Preset] = {
    "classic": Preset(
        A3CConfig(envs_per_worker=4, lr=3e-3, rms_eps=1e-5, ent_coef=0.0, max_grad_norm=0.5)
    ),
    # The paper: 16 workers, one env each, t_max 5, shared RMSprop (alpha 0.99), lr annealed to 0;
    # lr 7e-4 and eps 0.1 as in the best-known public reproduction (ChainerRL's train_a3c_ale).
    "atari": Preset(
        A3CConfig(network="small_cnn", num_workers=16, loss_reduction="sum", log_every=50_000)
    ),
    # Not tuned: a starting point, with the network ACKTR and A2C train on Tron.
    "tron": Preset(
        A3CConfig(network="tron_net", num_workers=2, envs_per_worker=8, lr=3e-4, rms_eps=1e-5)
    ),
}


class A3CWorkerError(RuntimeError):
    """A worker process failed; the message holds its traceback."""


class SharedRMSprop(torch.optim.Optimizer):
    """RMSprop whose statistics are shared by all worker processes (A3C's "shared RMSProp").

    ``g <- alpha g + (1 - alpha) grad^2``;  ``theta <- theta - lr grad / sqrt(g + eps)``
    (epsilon inside the root, as the paper writes it). The state is created at construction, so
    ``share_memory()`` can move it to shared memory before the workers start; ``step`` updates the
    statistics and the parameters in place without a lock (Hogwild).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 7e-4,
        alpha: float = 0.99,
        eps: float = 0.1,
    ) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["square_avg"] = torch.zeros_like(
                    p, memory_format=torch.preserve_format
                )

    def share_memory(self) -> SharedRMSprop:
        """Move the statistics to shared memory (a no-op for those already there)."""
        for state in self.state.values():
            state["square_avg"].share_memory_()
        return self

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        """One RMSprop step with the parameters' ``.grad``."""
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                square_avg = self.state[p]["square_avg"]
                square_avg.mul_(alpha).addcmul_(p.grad, p.grad, value=1 - alpha)
                p.addcdiv_(p.grad, square_avg.add(eps).sqrt_(), value=-lr)


@dataclass(frozen=True)
class MakeVecEnv:
    """The ``EnvFactory`` of ``for_env``: ``make_vec_env(env_id, num_envs)`` in each worker
    (picklable, so it works with every start method)."""

    env_id: str
    num_envs: int

    def __call__(self, worker: int) -> VectorEnv:
        return make_vec_env(self.env_id, self.num_envs)


@dataclass
class _Shared:
    """What the parent shares with its workers (shared memory, queue, events)."""

    model: nn.Module
    optimizer: SharedRMSprop
    steps: Any  # mp.Value("q"): env steps taken by all workers
    updates: Any  # mp.Array("q", K): updates pushed per worker
    stale: Any  # mp.Array("q", K): pushes that found the global parameters changed since the pull
    ready: Any  # mp.Value("i"): workers that have built their envs and wait for the others
    stop: Any  # mp.Event: set by the parent to stop the workers
    reports: Any  # mp.Queue: ("report" | "done" | "error", worker, payload)


@register_learner("a3c")
class A3C(LearnerBase):
    """A3C over ``num_workers`` processes; see the module docstring.

    Args:
        env: an ``EnvFactory`` (worker index -> vector env with NEXT_STEP autoreset), called once
            in this process to read the spaces and then once in every worker.
        config: hyperparameters; default: the ``classic`` preset.
        policy: an actor-critic module, or a factory ``(obs_space, action_space) -> module``,
            following the contract of ``acktr.policies`` (use ``network="custom"``).
        seed: seeds the network's initialisation, and each worker's sampling and env resets.
        device: only ``cpu`` (or ``auto``, which is the CPU here): Hogwild updates shared CPU
            memory.
    """

    algo: ClassVar[str] = "a3c"
    config_class: ClassVar[type[Any]] = A3CConfig
    config: A3CConfig
    env_id: str | None
    suite: str | None

    def __init__(
        self,
        env: EnvFactory,
        config: A3CConfig | None = None,
        *,
        policy: nn.Module | PolicyFactory | None = None,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        probe = env(0)
        try:
            check_autoreset(probe)
            spaces = probe.single_observation_space, probe.single_action_space
        finally:
            probe.close()
        self._setup(*spaces, config or PRESETS["classic"].config, policy, seed, device)
        self.env_fn: EnvFactory | None = env
        if isinstance(env, MakeVecEnv):
            self.env_id = env.env_id

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def _preset_table(cls) -> dict[str, Preset]:
        return PRESETS

    @classmethod
    def _for_env(
        cls: type[T],
        env_id: str,
        preset: Any,
        config: Any,
        num_envs: int | None,
        seed: int,
        device: str,
    ) -> T:
        """``for_env``'s ``num_envs`` (``tron train --envs``) is the number of workers; each
        builds ``make_vec_env(env_id, envs_per_worker)``."""
        if num_envs is not None:
            config = dataclasses.replace(config, num_workers=num_envs)
        return cls(MakeVecEnv(env_id, config.envs_per_worker), config, seed=seed, device=device)

    def _setup(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: A3CConfig,
        policy: nn.Module | PolicyFactory | None,
        seed: int,
        device: str,
    ) -> None:
        if device not in ("auto", "cpu"):
            raise ValueError(f"A3C runs on the CPU (shared-memory Hogwild updates), got {device!r}")
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"A3C needs a Box observation space, got {observation_space}")
        for name in ("num_workers", "envs_per_worker", "t_max", "log_every"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
        self.config = config
        self.seed = seed
        self.device = torch.device("cpu")
        self.observation_space: gym.spaces.Box = observation_space
        self.action_space = action_space
        self.env_fn = None
        self.env_id = None
        self.suite = None
        self.num_timesteps = 0
        self.num_updates = 0
        #: Per worker of the last ``learn``: ``updates``, ``stale`` (see the module docstring).
        self.worker_stats: list[dict[str, int]] = []
        self.worker_pids: list[int] = []
        torch.manual_seed(seed)
        if config.network == "custom":
            if policy is None:
                raise ValueError("network 'custom' needs the module or factory as policy=")
            model = (
                policy if isinstance(policy, nn.Module) else policy(observation_space, action_space)
            )
        else:
            if policy is not None:
                raise ValueError(
                    f"policy= is only used with network 'custom', not {config.network!r}"
                )
            if config.network == "tron_net":
                model = tron_net(observation_space, action_space)
            else:
                torso, width = build_torso(
                    config.network,
                    observation_space,
                    hidden=config.hidden,
                    activation=config.activation,
                    cnn="small_cnn",
                )
                model = SharedActorCritic(torso, width, action_space)
        self.model = model
        self.optimizer = SharedRMSprop(
            self.model.parameters(), lr=config.lr, alpha=config.rms_alpha, eps=config.rms_eps
        )
        self._episodes = EpisodeWindow()

    def set_env(self, env: EnvFactory) -> None:
        """Train with the worker envs ``env`` builds from the next ``learn``."""
        self.env_fn = env

    # -- acting --------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, obs: NDArray[Any], deterministic: bool = True) -> NDArray[Any]:
        """Actions for observations (N, *obs_shape), or for one without the batch axis."""
        obs = np.asarray(obs)
        single = obs.shape == self.observation_space.shape
        batch = torch.as_tensor(obs[None] if single else obs)
        params, _ = self.model(batch)
        if deterministic:
            actions = distribution_mode(params, self.action_space)
        else:
            actions = action_distribution(params, self.action_space).sample()
        out = _env_actions(actions, self.action_space)
        return out[0] if single else out

    # -- training ------------------------------------------------------------------------------

    def learn(
        self: T, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = False
    ) -> T:
        """Train with ``num_workers`` processes until the shared step count reaches
        ``total_timesteps`` (a target, not an increment).

        Args:
            total_timesteps: step count to reach (all workers' envs counted).
            callback: called in this process about every ``log_every`` env steps with
                ``(learner, metrics)``; ``False`` stops the workers. The workers keep pushing
                while it runs: evaluate a copy of ``learner.model`` for a consistent policy.
            progress_bar: show a tqdm bar with steps/s and the mean return of the last 100
                episodes.

        Raises:
            A3CWorkerError: a worker raised or died; the others have been stopped.
            KeyboardInterrupt: after the workers have been stopped.
        """
        if self.env_fn is None:
            raise ValueError("no env to train on: pass an env factory to load(...) or set_env")
        if total_timesteps <= self.num_timesteps:
            log.warning(
                "learn(%d): already at %d steps, nothing to do", total_timesteps, self.num_timesteps
            )
            return self
        c = self.config
        ctx = mp.get_context(c.start_method)
        self.model.share_memory()
        self.optimizer.share_memory()
        shared = _Shared(
            model=self.model,
            optimizer=self.optimizer,
            steps=ctx.Value("q", self.num_timesteps),
            updates=ctx.Array("q", c.num_workers),
            stale=ctx.Array("q", c.num_workers),
            ready=ctx.Value("i", 0),
            stop=ctx.Event(),
            reports=ctx.Queue(),
        )
        run = _Run(
            config=c,
            total_timesteps=total_timesteps,
            seed=self.seed,
            start_timesteps=self.num_timesteps,
            parent_pid=os.getpid(),
        )
        workers = [
            ctx.Process(  # type: ignore[attr-defined]
                target=_worker_main,
                args=(rank, shared, self.env_fn, run),
                name=f"a3c-worker-{rank}",
                daemon=True,
            )
            for rank in range(c.num_workers)
        ]
        bar = ProgressBar(total_timesteps, self.num_timesteps) if progress_bar else None
        base_updates = self.num_updates
        try:
            for w in workers:
                w.start()
            self.worker_pids = [w.pid for w in workers if w.pid is not None]
            self._supervise(workers, shared, run, callback, bar)
        finally:
            _shutdown(workers, shared)
            if bar is not None:
                bar.close()
            self.num_timesteps = int(shared.steps.value)
            self.worker_stats = [
                {"updates": int(shared.updates[k]), "stale": int(shared.stale[k])}
                for k in range(c.num_workers)
            ]
            self.num_updates = base_updates + sum(s["updates"] for s in self.worker_stats)
        return self

    def _supervise(
        self,
        workers: list[Any],
        shared: _Shared,
        run: _Run,
        callback: Callback | None,
        bar: ProgressBar | None,
    ) -> None:
        """Read reports, call the callback, and fail fast on a worker error, until all are done."""
        c = self.config
        base_updates = self.num_updates
        done: set[int] = set()
        sums: dict[str, float] = {}
        count = 0
        next_log = (self.num_timesteps // c.log_every + 1) * c.log_every
        log_start, log_steps = time.perf_counter(), self.num_timesteps
        while len(done) < len(workers):
            try:
                kind, rank, payload = shared.reports.get(timeout=0.1)
            except queue.Empty:
                kind = None
            if kind == "error":
                raise A3CWorkerError(f"A3C worker {rank} failed:\n{payload}")
            if kind in ("report", "done"):
                self._episodes.add(payload["episodes"])
                for key, value in payload["losses"].items():
                    sums[key] = sums.get(key, 0.0) + value
                count += payload["updates"]
                if kind == "done":
                    done.add(rank)
            for rank, w in enumerate(workers):
                if rank not in done and w.exitcode is not None and kind is None:
                    # Exited without a final report: killed, or died in native code.
                    raise A3CWorkerError(
                        f"A3C worker {rank} (pid {w.pid}) exited with code {w.exitcode} "
                        "without finishing"
                    )
            self.num_timesteps = int(shared.steps.value)
            self.num_updates = base_updates + sum(shared.updates[:])
            if bar is not None:
                bar.update(self.num_timesteps, self._episodes.mean_return())
            finished = len(done) == len(workers)
            if self.num_timesteps >= next_log or (finished and self.num_timesteps > log_steps):
                now = time.perf_counter()
                metrics = {k: v / count for k, v in sums.items()} if count else {}
                metrics.update(self._episodes.pop_metrics())
                updates = sum(shared.updates[:])
                metrics["a3c/updates"] = float(self.num_updates)
                metrics["a3c/stale_fraction"] = sum(shared.stale[:]) / max(updates, 1)
                metrics["charts/learning_rate"] = _lr(run, self.num_timesteps)
                metrics["charts/steps_per_s"] = (self.num_timesteps - log_steps) / max(
                    now - log_start, 1e-9
                )
                log_start, log_steps = now, self.num_timesteps
                sums, count = {}, 0
                next_log = (self.num_timesteps // c.log_every + 1) * c.log_every
                if callback is not None and callback(self, metrics) is False:
                    return

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint (global network, shared RMSprop statistics, counters, JSON config)
        atomically; taken while workers may be writing, it is a Hogwild snapshot."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_updates": self.num_updates,
            "observation_space": box_state(self.observation_space),
        }
        if isinstance(self.action_space, gym.spaces.Box):
            state["action_space"] = box_state(self.action_space)
        config = {
            **self._checkpoint_json(),
            "n_actions": int(self.action_space.n)
            if isinstance(self.action_space, gym.spaces.Discrete)
            else None,
        }
        save_checkpoint(
            path, algo=self.algo, config=config, num_timesteps=self.num_timesteps, state=state
        )

    @classmethod
    def load(
        cls: type[T],
        path: str | os.PathLike[str],
        env: EnvFactory | VectorEnv | None = None,
        device: str = "auto",
        *,
        policy: nn.Module | PolicyFactory | None = None,
    ) -> T:
        """A learner restored from a checkpoint written by ``save``.

        Args:
            path: checkpoint file or run directory.
            env: an ``EnvFactory`` for the workers; ``None`` rebuilds the checkpoint's env id with
                ``make_vec_env`` in each worker. A vector env instance stands for its env id the
                same way (workers build their own envs); it is closed.
            device: ``cpu`` or ``auto``.
            policy: the module or factory again, for checkpoints of ``network="custom"``.

        Raises:
            CheckpointError: unreadable file or a checkpoint of another learner.
        """
        learner = cls._restore(path, policy, device)
        if isinstance(env, VectorEnv):
            env.close()
            env = None
        if env is None and learner.env_id is not None:
            env = MakeVecEnv(learner.env_id, learner.config.envs_per_worker)
        learner.env_fn = env
        return learner

    @classmethod
    def _spaces_from_checkpoint(
        cls, meta: Mapping[str, Any], state: Mapping[str, Any]
    ) -> tuple[gym.Space, gym.Space]:
        observation_space = box_from_state(state["observation_space"])
        if meta["n_actions"] is None:
            return observation_space, box_from_state(state["action_space"])
        return observation_space, gym.spaces.Discrete(int(meta["n_actions"]))

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_updates = int(state["num_updates"])

    def describe(self) -> dict[str, Any]:
        """Algorithm, env, preset and every hyperparameter (printed by ``tron train``)."""
        # What ``for_env``'s num_envs (``tron train --envs``) sets: the worker processes, each
        # with envs_per_worker envs.
        return self._describe(self.model, self.config.num_workers, "cpu")


@dataclass(frozen=True)
class _Run:
    """The settings of one ``learn`` call, as the workers need them."""

    config: A3CConfig
    total_timesteps: int
    seed: int
    start_timesteps: int
    parent_pid: int


def _lr(run: _Run, steps: int) -> float:
    if run.config.lr_schedule == "constant":
        return run.config.lr
    return run.config.lr * max(0.0, 1.0 - steps / run.total_timesteps)


def _env_actions(actions: torch.Tensor, action_space: gym.Space) -> NDArray[Any]:
    out = actions.cpu().numpy()
    if isinstance(action_space, gym.spaces.Box):
        return np.clip(out, action_space.low, action_space.high).astype(action_space.dtype)
    return out.astype(np.int64)


def _worker_main(rank: int, shared: _Shared, env_fn: EnvFactory, run: _Run) -> None:
    """Entry point of a worker process: run the loop, report its end or its traceback."""
    # Ctrl-C reaches the whole process group; the parent alone decides how the workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One thread per worker: K workers on K cores, no oversubscription.
    torch.set_num_threads(1)
    try:
        shared.reports.put(("done", rank, _worker_loop(rank, shared, env_fn, run)))
    except BaseException:
        shared.reports.put(("error", rank, traceback.format_exc()))
        raise SystemExit(1) from None


class _Report:
    """What a worker accumulates between two reports to the parent."""

    def __init__(self) -> None:
        self.episodes: list[tuple[float, int]] = []
        self.losses: dict[str, float] = {}
        self.updates = 0

    def add_update(self, losses: Mapping[str, float]) -> None:
        for key, value in losses.items():
            self.losses[key] = self.losses.get(key, 0.0) + value
        self.updates += 1

    def pop(self) -> dict[str, Any]:
        out = {"episodes": self.episodes, "losses": self.losses, "updates": self.updates}
        self.__init__()  # type: ignore[misc]
        return out


def a3c_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: A3CConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A worker's loss on its samples (one value per sample in each tensor) and its three terms:
    ``-log pi(a|s) A + vf_coef (R - V)^2 / 2 - ent_coef H``, each term summed or averaged over the
    samples by ``config.loss_reduction``. Returns ``(loss, policy, value, entropy)``."""
    reduce = torch.sum if config.loss_reduction == "sum" else torch.mean
    policy_loss = reduce(-(advantages * log_prob))
    value_loss = reduce(0.5 * (returns - values).pow(2))
    entropy_term = reduce(entropy)
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy_term
    return loss, policy_loss, value_loss, entropy_term


def _wait_for_all_workers(shared: _Shared, run: _Run) -> None:
    """Start line: return once every worker has built its envs (or the run is stopping).

    Without it a worker that starts late (``spawn`` imports torch afresh, an Atari env takes a
    while to build) can find a short run's step budget already used up by the others.
    """
    with shared.ready.get_lock():
        shared.ready.value += 1
    while shared.ready.value < run.config.num_workers and not shared.stop.is_set():
        if os.getppid() != run.parent_pid:
            return
        time.sleep(0.005)


def _worker_loop(rank: int, shared: _Shared, env_fn: EnvFactory, run: _Run) -> dict[str, Any]:
    c = run.config
    torch.manual_seed(
        int(np.random.SeedSequence([run.seed, run.start_timesteps, rank]).generate_state(1)[0])
    )
    env = env_fn(rank)
    try:
        check_autoreset(env)
        env = ensure_episode_statistics(env)
        action_space = env.single_action_space
        local = copy.deepcopy(shared.model)
        local_params = list(local.parameters())
        global_params = list(shared.model.parameters())
        n = env.num_envs
        obs, _ = env.reset(seed=reset_seed(run.seed, run.start_timesteps) + 10_007 * (rank + 1))
        prev_done = np.zeros(n, dtype=bool)
        report = _Report()
        _wait_for_all_workers(shared, run)
        last_report = time.monotonic()
        while not shared.stop.is_set() and shared.steps.value < run.total_timesteps:
            if os.getppid() != run.parent_pid:
                break  # the parent is gone: stop rather than run on as an orphan
            # Pull.
            local.load_state_dict(shared.model.state_dict())
            # Act: t_max steps of every env.
            obs_buf, act_buf = [], []
            rewards = np.zeros((c.t_max, n))
            terminated = np.zeros((c.t_max, n), dtype=bool)
            truncated = np.zeros((c.t_max, n), dtype=bool)
            valid = np.zeros((c.t_max, n), dtype=bool)
            values = np.zeros((c.t_max + 1, n))
            with torch.no_grad():
                for t in range(c.t_max):
                    x = torch.as_tensor(obs)
                    params, value = local(x)
                    actions = action_distribution(params, action_space).sample()
                    obs_buf.append(x)
                    act_buf.append(actions)
                    values[t] = value.numpy()
                    valid[t] = ~prev_done
                    obs, rewards[t], terminated[t], truncated[t], info = env.step(
                        _env_actions(actions, action_space)
                    )
                    prev_done = terminated[t] | truncated[t]
                    report.episodes.extend(finished_episodes(info))
                values[c.t_max] = local(torch.as_tensor(obs))[1].numpy()
            # Learn: n-step returns (lambda = 1), reset steps masked out.
            advantages, returns = compute_advantages(
                rewards, values, terminated, truncated, c.gamma, 1.0
            )
            mask = torch.as_tensor(valid)
            params, v = local(torch.stack(obs_buf)[mask])
            dist = action_distribution(params, action_space)
            loss, policy_loss, value_loss, entropy = a3c_loss(
                dist.log_prob(torch.stack(act_buf)[mask]),
                dist.entropy(),
                v,
                torch.as_tensor(advantages)[mask],
                torch.as_tensor(returns)[mask],
                c,
            )
            per_sample = max(1, int(mask.sum())) if c.loss_reduction == "sum" else 1
            local.zero_grad()
            loss.backward()
            if c.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(local_params, c.max_grad_norm)
            # Push: the local gradients into the shared optimizer, no lock.
            stale = any(
                not torch.equal(lp, gp) for lp, gp in zip(local_params, global_params, strict=True)
            )
            for group in shared.optimizer.param_groups:
                group["lr"] = _lr(run, int(shared.steps.value))
            for lp, gp in zip(local_params, global_params, strict=True):
                gp.grad = lp.grad
            shared.optimizer.step()
            with shared.steps.get_lock():
                before = shared.steps.value
                shared.steps.value += c.t_max * n
                crossed_log = before // c.log_every != shared.steps.value // c.log_every
            shared.updates[rank] += 1
            shared.stale[rank] += int(stale)
            report.add_update(
                {
                    # Per-sample means in the logs, whatever the reduction.
                    "losses/policy_loss": policy_loss.item() / per_sample,
                    "losses/value_loss": value_loss.item() / per_sample,
                    "losses/entropy": entropy.item() / per_sample,
                }
            )
            # Report every 0.25 s, and at once when this update crossed a log_every boundary, so
            # the parent logs a row per log_every steps however fast the env is.
            if crossed_log or time.monotonic() - last_report > 0.25:
                shared.reports.put(("report", rank, report.pop()))
                last_report = time.monotonic()
        return report.pop()
    finally:
        env.close()


def _drain(reports: Any) -> None:
    try:
        while True:
            reports.get_nowait()
    except (queue.Empty, OSError, ValueError):
        return


def _shutdown(workers: list[Any], shared: _Shared, grace: float = 10.0) -> None:
    """Stop and reap every started worker: ask, wait up to ``grace`` s, then terminate, kill."""
    shared.stop.set()
    started = [w for w in workers if w.pid is not None]
    deadline = time.monotonic() + grace
    for w in started:
        while w.is_alive() and time.monotonic() < deadline:
            # A worker blocked on a full queue can only exit once its reports are read.
            _drain(shared.reports)
            w.join(0.05)
    for w in started:
        if w.is_alive():
            log.warning("A3C worker %s did not stop in %.0f s; terminating it", w.name, grace)
            w.terminate()
            w.join(2.0)
        if w.is_alive():
            w.kill()
            w.join()
    _drain(shared.reports)


def load_policy(
    path: str | os.PathLike[str], *, policy: nn.Module | PolicyFactory | None = None
) -> GreedyPolicy:
    """An A3C checkpoint as a function from observations to greedy actions (arg-max logit).

    Raises:
        CheckpointError: unreadable file or not an A3C checkpoint.
        ValueError: a checkpoint with continuous actions (no greedy arg-max).
    """
    learner = A3C.load(path, policy=policy)
    if not isinstance(learner.action_space, gym.spaces.Discrete):
        raise ValueError(
            f"{path}: greedy policies need Discrete actions, got {learner.action_space}"
        )
    learner.model.eval()
    return GreedyPolicy(
        model=learner.model,
        observation_space=learner.observation_space,
        action_space=learner.action_space,
        device=learner.device,
        scores=lambda out: out[0],
    )
