"""Env resolution: suites, registered factories, Atari preprocessing and reward clipping."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from acktr import envs
from acktr.envs import (
    check_autoreset,
    ensure_episode_statistics,
    env_suite,
    finished_episodes,
    make_atari,
    make_vec_env,
    register_env_factory,
)


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(envs, "_FACTORIES", {})
    yield


@pytest.mark.parametrize(
    ("env_id", "suite"),
    [
        ("CartPole-v1", "classic"),
        ("Pendulum-v1", "classic"),
        ("Hopper-v5", "mujoco"),
        ("InvertedPendulum-v5", "mujoco"),
        ("ALE/Pong-v5", "atari"),
        ("PongNoFrameskip-v4", "atari"),
    ],
)
def test_env_suite(env_id: str, suite: str) -> None:
    assert env_suite(env_id) == suite


def test_unknown_env_id_says_what_to_use() -> None:
    with pytest.raises(ValueError, match=r"unknown environment 'Nope-v0'.*CartPole-v1"):
        make_vec_env("Nope-v0", 2)


def test_registered_factory_claims_its_prefix() -> None:
    calls: list[tuple[str, int]] = []

    def factory(env_id: str, num_envs: int) -> VectorEnv:
        calls.append((env_id, num_envs))
        return gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync")

    register_env_factory("toy", factory, suite="classic")
    env = make_vec_env("toy:map=small,opponent=random", 3)
    assert calls == [("toy:map=small,opponent=random", 3)]
    assert isinstance(env, RecordEpisodeStatistics) and env.num_envs == 3
    assert env_suite("toy") == "classic"
    register_env_factory("other", factory)
    assert env_suite("other:x") == "other"
    with pytest.raises(ValueError, match="contain no ':'"):
        register_env_factory("a:b", factory)


def test_gymnasium_env_reports_episodes() -> None:
    env = make_vec_env("CartPole-v1", 2)
    env.reset(seed=0)
    episodes: list[tuple[float, int]] = []
    while len(episodes) < 2:
        _, _, _, _, info = env.step(np.zeros(2, dtype=np.int64))
        episodes += finished_episodes(info)
    # Pushing left all the time: CartPole's reward is 1 per step, so return == length.
    assert all(r == n and 5 <= n <= 20 for r, n in episodes)


def test_atari_frames_and_clipped_training_rewards_with_unclipped_scores() -> None:
    # 800 frames = 200 agent steps; Space Invaders pays 5-30 points an alien.
    env = make_atari("space_invaders", 2, max_frames=800)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    rng = np.random.default_rng(0)
    clipped = np.zeros(2)
    for _ in range(199):
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, 6, size=2))
        assert set(np.unique(reward)) <= {-1.0, 0.0, 1.0}
        clipped += reward
    obs, reward, terminated, truncated, info = env.step(rng.integers(0, 6, size=2))
    clipped += reward
    assert truncated.all() and not terminated.any()
    scores = info["episode"]["r"]
    assert (clipped > 0).all()
    assert (scores >= 5 * clipped).all()


def test_autoreset_mode_is_checked() -> None:
    same_step = SyncVectorEnv(
        [lambda: gym.make("CartPole-v1")], autoreset_mode=AutoresetMode.SAME_STEP
    )
    with pytest.raises(ValueError, match="learners need NEXT_STEP"):
        check_autoreset(same_step)
    check_autoreset(make_vec_env("CartPole-v1", 1))


def test_episode_statistics_are_added_once() -> None:
    env = make_vec_env("CartPole-v1", 1)
    assert ensure_episode_statistics(env) is env
    bare = gym.make_vec("CartPole-v1", num_envs=1, vectorization_mode="sync")
    assert isinstance(ensure_episode_statistics(bare), RecordEpisodeStatistics)
