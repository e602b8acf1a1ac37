"""One rank of the data-parallel tests; ``tests/acktr/test_distributed.py`` starts it.

Usage (with torchrun's variables RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)::

    python tests/acktr/distributed_worker.py SCENARIO[,SCENARIO...] OUT_DIR

Scenarios, run in the order given (each writes ``OUT_DIR/SCENARIO-rank{RANK}.pt`` for the test to compare):

- ``updates``: two updates of ACKTR (a small CNN: conv and linear K-FAC factors, standardised
  advantages) and of A2C (global gradient-norm clip) on one fixed batch of ``ENVS`` envs, of which
  this rank takes its slice of envs. Reset steps are spread unevenly, so the ranks hold different
  numbers of samples. The Fisher pass's random targets are replaced by fixed functions of each
  example, so that one process and two ranks draw the same targets. Run with 1 and 2 ranks.
- ``identical``: real rollouts, different on each rank: ACKTR in the MuJoCo layout on Pendulum-v1
  (observation normalisation, KL-adaptive step size, two K-FAC optimizers) and Tron self-play
  (league), both checked to hold bitwise-identical parameters on every rank after every update;
  then a checkpoint (factors synchronised, rank 0 writes).
- ``dies``: rank 1 exits abruptly; rank 0 records the error of its next collective.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import nn
from torch.distributions import Categorical

from acktr.acktr import A2C, ACKTR, PRESETS, ActorCriticConfig, ActorCriticLearner, Rollout
from acktr.distributed import DistributedError, World, init_world
from acktr.envs import make_vec_env
from acktr.training import Learner

ENVS, STEPS, ACTIONS = 4, 5, 3
OBS_SHAPE = (2, 6, 6)
#: Reset steps (time, env): two in env 0's and 1's half, one in env 2's and 3's.
RESETS = ((0, 1), (3, 0), (2, 3))
TIMEOUT_S = 60.0


class SpacesOnly(VectorEnv[Any, Any, Any]):
    """A vector env that is never stepped: the learner needs only its spaces."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, OBS_SHAPE, dtype=np.float64)
        self.single_action_space = gym.spaces.Discrete(ACTIONS)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}


class SmallCNN(nn.Module):
    """Conv -> linear torso with policy and value heads (the contract of ``acktr.policies``)."""

    def __init__(self) -> None:
        super().__init__()
        self.torso = nn.Sequential(
            nn.Conv2d(OBS_SHAPE[0], 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 8), nn.Tanh()
        )
        self.pi = nn.Linear(8, ACTIONS)
        self.v = nn.Linear(8, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.torso(obs)
        return self.pi(h), self.v(h).squeeze(-1)


def fixed_batch(rank: int, size: int) -> Rollout:
    """This rank's envs of one fixed rollout of ``ENVS`` envs."""
    g = torch.Generator().manual_seed(0)
    valid = torch.ones(STEPS, ENVS, dtype=torch.bool)
    for t, env in RESETS:
        valid[t, env] = False
    full = Rollout(
        obs=torch.rand(STEPS, ENVS, *OBS_SHAPE, generator=g, dtype=torch.float64) * 2 - 1,
        actions=torch.randint(ACTIONS, (STEPS, ENVS), generator=g),
        valid=valid,
        advantages=torch.randn(STEPS, ENVS, generator=g, dtype=torch.float64),
        returns=torch.randn(STEPS, ENVS, generator=g, dtype=torch.float64),
    )
    part = slice(rank * ENVS // size, (rank + 1) * ENVS // size)
    return Rollout(*(getattr(full, f)[:, part] for f in Rollout.__dataclass_fields__))


@contextmanager
def fixed_fisher_targets() -> Iterator[None]:
    """The Fisher pass's targets as fixed functions of each example instead of random draws."""

    def mode(self: Categorical, sample_shape: Any = ()) -> torch.Tensor:
        return self.logits.argmax(-1)

    def noise(t: torch.Tensor, **_: Any) -> torch.Tensor:
        return torch.sin(1000.0 * t.detach())

    with (
        mock.patch.object(Categorical, "sample", mode),
        mock.patch.object(torch, "randn_like", noise),
    ):
        yield


def learner_state(learner: ActorCriticLearner) -> dict[str, Any]:
    """Parameters and optimizer states, as plain tensors."""
    return {
        "params": [p.detach().clone() for p in learner.model.parameters()],
        "optimizers": {
            name: {
                index: {k: v.clone() for k, v in state.items() if isinstance(v, torch.Tensor)}
                for index, state in opt.state_dict()["state"].items()
            }
            for name, opt in learner.optimizers.items()
        },
    }


def scenario_updates(world: World) -> dict[str, Any]:
    torch.set_default_dtype(torch.float64)
    configs: Mapping[str, tuple[type[ActorCriticLearner], ActorCriticConfig]] = {
        "acktr": (
            ACKTR,
            ActorCriticConfig(
                network="custom", normalize_advantages=True, inverse_every=1, stat_decay=0.9
            ),
        ),
        "a2c": (
            A2C,
            ActorCriticConfig(optimizer="rmsprop", network="custom", lr=0.01, max_grad_norm=0.05),
        ),
    }
    batch = fixed_batch(world.rank, world.size)
    out: dict[str, Any] = {}
    for name, (cls, config) in configs.items():
        env = SpacesOnly(ENVS // world.size)
        learner = cls(env, config, policy=lambda o, a: SmallCNN(), seed=0, device="cpu")
        if world.size > 1:
            learner.distribute(world)
        states = []
        with fixed_fisher_targets():
            for _ in range(2):
                metrics = learner._update(batch)
                states.append(learner_state(learner))
        out[name] = {"states": states, "metrics": metrics, "samples": int(batch.valid.sum())}
    torch.set_default_dtype(torch.float32)
    return out


def fingerprint(learner: ActorCriticLearner) -> torch.Tensor:
    """Everything that must agree across ranks after an update, as one float64 vector."""
    parts = [p.detach().double().reshape(-1) for p in learner.model.parameters()]
    if learner.obs_rms is not None:
        parts += [torch.from_numpy(learner.obs_rms.mean), torch.from_numpy(learner.obs_rms.var)]
    parts.append(torch.tensor([learner._pi_lr, learner._lr_now], dtype=torch.float64))
    return torch.cat(parts)


def check_identical(world: World, learner: Learner, inner: ActorCriticLearner) -> dict[str, Any]:
    """Train a few updates, comparing every rank's fingerprint to rank 0's after each."""
    differences: list[float] = []

    def compare(_: Learner, __: Mapping[str, float]) -> None:
        prints = world.all_gather(fingerprint(inner))
        differences.append(max(float((p - prints[0]).abs().max()) for p in prints))

    learner.learn(inner.num_timesteps + 3 * inner.config.n_steps * ENVS, callback=compare)
    last_obs = None if inner._obs is None else torch.as_tensor(inner._obs).clone()
    return {"differences": differences, "steps": learner.num_timesteps, "last_obs": last_obs}


def scenario_identical(world: World, out_dir: Path) -> dict[str, Any]:
    from arena.selfplay import LeagueConfig, build_selfplay

    config = dataclasses.replace(
        PRESETS[("acktr", "mujoco")].config,
        n_steps=16,
        vf_iters=3,
        vf_cold_steps=0,
        cold_steps=0,
        inverse_every=2,
    )
    pendulum = ACKTR(make_vec_env("Pendulum-v1", ENVS // world.size), config, seed=3, device="cpu")
    pendulum.distribute(world)
    out = {"pendulum": check_identical(world, pendulum, pendulum)}
    checkpoint = out_dir / f"pendulum-rank{world.rank}.pt"
    pendulum.save(checkpoint)
    out["pendulum"]["factors"] = [
        state[key].clone()
        for opt in pendulum.optimizers.values()
        for state in opt.state.values()
        for key in ("kfac_a", "kfac_s")
        if key in state
    ]
    out["pendulum"]["wrote_checkpoint"] = checkpoint.exists()

    league = LeagueConfig(fixed=("random", "greedy"), snapshot_every=1, gauntlet_every=0)
    selfplay = build_selfplay(
        "acktr",
        "tron:room10",
        num_envs=ENVS // world.size,
        overrides={"n_steps": "8"},
        league=league,
        seed=5,
        world=world,
    )
    out["selfplay"] = check_identical(world, typing.cast(Learner, selfplay), selfplay.learner)
    out["selfplay"]["league"] = [(m.name, m.score, m.games) for m in selfplay.league.members]
    return out


def scenario_dies(world: World) -> dict[str, Any]:
    world.all_reduce_sum_([torch.zeros(1)])
    if world.rank == 1:
        os._exit(1)
    start = time.monotonic()
    try:
        world.all_reduce_sum_([torch.zeros(1)])
    except DistributedError as e:
        return {"error": str(e), "seconds": time.monotonic() - start}
    return {"error": None}


def main() -> None:
    scenarios, out_dir = sys.argv[1].split(","), Path(sys.argv[2])
    torch.set_num_threads(1)
    world = init_world("cpu", TIMEOUT_S)
    for scenario in scenarios:
        if scenario == "updates":
            result = scenario_updates(world)
        elif scenario == "identical":
            result = scenario_identical(world, out_dir)
        else:
            result = scenario_dies(world)
        torch.save(result, out_dir / f"{scenario}-rank{world.rank}.pt")
    if "dies" in scenarios:
        # As `tron train` does (acktr.distributed.leave_lost_group): a group with a dead peer is
        # left without gloo's teardown, which can abort the process.
        os._exit(0)
    world.close()


if __name__ == "__main__":
    main()
