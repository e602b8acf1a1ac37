"""Training infrastructure: checkpoints (round trips, resume, bad files), logs, overrides, runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from gymnasium.vector import VectorEnv

from acktr.acktr import A2C, ACKTR, ActorCriticConfig
from acktr.envs import make_vec_env
from acktr.training import (
    CheckpointError,
    RunLogger,
    apply_overrides,
    load_learner,
    read_checkpoint,
    read_progress,
    resolve_device,
    train,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LEARNERS = {
    # (class, env id, num envs, overrides): the three layouts and both optimizers.
    "acktr-joint": (ACKTR, "CartPole-v1", 4, {"n_steps": "5"}),
    "a2c-joint": (A2C, "CartPole-v1", 4, {"n_steps": "5"}),
    "acktr-separate": (ACKTR, "InvertedPendulum-v5", 2, {"n_steps": "16", "vf_iters": "3"}),
}


def make(name: str) -> ACKTR | A2C:
    cls, env_id, n, overrides = LEARNERS[name]
    return cls.for_env(env_id, seed=5, num_envs=n, overrides=overrides)


def fresh_env(name: str) -> VectorEnv:
    _, env_id, n, _ = LEARNERS[name]
    return make_vec_env(env_id, n)


def assert_same_parameters(a: ACKTR | A2C, b: ACKTR | A2C) -> None:
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    learner = make(name)
    learner.learn(200)
    learner.save(tmp_path / "ckpt.pt")
    loaded = type(learner).load(tmp_path / "ckpt.pt")
    assert loaded.num_timesteps == learner.num_timesteps
    assert loaded.config == learner.config
    assert_same_parameters(learner, loaded)
    for key, opt in learner.optimizers.items():
        a, b = opt.state_dict()["state"], loaded.optimizers[key].state_dict()["state"]
        assert a.keys() == b.keys()
        for i in a:
            for k, v in a[i].items():
                assert torch.equal(v, b[i][k]), (key, i, k)
    obs = np.stack([learner.observation_space.sample() for _ in range(7)])
    np.testing.assert_array_equal(learner.predict(obs), loaded.predict(obs))
    # The file holds only state dicts, numbers and strings.
    raw = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert raw["format"] == "tron-lab/learner" and raw["algo"] == learner.algo


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_resumed_run_equals_the_run_that_went_on(name: str, tmp_path: Path) -> None:
    # A loaded learner starts fresh episodes (env state is not in a checkpoint); so does a live
    # one given a new env with set_env. From there both must take the same updates bit for bit:
    # parameters, optimizer and K-FAC state, RNG states, observation statistics, step size.
    live = make(name)
    live.learn(160)
    live.save(tmp_path / "ckpt.pt")
    live.set_env(fresh_env(name))
    live.learn(480)
    resumed = type(live).load(tmp_path / "ckpt.pt", env=fresh_env(name))
    resumed.learn(480)
    assert resumed.num_timesteps == live.num_timesteps
    assert_same_parameters(live, resumed)
    if live.obs_rms is not None:
        assert resumed.obs_rms is not None
        np.testing.assert_array_equal(live.obs_rms.mean, resumed.obs_rms.mean)
    assert resumed._pi_lr == live._pi_lr


def test_load_learner_dispatches_on_the_stored_algo(tmp_path: Path) -> None:
    make("a2c-joint").save(tmp_path / "a2c.pt")
    assert isinstance(load_learner(tmp_path / "a2c.pt"), A2C)
    with pytest.raises(CheckpointError, match="is a checkpoint of a2c, not acktr"):
        ACKTR.load(tmp_path / "a2c.pt")


class Foreign:
    """Stands for any pickled object in a file that is not ours."""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("truncated", "corrupted or truncated"),
        ("garbage", "corrupted or truncated"),
        ("pickle", "pickled Python objects"),
        ("state_dict", "not a tron-lab learner checkpoint"),
        ("future", "format version 99"),
    ],
)
def test_bad_checkpoint_files_get_a_clear_error(
    content: Literal["truncated", "garbage", "pickle", "state_dict", "future"],
    message: str,
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.pt"
    make("acktr-joint").save(good)
    bad = tmp_path / "bad.pt"
    if content == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif content == "garbage":
        bad.write_bytes(b"\x00not a checkpoint\xff" * 100)
    elif content == "pickle":
        torch.save({"model": Foreign()}, bad)
    elif content == "state_dict":
        torch.save(torch.nn.Linear(2, 2).state_dict(), bad)
    else:
        payload = torch.load(good, weights_only=True)
        torch.save({**payload, "version": 99}, bad)
    with pytest.raises(CheckpointError, match=message):
        ACKTR.load(bad)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        read_checkpoint(tmp_path)


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    learner = make("acktr-joint")
    path = tmp_path / "ckpt.pt"
    learner.save(path)
    before = path.read_bytes()

    def crash(obj: object, f: object) -> None:
        Path(str(f)).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    learner.learn(20)
    with pytest.raises(OSError, match="disk full"):
        learner.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_run_logger_widens_columns_and_drops_rows_past_a_resume(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path, tensorboard=False)
    logger.log(10, {"losses/value_loss": 1.0})
    logger.log(20, {"losses/value_loss": 2.0, "charts/episodic_return": 5.0})
    logger.log(30, {"losses/value_loss": 3.0})
    logger.close()
    rows, fields = read_progress(tmp_path / "progress.csv")
    assert fields == ["step", "losses/value_loss", "charts/episodic_return"]
    assert [r["charts/episodic_return"] for r in rows] == ["", "5", ""]

    resumed = RunLogger(tmp_path, resume_step=20, tensorboard=False)
    resumed.log(40, {"losses/value_loss": 4.0})
    resumed.close()
    rows, _ = read_progress(tmp_path / "progress.csv")
    assert [r["step"] for r in rows] == ["10", "20", "40"]


def test_train_writes_a_run_directory_and_checkpoints_on_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    learner = make("acktr-joint")  # 20 steps per update
    saved: list[int] = []
    original = ACKTR.save

    def spy(self: ACKTR, path: Path) -> None:
        saved.append(self.num_timesteps)
        original(self, path)

    monkeypatch.setattr(ACKTR, "save", spy)
    train(learner, 300, tmp_path, checkpoint_every=100, progress_bar=False)
    assert saved == [100, 200, 300, 300]
    assert {p.name for p in tmp_path.iterdir()} >= {"checkpoint.pt", "progress.csv", "run.json"}
    rows, fields = read_progress(tmp_path / "progress.csv")
    assert [int(r["step"]) for r in rows] == list(range(20, 301, 20))
    assert {"losses/value_loss", "losses/policy_loss", "charts/learning_rate"} <= set(fields)
    assert (tmp_path / "tb").is_dir()


def test_apply_overrides_parses_by_field_type() -> None:
    config = apply_overrides(
        ActorCriticConfig(),
        {
            "lr": "0.1",
            "n_steps": "7",
            "hidden": "128,32",
            "normalize_obs": "true",
            "desired_kl": "none",
            "max_grad_norm": "0.5",
            "layout": "separate",
        },
    )
    assert config == dataclasses.replace(
        ActorCriticConfig(),
        lr=0.1,
        n_steps=7,
        hidden=(128, 32),
        normalize_obs=True,
        desired_kl=None,
        max_grad_norm=0.5,
        layout="separate",
    )
    with pytest.raises(ValueError, match="unknown setting 'lrr'"):
        apply_overrides(ActorCriticConfig(), {"lrr": "1"})
    with pytest.raises(ValueError, match="bad value 'fast' for lr"):
        apply_overrides(ActorCriticConfig(), {"lr": "fast"})
    with pytest.raises(ValueError, match="expected one of shared, joint, separate"):
        apply_overrides(ActorCriticConfig(), {"layout": "split"})


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("algo", ["acktr", "dqn", "a3c"])
def test_restore__damaged_config_and_misfit_state_are_checkpoint_errors(
    algo: str, tmp_path: Path
) -> None:
    """``LearnerBase._restore`` turns both ways a readable file can be wrong into one error."""
    from acktr.acktr import ACKTR
    from acktr.training import CheckpointError, read_checkpoint, save_checkpoint
    from agents.a3c import A3C
    from agents.dqn import DQN

    cls = {"acktr": ACKTR, "dqn": DQN, "a3c": A3C}[algo]
    path = tmp_path / "checkpoint.pt"
    cls.for_env("CartPole-v1", num_envs=1).save(path)
    good = read_checkpoint(path)

    damaged = dict(good.config)
    del damaged["seed"]
    save_checkpoint(
        path, algo=algo, config=damaged, num_timesteps=good.num_timesteps, state=good.state
    )
    with pytest.raises(CheckpointError, match=f"damaged {algo} config"):
        cls.load(path)

    # A checkpoint of a wider network than its config describes.
    config = dict(good.config)
    config["config"] = {**good.config["config"], "hidden": [7, 7]}
    save_checkpoint(
        path, algo=algo, config=config, num_timesteps=good.num_timesteps, state=good.state
    )
    with pytest.raises(CheckpointError, match="state does not fit the network of its config"):
        cls.load(path)
