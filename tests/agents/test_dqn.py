"""DQN: learning on CartPole, the Double DQN target by hand, target syncs, seeds, checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from acktr.envs import make_vec_env
from acktr.training import CheckpointError, load_learner
from agents.dqn import DQN, PRESETS, DQNConfig, load_policy
from agents.networks import ActorCriticQ, QNetwork

CLASSIC = PRESETS["classic"].config


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # Tests run two at a time on two cores; small networks are fastest on one thread anyway.
    torch.set_num_threads(1)


def greedy_return(predict: Any, episodes: int = 10, seed: int = 10_000) -> float:
    """Mean undiscounted return of the greedy policy on CartPole-v1 over fixed seeds."""
    env = gym.make("CartPole-v1")
    total = 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(predict(obs)))
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def test_dqn_cartpole__reaches_475_within_50k_steps() -> None:
    # Budget: 50k env steps of the classic preset (3-step Double DQN, 64-64 MLP, 0.5 gradient
    # steps per env step). Every 5k steps the greedy policy plays 20 fixed-seed episodes; training
    # stops once they average >= 475. Seed 0 gets there at 20k steps (~20 s on 2 cores).
    learner = DQN(make_vec_env("CartPole-v1", 1), CLASSIC, seed=0, device="cpu")
    reached: list[int] = []

    def evaluate(lrn: Any, metrics: Mapping[str, float]) -> bool:
        if lrn.num_timesteps % 5_000 == 0 and greedy_return(lrn.predict, episodes=20) >= 475:
            reached.append(lrn.num_timesteps)
            return False
        return True

    learner.learn(50_000, callback=evaluate)
    assert reached and reached[0] <= 50_000


def small(**changes: Any) -> DQNConfig:
    """A quick config: updates from 200 transitions, every 16 steps."""
    base = dict(
        learning_starts=200,
        train_freq=16,
        gradient_steps=4,
        target_update_interval=10,
        log_every=500,
    )
    return dataclasses.replace(CLASSIC, **{**base, **changes})


def test_same_seed__same_parameters_and_actions() -> None:
    def run(seed: int) -> tuple[dict[str, torch.Tensor], list[float]]:
        learner = DQN(make_vec_env("CartPole-v1", 2), small(), seed=seed, device="cpu")
        losses: list[float] = []
        learner.learn(2_000, callback=lambda lrn, m: losses.append(m["losses/td_loss"]))
        return learner.q_net.state_dict(), losses

    a, losses_a = run(3)
    b, losses_b = run(3)
    c, _ = run(4)
    assert losses_a == losses_b and len(losses_a) == 4
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_target_network__synced_every_interval_gradient_steps() -> None:
    learner = DQN(
        make_vec_env("CartPole-v1", 1),
        small(learning_starts=10**9, target_update_interval=3),
        seed=0,
        device="cpu",
    )
    learner.learn(300)  # fills the buffer, no update yet
    assert learner.num_gradient_steps == 0

    def same(a: nn.Module, b: nn.Module) -> bool:
        return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))

    synced = [p.clone() for p in learner.q_net.parameters()]
    for step in range(1, 10):
        learner.update(1)
        assert learner.num_gradient_steps == step
        if step % 3 == 0:
            assert same(learner.target_net, learner.q_net)
            synced = [p.clone() for p in learner.q_net.parameters()]
        else:
            assert not same(learner.target_net, learner.q_net)
            assert all(
                torch.equal(t, s)
                for t, s in zip(learner.target_net.parameters(), synced, strict=True)
            )
    assert learner.num_target_updates == 3


class TableQ(nn.Module):
    """Q(s, .) = W s for one-hot states: a Q-table the test can set by hand."""

    def __init__(self, n_states: int, n_actions: int) -> None:
        super().__init__()
        self.table = nn.Linear(n_states, n_actions, bias=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table(obs.float())


class OneHotChain(gym.vector.VectorEnv):
    """Two states as one-hot vectors: state 0 -> state 1 (reward 1) -> episode end (reward 0)."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(self) -> None:
        self.num_envs = 1
        self.single_observation_space = gym.spaces.Box(0, 1, (2,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 1)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 1)
        self.state = 0

    def _obs(self) -> np.ndarray:
        return np.eye(2, dtype=np.float32)[[self.state % 2]]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.state = 0
        return self._obs(), {}

    def step(self, actions: np.ndarray) -> Any:
        self.state += 1
        reward = np.array([1.0 if self.state == 1 else 0.0])
        return self._obs(), reward, np.array([False]), np.array([False]), {}


@pytest.mark.parametrize(("double", "bootstrap"), [(True, 4.0), (False, 10.0)])
def test_update__double_dqn_target_by_hand(double: bool, bootstrap: float) -> None:
    config = small(
        network="custom", double=double, gamma=0.5, learning_starts=10**9, lr=0.0, batch_size=1
    )
    learner = DQN(OneHotChain(), dataclasses.replace(config, n_step=1), q_network=TableQ(2, 2))
    learner.learn(2)  # one complete transition: s0 --a--> s1 with reward 1
    assert learner.buffer is not None
    action = int(learner.buffer.actions[0, 0])
    with torch.no_grad():
        # Q(s, a) = W[a, s]. Online: Q(s0) = (1, 2), Q(s1) = (5, 3); target: Q(s1) = (4, 10).
        online, target = cast(TableQ, learner.q_net), cast(TableQ, learner.target_net)
        online.table.weight.copy_(torch.tensor([[1.0, 5.0], [2.0, 3.0]]))
        target.table.weight.copy_(torch.tensor([[0.0, 4.0], [0.0, 10.0]]))
    # Double DQN: the online net picks a' = argmax Q(s1) = 0, the target rates it: 4.
    # Nature DQN: the target's own max over Q_target(s1): 10.
    y = 1.0 + 0.5 * bootstrap
    q_sa = [1.0, 2.0][action]
    delta = abs(q_sa - y)
    huber = 0.5 * delta**2 if delta < 1 else delta - 0.5
    metrics = learner.update(1)
    assert metrics["losses/td_loss"] == pytest.approx(huber)
    assert metrics["losses/q_values"] == pytest.approx(q_sa)


def test_dueling_head__mean_advantage_removed() -> None:
    learner = DQN(make_vec_env("CartPole-v1", 1), small(dueling=True), seed=0, device="cpu")
    head = cast(QNetwork, learner.q_net).head
    assert head.value is not None
    features = torch.randn(5, 64)
    with torch.no_grad():
        q = head(features)
        v = head.value(features)
        a = head.advantage(features)
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), v)
    torch.testing.assert_close(q - v, a - a.mean(dim=1, keepdim=True))
    learner.learn(600)
    assert learner.num_gradient_steps > 0


def test_save_load__round_trip_and_resume(tmp_path: Path) -> None:
    learner = DQN(make_vec_env("CartPole-v1", 2), small(), seed=1, device="cpu")
    learner.learn(1_000)
    path = tmp_path / "dqn.pt"
    learner.save(path)
    loaded = DQN.load(path, env=make_vec_env("CartPole-v1", 2), device="cpu")
    assert loaded.num_timesteps == 1_000
    assert loaded.num_gradient_steps == learner.num_gradient_steps
    assert loaded.num_target_updates == learner.num_target_updates
    assert loaded.config == learner.config
    for name in ("q_net", "target_net"):
        a, b = getattr(learner, name).state_dict(), getattr(loaded, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), learner.predict(obs))
    np.testing.assert_array_equal(load_policy(path)(obs), learner.predict(obs))
    assert int(load_policy(path)(obs[0])) == int(learner.predict(obs[0]))
    assert type(load_learner(path)) is DQN
    # Resume: the buffer refills learning_starts transitions, then updates continue.
    steps = loaded.num_gradient_steps
    loaded.learn(1_400)
    assert loaded.num_timesteps == 1_400 and loaded.num_gradient_steps > steps


def test_load__clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        DQN.load(bad)
    from agents.a3c import A3C, MakeVecEnv

    other = tmp_path / "a3c.pt"
    A3C(MakeVecEnv("CartPole-v1", 1)).save(other)
    with pytest.raises(CheckpointError, match=r"a3c.*not dqn"):
        DQN.load(other)


class Recorder(gym.vector.VectorWrapper):
    """Keeps every observation the env returned: ``seen[t]`` is the one acted on at step t."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.seen: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        self.seen.append(obs.copy())
        return obs, info

    def step(self, actions: Any) -> Any:
        obs, *rest = self.env.step(actions)
        self.seen.append(obs.copy())
        return (obs, *rest)


def test_atari__frames_stored_once_and_stacks_match_the_env() -> None:
    env = Recorder(make_vec_env("ALE/Pong-v5", 2))
    config = dataclasses.replace(PRESETS["atari"].config, buffer_size=2_000, learning_starts=10**9)
    learner = DQN(env, config, seed=0, device="cpu")
    buffer = learner.buffer
    assert buffer is not None and buffer.frame_stack == 4
    assert buffer.frames.shape == (1_000, 2, 84, 84)
    learner.learn(600)
    sample = buffer.sample(64)
    for i in range(64):
        t, e = sample.rows[i], sample.envs[i]
        np.testing.assert_array_equal(sample.obs[i], env.seen[t][e])
        np.testing.assert_array_equal(sample.next_obs[i], env.seen[t + 1][e])
    # 300 steps of 2 games: 2 x 300 frames of 84x84 stored, not 2 x 300 x 8.
    assert buffer.steps_added == 300


def test_tron__trains_against_given_opponents() -> None:
    from tron.env import RandomPolicy, TronVectorEnv

    # The learners add RecordEpisodeStatistics themselves (acktr.envs.ensure_episode_statistics).
    env = TronVectorEnv(4, opponents=RandomPolicy(), episode_stats=False)
    config = dataclasses.replace(
        PRESETS["tron"].config, learning_starts=256, train_freq=32, gradient_steps=1, log_every=256
    )
    learner = DQN(env, config, seed=0, device="cpu")
    # The preset trains the network ACKTR and A2C train on Tron, its logits as Q-values.
    assert type(cast(ActorCriticQ, learner.q_net).actor_critic).__name__ == "TronNet"
    episodes: list[float] = []
    learner.learn(1_024, callback=lambda lrn, m: episodes.append(m.get("charts/episodes", 0)))
    assert learner.num_gradient_steps == (1_024 - 256) // 32 + 1
    assert sum(episodes) > 0
    obs, _ = env.reset(seed=1)
    actions = learner.predict(obs)
    assert actions.shape == (4,) and set(actions.tolist()) <= {0, 1, 2, 3}


def test_train_run_dir__checkpoints_logs_and_resume(tmp_path: Path) -> None:
    from acktr.training import read_progress, train

    overrides = {
        "learning_starts": "200",
        "train_freq": "16",
        "gradient_steps": "4",
        "log_every": "250",
    }
    learner = DQN.for_env("CartPole-v1", seed=5, device="cpu", overrides=overrides)
    assert learner.describe()["preset"] == "classic" and learner.config.learning_starts == 200
    run = tmp_path / "run"
    train(learner, 1_000, run, checkpoint_every=500, progress_bar=False, tensorboard=False)
    rows, fields = read_progress(run / "progress.csv")
    assert [int(r["step"]) for r in rows] == [250, 500, 750, 1_000]
    assert {"losses/td_loss", "charts/epsilon", "charts/episodic_return"} <= set(fields)
    resumed = DQN.load(run, env=make_vec_env("CartPole-v1", 1), device="cpu")
    assert resumed.num_timesteps == 1_000 and resumed.env_id == "CartPole-v1"
    train(
        resumed,
        1_500,
        run,
        checkpoint_every=500,
        resumed=True,
        progress_bar=False,
        tensorboard=False,
    )
    rows, _ = read_progress(run / "progress.csv")
    assert [int(r["step"]) for r in rows] == [250, 500, 750, 1_000, 1_250, 1_500]
    assert load_learner(run).num_timesteps == 1_500
