"""Vector environments for the learners: Atari, MuJoCo, any gymnasium id, and registered factories.

``make_vec_env(env_id, num_envs)`` resolves an id in this order:

1. a registered factory: ``register_env_factory("tron", factory)`` claims ``"tron"`` and every id
   of the form ``"tron:<anything>"`` (the self-play env of the arena plugs in this way; ``acktr``
   itself imports nothing of Tron);
2. an Atari id (``ALE/Pong-v5``, ``PongNoFrameskip-v4``): ale-py's ``AtariVectorEnv``, which runs
   the standard preprocessing in C++ threads (noop starts, fire reset, frame skip 4 with
   max-pooling, 84x84 grayscale, a 4-frame stack). The id's protocol is kept: ``-v5`` has sticky
   actions (0.25), ``NoFrameskip-v4`` (the ACKTR paper's) has none. Episodes are whole games;
3. any other gymnasium id (MuJoCo v5, classic control, Box2D, ...): ``gymnasium.make_vec``, run
   in-process (``sync``): on a 2-core machine subprocess workers cost more than they save.

Every env comes back wrapped in ``RecordEpisodeStatistics`` so that ``info["episode"]`` reports true
episode returns; Atari rewards are clipped to [-1, 1] *above* that wrapper, so the learner trains
on clipped rewards while the logs show game scores. All envs use gymnasium's default NEXT_STEP
autoreset, which the learners rely on (the step after an episode ends is a reset step).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import ClipReward, RecordEpisodeStatistics

log = logging.getLogger(__name__)

Suite = Literal["atari", "mujoco", "classic"]

#: (env_id, num_envs) -> a NEXT_STEP-autoreset vector env.
EnvFactory = Callable[[str, int], VectorEnv]


@dataclass(frozen=True)
class _Registered:
    factory: EnvFactory
    suite: str


_FACTORIES: dict[str, _Registered] = {}


def register_env_factory(prefix: str, factory: EnvFactory, *, suite: str | None = None) -> None:
    """Make ``make_vec_env`` build ids ``prefix`` and ``prefix:...`` with ``factory``.

    Args:
        prefix: the id's head, without a colon (``"tron"``).
        factory: called as ``factory(env_id, num_envs)``; returns a vector env with NEXT_STEP
            autoreset (wrapping it in ``RecordEpisodeStatistics`` is left to ``make_vec_env``).
        suite: the hyperparameter preset family these envs use (defaults to ``prefix``); learners
            fall back to their ``classic`` preset for a suite they have no preset for.
    """
    if not prefix or ":" in prefix:
        raise ValueError(f"env factory prefix must be non-empty and contain no ':', got {prefix!r}")
    _FACTORIES[prefix] = _Registered(factory, suite or prefix)


def _registered(env_id: str) -> _Registered | None:
    return _FACTORIES.get(env_id.split(":", 1)[0])


def _gym_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    import ale_py

    gym.register_envs(ale_py)
    try:
        return gym.spec(env_id)
    except gym.error.Error as e:
        known = ", ".join(sorted(_FACTORIES)) or "none"
        raise ValueError(
            f"unknown environment {env_id!r} ({e}); use a gymnasium id such as CartPole-v1, "
            f"Hopper-v5 or ALE/Pong-v5, or a registered prefix (registered: {known})"
        ) from None


def env_suite(env_id: str) -> str:
    """The preset family of ``env_id``: ``atari``, ``mujoco``, ``classic`` or a registered suite.

    Every gymnasium env that is neither Atari nor MuJoCo counts as ``classic`` (small MLP
    settings).
    """
    registered = _registered(env_id)
    if registered is not None:
        return registered.suite
    entry = str(_gym_spec(env_id).entry_point)
    if entry.startswith("ale_py"):
        return "atari"
    if ".mujoco." in entry:
        return "mujoco"
    return "classic"


def make_atari(
    game: str,
    num_envs: int,
    *,
    sticky_actions: float = 0.0,
    max_frames: int = 108_000,
    clip_rewards: bool = True,
    num_threads: int = 0,
) -> VectorEnv:
    """Atari through ``ale_py.AtariVectorEnv`` with the standard preprocessing.

    Args:
        game: ROM name in snake case (``"pong"``, ``"space_invaders"``).
        num_envs: parallel games.
        sticky_actions: probability of repeating the previous action (0.25 in the v5 protocol).
        max_frames: emulator frames after which an episode is truncated (108k = 30 minutes).
        clip_rewards: clip training rewards to [-1, 1]; episode statistics stay unclipped.
        num_threads: emulator threads (0: ale-py's default).

    Returns:
        Observations (num_envs, 4, 84, 84) ``uint8``; ``info["episode"]["r"]`` holds game scores.
    """
    import ale_py

    env: VectorEnv = ale_py.AtariVectorEnv(
        game,
        num_envs,
        repeat_action_probability=sticky_actions,
        max_num_frames_per_episode=max_frames,
        num_threads=num_threads,
        # Clipping happens in Python above the statistics wrapper, so episode returns are scores.
        reward_clipping=False,
        # Whole games: this ale-py restarts the game at a life loss when episodic_life is set,
        # which would hide the later lives from the agent.
        episodic_life=False,
    )
    env = RecordEpisodeStatistics(env)
    if clip_rewards:
        env = ClipReward(env, min_reward=-1.0, max_reward=1.0)
    return env


def make_vec_env(env_id: str, num_envs: int, **kwargs: Any) -> VectorEnv:
    """A vector env of ``num_envs`` copies of ``env_id`` (see the module docstring).

    Args:
        env_id: a registered prefix id, an Atari id or any gymnasium id.
        num_envs: number of parallel sub-environments.
        **kwargs: passed to ``gymnasium.make_vec``'s env constructor (gymnasium ids only).

    Raises:
        ValueError: for an unknown id or a non-positive ``num_envs``.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    registered = _registered(env_id)
    if registered is not None:
        env = registered.factory(env_id, num_envs)
        return ensure_episode_statistics(env)
    spec = _gym_spec(env_id)
    if str(spec.entry_point).startswith("ale_py"):
        if kwargs:
            raise ValueError(f"Atari envs take no extra keyword arguments, got {sorted(kwargs)}")
        return make_atari(
            spec.kwargs["game"],
            num_envs,
            sticky_actions=float(spec.kwargs.get("repeat_action_probability", 0.25)),
            max_frames=int(spec.kwargs.get("max_num_frames_per_episode", 108_000)),
        )
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **kwargs)
    return RecordEpisodeStatistics(env)


def ensure_episode_statistics(env: VectorEnv) -> VectorEnv:
    """``env``, wrapped in ``RecordEpisodeStatistics`` unless a wrapper in its chain already is."""
    inner: Any = env
    while inner is not None:
        if isinstance(inner, RecordEpisodeStatistics):
            return env
        inner = getattr(inner, "env", None)
    return RecordEpisodeStatistics(env)


def check_autoreset(env: VectorEnv) -> None:
    """Fail loudly unless ``env`` autoresets NEXT_STEP, the mode the learners' maths assumes."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if AutoresetMode(mode) is not AutoresetMode.NEXT_STEP:
        raise ValueError(
            f"the vector env autoresets in {AutoresetMode(mode).name} mode; the learners need "
            "NEXT_STEP (gymnasium's default): build it with autoreset_mode=AutoresetMode.NEXT_STEP"
        )


def finished_episodes(info: dict[str, Any]) -> list[tuple[float, int]]:
    """(return, length) of the episodes that ended this step, from ``RecordEpisodeStatistics``."""
    if "episode" not in info:
        return []
    done = np.flatnonzero(info["_episode"])
    stats = info["episode"]
    return [(float(stats["r"][i]), int(stats["l"][i])) for i in done]
