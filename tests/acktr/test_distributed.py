"""Data-parallel ACKTR and A2C on torch.distributed: gloo on 127.0.0.1, ranks spawned by the test.

The ranks run ``distributed_worker.py`` (see its docstring) with torchrun's environment variables:
one process with all the envs and two ranks with half each, on the same data. The two must take
the one-process step (K-FAC factors, inverses, momentum, parameters), hold bitwise-identical
states on both ranks after every update of real training, and stop with one clear line when a
rank dies. ``tron train --nprocs 2`` runs end to end and resumes with one process.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from acktr.distributed import EXIT_LOST_GROUP, LaunchError, World, _reported_status, rank_seed
from acktr.kfac import KFAC
from acktr.policies import build_actor_critic
from acktr.training import read_checkpoint
from arena.cli import main

WORKER = Path(__file__).with_name("distributed_worker.py")
HANG_GUARD_S = 600  # a run that deadlocks fails here instead of stalling CI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_rank(scenarios: str, rank: int, size: int, out: Path, port: int) -> subprocess.Popen[str]:
    """One rank of ``distributed_worker.py``, its output in ``out/rank{rank}.log`` (a file, so
    that a rank that writes a lot never blocks on a pipe nobody reads yet)."""
    env = {
        **os.environ,
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"rank{rank}.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, str(WORKER), scenarios, str(out)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def finish(proc: subprocess.Popen[str], out: Path, rank: int) -> tuple[int, str]:
    """The rank's exit status and output, once it has exited."""
    proc.wait(timeout=HANG_GUARD_S)
    return proc.returncode, (out / f"rank{rank}.log").read_text()


def run_ranks(scenarios: str, size: int, out: Path) -> list[tuple[int, str]]:
    """Start ``size`` ranks of ``distributed_worker.py``; their exit statuses and outputs."""
    port = free_port()
    procs = [start_rank(scenarios, rank, size, out, port) for rank in range(size)]
    return [finish(proc, out, rank) for rank, proc in enumerate(procs)]


def results(out: Path, scenario: str, ranks: range, done: list[tuple[int, str]]) -> list[Any]:
    for rank in ranks:
        assert (out / f"{scenario}-rank{rank}.pt").exists(), done
    return [torch.load(out / f"{scenario}-rank{r}.pt", weights_only=False) for r in ranks]


def flat_state(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = {f"param{i}": p for i, p in enumerate(state["params"])}
    for name, optimizer in state["optimizers"].items():
        for index, entries in optimizer.items():
            out.update({f"{name}.{index}.{key}": value for key, value in entries.items()})
    return out


def test_two_ranks_of_half_the_envs_take_the_step_of_one_process_with_all(tmp_path: Path) -> None:
    """ACKTR (factors, inverses, momentum, parameters) and A2C, two updates each."""
    alone = start_rank("updates", 0, 1, tmp_path / "one", free_port())  # beside the two ranks
    two = run_ranks("updates", 2, tmp_path / "two")
    one = finish(alone, tmp_path / "one", 0)
    [reference] = results(tmp_path / "one", "updates", range(1), [one])
    ranks = results(tmp_path / "two", "updates", range(2), two)
    for algo in ("acktr", "a2c"):
        one, both = reference[algo], [r[algo] for r in ranks]
        # Reset steps fall unevenly, so the ranks' averages must be weighted by their samples.
        assert (one["samples"], both[0]["samples"], both[1]["samples"]) == (17, 8, 9)
        for update in range(2):
            expected = flat_state(one["states"][update])
            states = [flat_state(r["states"][update]) for r in both]
            assert states[0].keys() == states[1].keys() == expected.keys()
            for key, value in expected.items():
                assert torch.equal(states[0][key], states[1][key]), f"{algo} {key}: ranks differ"
                torch.testing.assert_close(
                    states[0][key], value, rtol=1e-11, atol=1e-13, msg=f"{algo} {key}"
                )
        if algo == "acktr":  # the conv, the torso's linear and both heads
            names = set(flat_state(one["states"][1]))
            for key in ("kfac_a", "kfac_s", "kfac_a_inv", "kfac_s_inv", "momentum_buffer"):
                assert len([n for n in names if n.endswith(f".{key}")]) >= 4, key
        for key in ("losses/policy_loss", "losses/value_loss", "losses/entropy"):
            assert both[0]["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-12)
        # Pooled over the ranks' samples, not a mean of the ranks' own values.
        ev = "losses/explained_variance"
        assert both[0]["metrics"][ev] == pytest.approx(one["metrics"][ev], rel=1e-9, abs=1e-12)


def test_every_rank_holds_identical_parameters_after_every_update(tmp_path: Path) -> None:
    """Real rollouts, different on each rank: the MuJoCo layout on Pendulum-v1 and Tron
    self-play; then a checkpoint."""
    done = run_ranks("identical", 2, tmp_path)
    ranks = results(tmp_path, "identical", range(2), done)
    for run, n_steps in (("pendulum", 16), ("selfplay", 8)):
        rank0, rank1 = (r[run] for r in ranks)
        # 3 updates; parameters, observation normaliser and step sizes compared after each.
        assert rank0["differences"] == rank1["differences"] == [0.0, 0.0, 0.0], run
        assert rank0["steps"] == rank1["steps"] == 3 * n_steps * 4  # every rank's steps count
        assert not torch.equal(rank0["last_obs"], rank1["last_obs"])  # each rank its own envs

    # One league on both ranks.
    league0, league1 = (r["selfplay"]["league"] for r in ranks)
    assert league0 == league1
    assert [name for name, _, _ in league0][:3] == ["random", "greedy", "snapshot@0"]
    assert sum(games for _, _, games in league0) > 0

    # The checkpoint: factors averaged on every rank, the file written by rank 0 alone.
    rank0, rank1 = (r["pendulum"] for r in ranks)
    assert len(rank0["factors"]) == 12  # policy and value nets: 3 layers x (A, S) each
    assert all(torch.equal(a, b) for a, b in zip(rank0["factors"], rank1["factors"], strict=True))
    assert rank0["wrote_checkpoint"] and not rank1["wrote_checkpoint"]


def test_a_rank_that_dies__the_other_stops_with_one_clear_line(tmp_path: Path) -> None:
    done = run_ranks("dies", 2, tmp_path)
    assert done[1][0] == 1  # os._exit(1) after the first collective
    assert done[0][0] == 0, done[0][1]
    [report] = results(tmp_path, "dies", range(1), done)
    error = report["error"]
    assert error is not None and "\n" not in error
    assert error.startswith("rank 0 of 2: all_reduce failed (")
    assert error.endswith("another rank died or did not respond within 60 s (see its output)")


def test_tron_train_nprocs_2__rank_0_logs_and_checkpoints__resumes_in_one_process(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    argv = ["train", "acktr", "--env", "CartPole-v1", "--envs", "4", "--out", str(out)]
    argv += ["--checkpoint-every", "256", "--no-progress", "--no-tensorboard", "--threads", "1"]
    first = ["--steps", "512", "--nprocs", "2", "--set", "n_steps=32"]
    done = subprocess.run(
        [sys.executable, "-m", "arena", *argv, *first],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("acktr on CartPole-v1 (preset classic), 4 envs on 2 ranks") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "progress.csv", "run.json"]
    with open(out / "progress.csv", newline="") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [128, 256, 384, 512]
    info = json.loads((out / "run.json").read_text())
    assert (info["ranks"], info["num_envs"]) == (2, 4)
    checkpoint = read_checkpoint(out)
    assert checkpoint.num_timesteps == 512 and checkpoint.config["ranks"] == 2

    assert main([*argv, "--steps", "640", "--resume"]) == 0
    assert read_checkpoint(out).num_timesteps == 640
    with open(out / "progress.csv", newline="") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [128, 256, 384, 512, 640]
    assert json.loads((out / "run.json").read_text())["ranks"] == 1


def test_nprocs_with_a_learner_that_is_not_data_parallel_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "dqn", "--env", "CartPole-v1", "--steps", "100", "--nprocs", "2"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "tron train: error: dqn does not train data-parallel; --nprocs and torchrun work with "
        "acktr and a2c\n"
    )
    assert not (tmp_path / "run").exists()


# -- without processes ---------------------------------------------------------------------------


def test_single_process_world__collectives_leave_their_arguments_alone() -> None:
    world = World()
    t = torch.tensor([1.0, 2.0])
    world.all_reduce_mean_([t], weight=3.0)
    world.all_reduce_sum_([t])
    world.broadcast_([t], src=0)
    assert t.tolist() == [1.0, 2.0]
    assert world.all_gather_object("x") == ["x"] and world.broadcast_object(7) == 7
    assert world.is_main and world.size == 1


def test_rank_seed__rank_0_of_a_fresh_run_keeps_the_seed_and_the_others_differ() -> None:
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(7, r) for r in range(8)} | {rank_seed(7, r, 1000) for r in range(8)}
    assert len(seeds) == 16
    assert rank_seed(7, 3, 1000) == rank_seed(7, 3, 1000)


def test_inversions_are_shared_out_by_cost__atari_network() -> None:
    """The ACKTR Atari CNN: the first linear layer's A (1569 x 1569) costs 84 % of all the
    inversions, so with 2 ranks one rank inverts it alone and the other does all the rest."""
    import gymnasium as gym
    import numpy as np

    model = build_actor_critic(
        "acktr_cnn",
        gym.spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8),
        gym.spaces.Discrete(6),
        separate=False,
        hidden=(),
        activation="relu",
    )
    optimizer = KFAC(model)
    layers = optimizer._layers
    for layer in layers:
        out, d = layer.weight.shape[0], layer.weight[0].numel() + 1
        optimizer.state[layer.weight].update(kfac_a=torch.zeros(d, d), kfac_s=torch.zeros(out, out))
    dims = {
        (layer.name, f): optimizer.state[layer.weight][k].shape[0]
        for layer in layers
        for f, k in (("A", "kfac_a"), ("S", "kfac_s"))
    }
    optimizer._world = World(rank=0, size=2)
    owners = optimizer._inverse_owners(layers)
    cost = [0, 0]
    for (layer, factor), rank in owners.items():
        cost[rank] += dims[layer.name, factor] ** 3
    biggest = max(dims, key=lambda k: dims[k])
    assert dims[biggest] == 1569
    assert [task for task, rank in owners.items() if rank == 0] == [
        (next(x for x in layers if x.name == biggest[0]), "A")
    ]
    total = sum(d**3 for d in dims.values())
    assert cost[0] / total == pytest.approx(0.84, abs=0.01)
    optimizer._world = World(rank=0, size=1)
    assert set(optimizer._inverse_owners(layers).values()) == {0}


class _Failure:
    def __init__(self, exitcode: int, timestamp: int, pid: int = 100) -> None:
        self.exitcode, self.timestamp, self.pid = exitcode, timestamp, pid


def test_launch_failures__the_killed_rank_is_named_and_self_reported_statuses_pass() -> None:
    killed = {0: _Failure(-int(signal.SIGTERM), 2), 1: _Failure(-int(signal.SIGKILL), 2, 42)}
    with pytest.raises(LaunchError, match=r"^rank 1 \(pid 42\) was killed by SIGKILL; the other"):
        _reported_status(killed)
    crashed = {1: _Failure(1, 1, 42), 0: _Failure(3, 0)}
    with pytest.raises(LaunchError, match=r"^rank 1 \(pid 42\) exited with status 1;"):
        _reported_status(crashed)
    assert _reported_status({0: _Failure(2, 0), 1: _Failure(-int(signal.SIGTERM), 1)}) == 2
    assert _reported_status({0: _Failure(130, 0)}) == 130


class _TwoRanks(World):
    """Rank 0 of a 2-rank world whose other rank's contributions to a sum are given."""

    def __init__(self, other: torch.Tensor) -> None:
        super().__init__(rank=0, size=2)
        object.__setattr__(self, "other", other)

    def all_reduce_sum_(self, tensors: Any) -> None:
        tensors[0].add_(self.other)  # type: ignore[attr-defined]


@pytest.fixture
def league() -> Iterator[Any]:
    from arena.selfplay import League, LeagueConfig

    yield League(LeagueConfig(fixed=("random", "greedy"), gauntlet_every=0))


def test_league_synchronize__running_scores_add_the_ranks_changes(league: Any) -> None:
    random, greedy = league.members
    league.record(random, 1.0)  # 0.5 + 0.02 * 0.5 = 0.51
    other = torch.tensor([[0.02, 2.0], [-0.3, 1.0]], dtype=torch.float64)  # the other rank's
    league.synchronize(_TwoRanks(other))
    assert (random.score, random.games) == (pytest.approx(0.53), 3)
    assert (greedy.score, greedy.games) == (pytest.approx(0.2), 1)
    league.record(greedy, 0.0)  # 0.2 - 0.02 * 0.2 = 0.196
    league.synchronize(_TwoRanks(torch.tensor([[0.0, 0.0], [-0.9, 5.0]], dtype=torch.float64)))
    assert (greedy.score, greedy.games) == (0.0, 7)  # clipped at 0
    assert random.score == pytest.approx(0.53)


def test_leave_lost_group__one_line_and_the_lost_group_status() -> None:
    code = (
        "from acktr.distributed import leave_lost_group; leave_lost_group('tron train: error: x')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == EXIT_LOST_GROUP
    assert done.stderr.strip().splitlines() == ["tron train: error: x"]
