"""A3C: learning on CartPole, real concurrent workers, shared RMSprop, shutdown on every path."""

from __future__ import annotations

import copy
import dataclasses
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from acktr.envs import make_vec_env
from acktr.training import load_learner
from agents.a3c import (
    A3C,
    PRESETS,
    A3CConfig,
    A3CWorkerError,
    MakeVecEnv,
    SharedRMSprop,
    a3c_loss,
    load_policy,
)

CLASSIC = PRESETS["classic"].config
REPO = Path(__file__).resolve().parents[2]


def greedy_return(predict: Any, episodes: int = 10, seed: int = 10_000) -> float:
    """Mean return of the greedy policy on CartPole-v1 over fixed seeds."""
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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_no_workers_left(learner: A3C) -> None:
    assert multiprocessing.active_children() == []
    assert len(learner.worker_pids) == learner.config.num_workers
    assert not any(alive(pid) for pid in learner.worker_pids)


def test_a3c_cartpole__reaches_475_within_100k_steps() -> None:
    # Budget: 100k env steps of the classic preset (2 workers x 4 envs, t_max 5, lr 3e-3 annealed
    # to 0 at 100k). Every 5k steps a snapshot of the global network plays 20 fixed-seed episodes
    # greedily; training stops once one averages >= 475 (30k-60k steps, 10-20 s on 2 cores, in our
    # runs). The workers keep pushing while the callback runs, hence the snapshot; and they
    # interleave as the machine schedules them, so runs differ from one another.
    config = dataclasses.replace(CLASSIC, log_every=5_000)
    learner = A3C(MakeVecEnv("CartPole-v1", config.envs_per_worker), config, seed=0)
    solved: list[float] = []

    def evaluate(lrn: Any, metrics: Mapping[str, float]) -> bool:
        snapshot = copy.deepcopy(lrn.model)
        score = greedy_return(lambda obs: greedy(snapshot, obs), episodes=20)
        if score >= 475:
            solved.append(score)
            return False
        return True

    learner.learn(100_000, callback=evaluate)
    assert solved, f"greedy return {greedy_return(learner.predict)} after 100k steps"
    assert learner.num_timesteps <= 100_000 + 2 * 4 * 5
    assert_no_workers_left(learner)


def greedy(model: torch.nn.Module, obs: np.ndarray) -> int:
    with torch.no_grad():
        logits, _ = model(torch.as_tensor(obs[None]))
    return int(logits.argmax())


def test_workers__update_the_shared_network_concurrently() -> None:
    config = dataclasses.replace(CLASSIC, envs_per_worker=1, log_every=2_000)
    learner = A3C(MakeVecEnv("CartPole-v1", 1), config, seed=0)
    before = [p.detach().clone() for p in learner.model.parameters()]
    learner.learn(10_000)
    stats = learner.worker_stats
    updates = [s["updates"] for s in stats]
    # Both workers pushed updates, each worth t_max steps of its one env.
    assert len(stats) == 2 and all(u > 0 for u in updates)
    assert learner.num_updates == sum(updates)
    assert learner.num_timesteps == 5 * sum(updates) >= 10_000
    # Other workers changed the global parameters between a worker's pull and its push.
    assert all(s["stale"] > 0 for s in stats)
    assert len(set(learner.worker_pids)) == 2 and os.getpid() not in learner.worker_pids
    # The global network and the shared RMSprop statistics, written by the workers, are here.
    assert not any(
        torch.equal(a, b) for a, b in zip(before, learner.model.parameters(), strict=True)
    )
    for p in learner.model.parameters():
        square_avg = learner.optimizer.state[p]["square_avg"]
        assert p.is_shared() and square_avg.is_shared() and square_avg.sum() > 0
    assert_no_workers_left(learner)


def test_shared_rmsprop__hand_computed_step() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = SharedRMSprop([p], lr=0.01, alpha=0.9, eps=0.1).share_memory()
    assert opt.state[p]["square_avg"].is_shared()
    p.grad = torch.tensor([0.5, -1.0])
    opt.step()
    # g = 0.1 * grad^2 = (0.025, 0.1); p -= lr * grad / sqrt(g + eps)
    expected = [1.0 - 0.01 * 0.5 / np.sqrt(0.125), 2.0 + 0.01 * 1.0 / np.sqrt(0.2)]
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(opt.state[p]["square_avg"].numpy(), [0.025, 0.1], rtol=1e-6)


class Exploding(gym.vector.VectorWrapper):
    """Raises from ``step`` after ``after`` steps."""

    def __init__(self, env: gym.vector.VectorEnv, after: int) -> None:
        super().__init__(env)
        self.after = after

    def step(self, actions: Any) -> Any:
        self.after -= 1
        if self.after < 0:
            raise RuntimeError("boom in worker 1")
        return self.env.step(actions)


def exploding_in_worker_1(worker: int) -> gym.vector.VectorEnv:
    env = make_vec_env("CartPole-v1", 1)
    return Exploding(env, after=200) if worker == 1 else env


def test_worker_error__reaches_the_caller_and_stops_the_others() -> None:
    learner = A3C(exploding_in_worker_1, dataclasses.replace(CLASSIC, envs_per_worker=1))
    with pytest.raises(A3CWorkerError, match="worker 1 failed") as error:
        learner.learn(10**9)
    assert "RuntimeError: boom in worker 1" in str(error.value)
    assert_no_workers_left(learner)


def test_callback_false__stops_the_workers() -> None:
    config = dataclasses.replace(CLASSIC, log_every=1_000)
    learner = A3C(MakeVecEnv("CartPole-v1", 4), config)
    calls: list[int] = []

    def stop(lrn: Any, metrics: Mapping[str, float]) -> bool:
        calls.append(lrn.num_timesteps)
        return False

    learner.learn(10**9, callback=stop)
    assert len(calls) == 1 and 1_000 <= learner.num_timesteps < 10**9
    assert_no_workers_left(learner)


CTRL_C_SCRIPT = """
import dataclasses, multiprocessing
from agents.a3c import A3C, PRESETS, MakeVecEnv

config = dataclasses.replace(PRESETS["classic"].config, log_every=1_000)
learner = A3C(MakeVecEnv("CartPole-v1", 4), config)
def report(lrn, metrics):
    print("PIDS", *lrn.worker_pids, flush=True)
try:
    learner.learn(10**9, callback=report)
finally:
    print("CHILDREN", len(multiprocessing.active_children()), flush=True)
"""


def test_ctrl_c__stops_every_worker_and_interrupts_the_caller() -> None:
    # Its own session, so that the SIGINT goes to the trainer and its workers, as Ctrl-C in a
    # terminal does, and not to pytest.
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PIDS"), line + proc.communicate(timeout=60)[1]
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert "CHILDREN 0" in out
    assert not any(alive(pid) for pid in pids)


def gone(pid: int) -> bool:
    """The process has exited (a zombie that its new parent has not reaped yet counts)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" in next(
            line for line in status.read_text().splitlines() if line.startswith("State")
        )
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_parent_killed__workers_exit_by_themselves() -> None:
    # kill -9 gives the parent no chance to stop its workers: they notice it is gone and exit.
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PIDS"), line + proc.communicate(timeout=60)[1]
        pids = [int(p) for p in line.split()[1:]]
        proc.kill()
        proc.communicate(timeout=60)
        # A liveness bound, not a speed figure: a worker checks its parent once per update.
        deadline = time.monotonic() + 60
        while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(gone(pid) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_save_load__round_trip_and_resume(tmp_path: Path) -> None:
    config = dataclasses.replace(CLASSIC, log_every=1_000)
    learner = A3C(MakeVecEnv("CartPole-v1", 4), config, seed=2)
    learner.learn(3_000)
    path = tmp_path / "a3c.pt"
    learner.save(path)
    loaded = A3C.load(path)
    assert loaded.num_timesteps == learner.num_timesteps and loaded.config == learner.config
    assert loaded.num_updates == learner.num_updates > 0
    a, b = learner.model.state_dict(), loaded.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for p, q in zip(learner.model.parameters(), loaded.model.parameters(), strict=True):
        assert torch.equal(
            learner.optimizer.state[p]["square_avg"], loaded.optimizer.state[q]["square_avg"]
        )
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), learner.predict(obs))
    np.testing.assert_array_equal(load_policy(path)(obs), learner.predict(obs))
    assert type(load_learner(path)) is A3C
    # Resume: the workers rebuild CartPole-v1 from the checkpoint's env id.
    loaded.learn(loaded.num_timesteps + 2_000)
    assert loaded.num_timesteps >= learner.num_timesteps + 2_000
    assert loaded.num_updates > learner.num_updates
    assert_no_workers_left(loaded)


def tron_env(worker: int) -> gym.vector.VectorEnv:
    from tron.env import RandomPolicy, TronVectorEnv

    return TronVectorEnv(4, opponents=RandomPolicy(), episode_stats=False)


def test_tron__trains_against_given_opponents() -> None:
    config = dataclasses.replace(PRESETS["tron"].config, log_every=500)
    learner = A3C(tron_env, config, seed=0)
    assert type(learner.model).__name__ == "TronNet"  # the network ACKTR and A2C train on Tron
    episodes: list[float] = []
    learner.learn(2_000, callback=lambda lrn, m: episodes.append(m.get("charts/episodes", 0)))
    assert learner.num_updates > 0 and sum(episodes) > 0
    obs, _ = tron_env(0).reset(seed=0)
    assert set(learner.predict(obs).tolist()) <= {0, 1, 2, 3}
    assert_no_workers_left(learner)


def test_spawn__workers_start_from_a_fresh_interpreter() -> None:
    config = dataclasses.replace(CLASSIC, start_method="spawn", log_every=1_000)
    learner = A3C(MakeVecEnv("CartPole-v1", 4), config, seed=0)
    before = [p.detach().clone() for p in learner.model.parameters()]
    learner.learn(2_000)
    assert all(s["updates"] > 0 for s in learner.worker_stats)
    assert not all(
        torch.equal(a, b) for a, b in zip(before, learner.model.parameters(), strict=True)
    )
    assert_no_workers_left(learner)


def test_config__clear_errors() -> None:
    with pytest.raises(ValueError, match="runs on the CPU"):
        A3C(MakeVecEnv("CartPole-v1", 1), device="cuda")
    with pytest.raises(ValueError, match="num_workers must be >= 1"):
        A3C(MakeVecEnv("CartPole-v1", 1), A3CConfig(num_workers=0))


def test_train_run_dir__checkpoints_while_workers_run(tmp_path: Path) -> None:
    from acktr.training import read_progress, train

    learner = A3C.for_env("CartPole-v1", num_envs=2, overrides={"log_every": "1000"})
    assert learner.config.num_workers == 2 and learner.env_id == "CartPole-v1"
    run = tmp_path / "run"
    saved: list[int] = []
    original_save = learner.save

    def save(path: Any) -> None:
        saved.append(learner.num_timesteps)
        original_save(path)

    learner.save = save  # type: ignore[method-assign]
    train(learner, 4_000, run, checkpoint_every=2_000, progress_bar=False, tensorboard=False)
    rows, fields = read_progress(run / "progress.csv")
    assert len(rows) >= 4 and {"losses/policy_loss", "a3c/stale_fraction"} <= set(fields)
    # Checkpoints during the run (workers still pushing) and at the end.
    assert len(saved) >= 2 and saved[-1] >= 4_000
    resumed = A3C.load(run)
    assert resumed.num_timesteps == learner.num_timesteps
    train(
        resumed,
        6_000,
        run,
        checkpoint_every=2_000,
        resumed=True,
        progress_bar=False,
        tensorboard=False,
    )
    assert load_learner(run).num_timesteps >= 6_000
    assert_no_workers_left(resumed)


def test_loss__sum_accumulates_what_mean_averages_by_hand() -> None:
    log_prob = torch.tensor([-0.5, -1.0, -2.0])
    entropy = torch.tensor([1.0, 0.5, 0.25])
    values = torch.tensor([0.0, 1.0, 2.0])
    advantages = torch.tensor([1.0, -1.0, 2.0])
    returns = torch.tensor([1.0, 0.0, 4.0])
    config = A3CConfig(vf_coef=0.5, ent_coef=0.01, loss_reduction="sum")
    loss, policy, value, ent = a3c_loss(log_prob, entropy, values, advantages, returns, config)
    # policy: -(1 * -0.5) - (-1 * -1) - (2 * -2) = 0.5 - 1 + 4; value: (1 + 1 + 4) / 2.
    assert policy.item() == pytest.approx(3.5) and value.item() == pytest.approx(3.0)
    assert ent.item() == pytest.approx(1.75)
    assert loss.item() == pytest.approx(3.5 + 0.5 * 3.0 - 0.01 * 1.75)
    mean = a3c_loss(
        log_prob, entropy, values, advantages, returns, A3CConfig(vf_coef=0.5, ent_coef=0.01)
    )
    assert [t.item() for t in mean] == pytest.approx(
        [t.item() / 3 for t in (loss, policy, value, ent)]
    )
    # The Atari preset takes the paper's accumulated gradients (its eps 0.1 is under the root).
    assert PRESETS["atari"].config.loss_reduction == "sum"
    assert PRESETS["atari"].config.rms_eps == 0.1
    assert PRESETS["classic"].config.loss_reduction == "mean"


def test_loss_reduction_sum__trains_and_logs_per_sample_means() -> None:
    config = dataclasses.replace(CLASSIC, loss_reduction="sum", max_grad_norm=None, log_every=500)
    learner = A3C(MakeVecEnv("CartPole-v1", 4), config, seed=0)
    rows: list[dict[str, float]] = []
    learner.learn(2_000, callback=lambda lrn, m: rows.append(dict(m)))
    entropies = [r["losses/entropy"] for r in rows if "losses/entropy" in r]
    # Two actions: a per-sample entropy lies in [0, ln 2], a sum over 20 samples would not.
    assert entropies and all(0.0 <= e <= math.log(2) + 1e-6 for e in entropies)
    assert_no_workers_left(learner)
