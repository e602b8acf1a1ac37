"""ACKTR and A2C: returns and advantages by hand, NEXT_STEP autoreset, the true Fisher, schedules,
determinism, and learning (CartPole-v1, InvertedPendulum-v5)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Iterator, Mapping

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from acktr.acktr import (
    A2C,
    ACKTR,
    ActorCriticConfig,
    Rollout,
    compute_advantages,
    fisher_subbatch,
)
from acktr.envs import make_vec_env
from acktr.kfac import KFAC
from acktr.training import evaluate


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Small networks run far slower with 2 intra-op threads on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def params_of(learner: ACKTR | A2C) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.model.parameters()]


# -- returns and advantages, by hand -----------------------------------------------------------

REWARDS = np.array([1.0, 2.0, 3.0, 4.0])
VALUES = np.array([0.5, 1.0, 1.5, 2.0, 8.0])  # v_0..v_3 and the bootstrap v_4
NO = np.zeros(4, dtype=bool)
AT_1 = np.array([False, True, False, False])


def column(x: np.ndarray) -> np.ndarray:
    return x[:, None]


@pytest.mark.parametrize(
    ("terminated", "truncated", "expected_returns"),
    [
        # R3 = 4 + .5*8 = 8, R2 = 3 + .5*8 = 7, R1 = 2 + .5*7 = 5.5, R0 = 1 + .5*5.5 = 3.75
        (NO, NO, [3.75, 5.5, 7.0, 8.0]),
        # terminal at t=1: R1 = 2, no bootstrap; R0 = 1 + .5*2 (R2 is the reset step's, unused)
        (AT_1, NO, [2.0, 2.0, 7.0, 8.0]),
        # truncated at t=1: R1 = 2 + .5*v2, v2 being the value of the final observation
        (NO, AT_1, [2.375, 2.75, 7.0, 8.0]),
    ],
)
def test_compute_advantages__nstep_returns_by_hand(
    terminated: np.ndarray, truncated: np.ndarray, expected_returns: list[float]
) -> None:
    advantages, returns = compute_advantages(
        column(REWARDS), column(VALUES), column(terminated), column(truncated), 0.5, 1.0
    )
    np.testing.assert_allclose(returns[:, 0], expected_returns)
    np.testing.assert_allclose(advantages[:, 0], np.array(expected_returns) - VALUES[:4])


@pytest.mark.parametrize(
    ("terminated", "truncated", "expected_advantages"),
    [
        # deltas 1, 1.75, 2.5, 6; A_t = delta_t + .25 A_{t+1}
        (NO, NO, [1.6875, 2.75, 4.0, 6.0]),
        # terminal at 1: delta_1 = 2 - 1 = 1, A_1 = 1; A_0 = 1 + .25
        (AT_1, NO, [1.25, 1.0, 4.0, 6.0]),
        # truncated at 1: delta_1 = 2 + .5*1.5 - 1 = 1.75 bootstraps, but the trace is cut
        (NO, AT_1, [1.4375, 1.75, 4.0, 6.0]),
    ],
)
def test_compute_advantages__gae_by_hand(
    terminated: np.ndarray, truncated: np.ndarray, expected_advantages: list[float]
) -> None:
    advantages, returns = compute_advantages(
        column(REWARDS), column(VALUES), column(terminated), column(truncated), 0.5, 0.5
    )
    np.testing.assert_allclose(advantages[:, 0], expected_advantages)
    np.testing.assert_allclose(returns[:, 0], np.array(expected_advantages) + VALUES[:4])


def test_compute_advantages__envs_are_independent() -> None:
    rewards = np.stack([REWARDS, REWARDS], axis=1)
    values = np.stack([VALUES, VALUES], axis=1)
    terminated = np.stack([AT_1, NO], axis=1)
    _, returns = compute_advantages(
        rewards, values, terminated, np.zeros_like(terminated), 0.5, 1.0
    )
    np.testing.assert_allclose(returns[:, 0], [2.0, 2.0, 7.0, 8.0])
    np.testing.assert_allclose(returns[:, 1], [3.75, 5.5, 7.0, 8.0])


class Counter(gym.Env[np.ndarray, int]):
    """Observation: the step number in the episode; reward 1 per step; terminal after ``length``."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, object] | None = None
    ) -> tuple[np.ndarray, dict[str, object]]:
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, object]]:
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t >= self.length, False, {}


def test_rollout__reset_steps_masked_and_truncation_bootstraps_from_final_obs() -> None:
    # env 0 terminates after 3 steps; env 1 is cut by a time limit after 2.
    env = SyncVectorEnv([lambda: Counter(3), lambda: TimeLimit(Counter(100), 2)])
    config = ActorCriticConfig(layout="joint", n_steps=6, gamma=0.5, gae_lambda=1.0)
    learner = ACKTR(env, config, seed=0)
    learner.learn(0)  # resets the env, trains nothing
    batch = learner._rollout()

    valid = batch.valid.numpy()
    np.testing.assert_array_equal(valid[:, 0], [1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(valid[:, 1], [1, 1, 0, 1, 1, 0])
    obs = batch.obs[..., 0].numpy()
    # NEXT_STEP: the step after an episode's end acts on its final observation and resets.
    np.testing.assert_array_equal(obs[:, 0], [0, 1, 2, 3, 0, 1])
    np.testing.assert_array_equal(obs[:, 1], [0, 1, 2, 0, 1, 2])

    with torch.no_grad():
        v = learner.model(batch.obs.reshape(-1, 1))[1].reshape(6, 2).double().numpy()
        v_last = learner.model(torch.as_tensor(learner._obs))[1].double().numpy()
    returns = batch.returns.double().numpy()
    # env 0: terminal at t=2 (no bootstrap); the new episode bootstraps from the last obs.
    np.testing.assert_allclose(returns[2, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(returns[1, 0], 1.5, atol=1e-6)
    np.testing.assert_allclose(returns[0, 0], 1.75, atol=1e-6)
    np.testing.assert_allclose(returns[5, 0], 1 + 0.5 * v_last[0], atol=1e-6)
    np.testing.assert_allclose(returns[4, 0], 1 + 0.5 * returns[5, 0], atol=1e-6)
    # env 1: truncated at t=1 and t=4, bootstrapped from the final observations (t=2 and t=5).
    np.testing.assert_allclose(returns[1, 1], 1 + 0.5 * v[2, 1], atol=1e-6)
    np.testing.assert_allclose(returns[0, 1], 1 + 0.5 * returns[1, 1], atol=1e-6)
    np.testing.assert_allclose(returns[4, 1], 1 + 0.5 * v[5, 1], atol=1e-6)
    np.testing.assert_allclose(returns[3, 1], 1 + 0.5 * returns[4, 1], atol=1e-6)


# -- the update --------------------------------------------------------------------------------


def small_cartpole(cls: type[ACKTR] | type[A2C], seed: int = 0, **settings: str) -> ACKTR | A2C:
    return cls.for_env("CartPole-v1", seed=seed, num_envs=2, overrides={"n_steps": "5", **settings})


def test_acktr__fisher_ignores_the_training_targets() -> None:
    # The true Fisher samples from the model's own distributions: scaling the advantages and
    # returns changes the step, never the Kronecker factors.
    learner = small_cartpole(ACKTR)
    learner.learn(10)
    batch = learner._rollout()
    model_state = copy.deepcopy(learner.model.state_dict())
    optimizer = learner.optimizers["model"]
    optimizer_state = copy.deepcopy(optimizer.state_dict())

    def update(scale: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        learner.model.load_state_dict(model_state)
        optimizer.load_state_dict(copy.deepcopy(optimizer_state))
        torch.manual_seed(7)
        scaled = dataclasses.replace(
            batch, advantages=batch.advantages * scale, returns=batch.returns * scale
        )
        learner._update(scaled)
        weights = [layer.weight for layer in optimizer._layers]
        factors = [optimizer.state[w][k].clone() for w in weights for k in ("kfac_a", "kfac_s")]
        return factors, params_of(learner)

    factors_1, params_1 = update(1.0)
    factors_2, params_2 = update(-3.0)
    assert len(factors_1) == 2 * 6  # pi: 2 hidden + head, vf: 2 hidden + head
    for a, b in zip(factors_1, factors_2, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(params_1, params_2, strict=True))


@pytest.mark.parametrize(("cls", "lr"), [(ACKTR, 0.25), (A2C, 7e-4)])
def test_linear_lr_schedule_reaches_the_optimizer(cls: type[ACKTR] | type[A2C], lr: float) -> None:
    learner = small_cartpole(cls)
    seen: list[float] = []
    learner.learn(
        100, callback=lambda lrn, _: seen.append(lrn.optimizers["model"].param_groups[0]["lr"])
    )
    # 10 updates of 10 steps; the k-th starts at step 10k: lr * (1 - 10k / 100).
    np.testing.assert_allclose(seen, [lr * (1 - k / 10) for k in range(10)], rtol=1e-12)


@pytest.mark.parametrize(("cls", "lr"), [(ACKTR, 0.03), (A2C, 7e-4)])
@pytest.mark.parametrize(("desired_kl", "factor"), [("1e-12", 1 / 1.5), ("1e6", 1.5)])
def test_separate_layout__kl_adapts_the_policy_step_and_it_reaches_the_optimizer(
    cls: type[ACKTR] | type[A2C], lr: float, desired_kl: str, factor: float
) -> None:
    learner = cls.for_env(
        "InvertedPendulum-v5",
        seed=0,
        overrides={"n_steps": "64", "vf_iters": "2", "desired_kl": desired_kl, "cold_steps": "0"},
    )
    logged: list[float] = []
    used: list[float] = []

    def record(lrn: ACKTR | A2C, m: Mapping[str, float]) -> None:
        assert m["losses/policy_kl"] > 0
        logged.append(m["charts/learning_rate"])
        used.append(lrn.optimizers["pi"].param_groups[0]["lr"])

    learner.learn(3 * 64, callback=record)  # type: ignore[arg-type]
    expected = [lr, lr * factor, lr * factor**2]
    np.testing.assert_allclose(logged, expected, rtol=1e-12)
    np.testing.assert_allclose(used, expected, rtol=1e-12)  # the step the optimizer really took
    assert learner._pi_lr == pytest.approx(lr * factor**3)


def test_mujoco_preset__kl_settles_near_the_target() -> None:
    # The closed loop: from its first step size (far too small here) the adaptation brings the KL
    # of each update into [desired/4, 4 desired] and holds its median in [desired/2, 2 desired].
    # Early updates overshoot to ~5x: momentum (0.9) keeps pushing after the step size is cut.
    learner = ACKTR.for_env(
        "InvertedPendulum-v5", seed=0, overrides={"n_steps": "256", "vf_iters": "5"}
    )
    kls: list[float] = []
    learner.learn(20 * 256, callback=lambda _, m: kls.append(m["losses/policy_kl"]))
    desired = learner.config.desired_kl
    assert desired == 0.002
    assert kls[0] < desired / 20  # the loop had work to do
    settled = np.array(kls[12:])
    assert ((settled > desired / 4) & (settled < 4 * desired)).all(), settled
    assert desired / 2 <= np.median(settled) <= 2 * desired


def test_mujoco_preset__one_update_fits_the_critic() -> None:
    # K-FAC on the critic's unit-Gaussian loss is a Gauss-Newton step scaled by vf_lr. The
    # original's 0.001 moved the explained variance of this batch from 0.01 to 0.03 in one update
    # (25 iterations), so the critic lagged the returns by tens of updates on Hopper.
    learner = ACKTR.for_env("InvertedPendulum-v5", seed=0, overrides={"vf_cold_steps": "0"})
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(512, 1, 4, generator=g)
    returns = 10 * torch.tanh(obs @ torch.randn(4, generator=g)) + 5 * obs[..., 1] ** 2
    batch = Rollout(
        obs=obs,
        actions=torch.randn(512, 1, 1, generator=g),
        valid=torch.ones(512, 1, dtype=torch.bool),
        advantages=torch.randn(512, 1, generator=g),
        returns=returns,
    )
    metrics = learner._update(batch)
    assert metrics["losses/explained_variance"] < 0.05
    assert metrics["losses/explained_variance_after_fit"] > 0.5
    assert metrics["losses/value_nu"] < 1  # the value trust region, not vf_lr, set the step
    assert metrics["losses/policy_std"] == pytest.approx(1.0, abs=0.01)  # log-std starts at 0
    assert "losses/policy_nu" not in metrics  # the policy's first step is a cold one
    assert 0 < learner._update(batch)["losses/policy_nu"] <= 1


def test_stats_every__fisher_pass_on_every_kth_update_only() -> None:
    learner = small_cartpole(ACKTR, stats_every="2", conv_statistics_dtype="bfloat16")
    optimizer = learner.optimizers["model"]
    assert isinstance(optimizer, KFAC)
    weight = optimizer._layers[0].weight
    factors: list[torch.Tensor] = []
    learner.learn(50, callback=lambda *_: factors.append(optimizer.state[weight]["kfac_a"].clone()))
    # Five updates; after the first, the factors move at the third and the fifth only.
    changed = [not torch.equal(a, b) for a, b in itertools.pairwise(factors)]
    assert changed == [False, True, False, True]
    assert factors[0].dtype == torch.float32


def test_acktr_on_atari_preconditions_the_cnn() -> None:
    learner = ACKTR.for_env(
        "PongNoFrameskip-v4", seed=0, num_envs=2, overrides={"n_steps": "4", "cold_steps": "0"}
    )
    before = params_of(learner)
    learner.learn(16)
    optimizer = learner.optimizers["model"]
    shapes = [tuple(optimizer.state[layer.weight]["kfac_a"].shape) for layer in optimizer._layers]
    # conv 8x8x4 (+1), conv 4x4x32, conv 3x3x64, dense 32*7*7, policy and value heads on 512.
    assert shapes == [(257, 257), (513, 513), (577, 577), (1569, 1569), (513, 513), (513, 513)]
    after = params_of(learner)
    assert all(torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_same_seed_same_parameters() -> None:
    runs = []
    for seed in (3, 3, 4):
        learner = small_cartpole(ACKTR, seed=seed)
        learner.learn(50)
        runs.append(params_of(learner))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2], strict=True))


def test_predict__single_and_batched_observations_and_box_clipping() -> None:
    learner = ACKTR.for_env("InvertedPendulum-v5", seed=0, overrides={"n_steps": "16"})
    obs = np.zeros((5, 4), dtype=np.float64)
    assert learner.predict(obs).shape == (5, 1)
    assert learner.predict(obs[0]).shape == (1,)
    with torch.no_grad():
        learner.model.pi[1].log_std.fill_(3.0)  # std 20: samples far outside [-3, 3]
    sampled = learner.predict(np.zeros((200, 4)), deterministic=False)
    assert sampled.min() == -3.0 and sampled.max() == 3.0
    with pytest.raises(ValueError, match="this policy takes"):
        learner.predict(np.zeros((2, 6)))


def test_config_of_the_other_optimizer_is_refused() -> None:
    env = make_vec_env("CartPole-v1", 2)
    with pytest.raises(ValueError, match="use A2C"):
        ACKTR(env, ActorCriticConfig(optimizer="rmsprop"))


# -- it learns ---------------------------------------------------------------------------------


def test_acktr_learns_cartpole_in_100k_steps() -> None:
    # Two seeds of three must solve it (mean 475 of 500 over 10 greedy episodes). One seed alone
    # is a coin toss between CPUs: float rounding differs between an AMD and an Intel machine and
    # the runs diverge; seed 1 passed on one and scored 312 on the other.
    solved = []
    for seed in (0, 1, 2):
        learner = ACKTR.for_env("CartPole-v1", seed=seed)
        learner.learn(100_000)
        returns = evaluate(learner, make_vec_env("CartPole-v1", 5), 10, seed=123)
        solved.append(np.mean(returns) >= 475)
    assert sum(solved) >= 2, solved


def reaches(learner: ACKTR, target: float, budget: int) -> int | None:
    """The step at which the mean return of the last 10 episodes first reached ``target``."""
    hit: list[int] = []

    def stop(lrn: ACKTR, _: Mapping[str, float]) -> bool:
        recent = list(lrn._episodes.returns)[-10:]
        if len(recent) == 10 and np.mean(recent) >= target:
            hit.append(lrn.num_timesteps)
            return False
        return True

    learner.learn(budget, callback=stop)  # type: ignore[arg-type]
    return hit[0] if hit else None


def test_acktr_learns_inverted_pendulum_in_100k_steps() -> None:
    # The paper's MuJoCo setup with 1000-step batches instead of 2500 (more updates per step).
    learner = ACKTR.for_env("InvertedPendulum-v5", seed=0, overrides={"n_steps": "1000"})
    step = reaches(learner, 900.0, 100_000)
    assert step is not None and step <= 100_000


@pytest.mark.slow
def test_acktr_paper_mujoco_preset_learns_inverted_pendulum_in_200k_steps() -> None:
    learner = ACKTR.for_env("InvertedPendulum-v5", seed=0)
    step = reaches(learner, 900.0, 200_000)
    assert step is not None and step <= 200_000


def test_fisher_subbatch__every_kth_valid_example_counted_env_by_env() -> None:
    # obs[t, n] = 100 * n + t, so each example names its env and step.
    t_steps, n_envs = 4, 3
    obs = torch.tensor([[100.0 * n + t for n in range(n_envs)] for t in range(t_steps)])
    valid = torch.ones(t_steps, n_envs, dtype=torch.bool)
    valid[2, 1] = False  # a reset step of env 1
    # Env-major valid order: 0,1,2,3, 100,101,103, 200,201,202,203; every 3rd from the first.
    assert fisher_subbatch(obs, valid, 3).tolist() == [0.0, 3.0, 103.0, 202.0]
    # Stride 1: every valid example, in the time-major order of the loss.
    assert fisher_subbatch(obs, valid, 1).tolist() == obs[valid].tolist()


def test_fisher_subbatch__a_large_stride_still_spreads_over_the_envs() -> None:
    # The shape of Tron's ACKTR batch: 10 steps x 32 envs, 1/16 of it for the Fisher pass. A
    # time-major stride would take envs 0 and 16 only.
    t_steps, n_envs = 10, 32
    env_of = torch.arange(n_envs).repeat(t_steps, 1)
    step_of = torch.arange(t_steps).unsqueeze(1).repeat(1, n_envs)
    obs = torch.stack([env_of, step_of], dim=-1)
    picked = fisher_subbatch(obs, torch.ones(t_steps, n_envs, dtype=torch.bool), 16)
    assert len(picked) == 20
    assert len(set(picked[:, 0].tolist())) == 20
    assert set(picked[:, 1].tolist()) == {0, 2, 4, 6, 8}
