"""Self-play: the league's sampling rule, batched opponents, the training loop, resume, learning."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from acktr.envs import env_suite, make_vec_env
from acktr.training import read_checkpoint
from agents.base import Agent
from agents.neural import NeuralAgent, TronNet
from arena.match import play_match
from arena.selfplay import (
    League,
    LeagueConfig,
    LeaguePolicy,
    build_selfplay,
    find_league_env,
    parse_env_id,
    train_selfplay,
)
from tron.maps import parse_map
from tron.rules import TronBatch

OPEN6 = "6 6\n1     \n      \n      \n      \n      \n     2\n"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: the same seed gives the same run, and two threads on two shared cores
    mostly wait for each other (a 4-board convolution took 23 ms with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CountingAgent(Agent):
    """Always moves ``move``; records the game indices of every call."""

    def __init__(self, move: int) -> None:
        self.move = move
        self.calls: list[list[int]] = []
        self.resets: list[list[int]] = []

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        self.calls.append(games.tolist())
        return np.full(len(games), self.move, dtype=np.int8)

    def reset(self, games: NDArray[np.intp]) -> None:
        self.resets.append(games.tolist())


def _league(max_snapshots: int = 16) -> League:
    config = LeagueConfig(fixed=("random", "greedy"), gauntlet_every=0, max_snapshots=max_snapshots)
    return League(config, seed=0)


def test_league__without_snapshots_every_game_gets_a_fixed_member() -> None:
    league = _league()
    assert {m.name for m in league.sample(200)} == {"random", "greedy"}


def test_league__shares_of_latest_older_and_fixed() -> None:
    league = _league()
    weights = TronNet().state_dict()
    for step in (0, 10, 20):
        league.add_snapshot(f"snapshot@{step}", weights)
    drawn = [m.name for m in league.sample(8000)]
    latest = drawn.count("snapshot@20") / len(drawn)
    older = (drawn.count("snapshot@0") + drawn.count("snapshot@10")) / len(drawn)
    assert latest == pytest.approx(0.5, abs=0.02)
    assert older == pytest.approx(0.25, abs=0.02)
    assert 1 - latest - older == pytest.approx(0.25, abs=0.02)


def test_league__pfsp_prefers_the_opponents_the_learner_loses_to() -> None:
    league = _league()
    beaten, unbeaten = league.members
    beaten.score, unbeaten.score = 1.0, 0.0
    drawn = [m.name for m in league.sample(6000)]
    # Weights 0.05 and 1.05: the unbeaten member comes 21 times as often.
    ratio = drawn.count(unbeaten.name) / drawn.count(beaten.name)
    assert ratio == pytest.approx(21.0, rel=0.25)


def test_league__record_is_a_running_average() -> None:
    league = _league()
    member = league.members[0]
    league.record(member, 1.0)
    assert member.score == pytest.approx(0.5 + 0.02 * 0.5)
    league.record(member, 0.0)
    assert member.score == pytest.approx(0.51 - 0.02 * 0.51)
    assert member.games == 2


def test_league__oldest_snapshot_dropped_beyond_the_cap() -> None:
    league = _league(max_snapshots=2)
    weights = TronNet().state_dict()
    for step in range(4):
        league.add_snapshot(f"snapshot@{step}", weights)
    assert [m.name for m in league.snapshots] == ["snapshot@2", "snapshot@3"]


def test_league_policy__one_batched_call_per_opponent() -> None:
    league = _league()
    north, east = CountingAgent(0), CountingAgent(1)
    league.members[0].agent, league.members[1].agent = north, east
    policy = LeaguePolicy(league, 8)
    games = np.arange(8)
    policy.reset(games)
    assert north.resets == [list(range(8))] and east.resets == [list(range(8))]
    batch = TronBatch([parse_map(OPEN6, "open6")], 8)
    moves = policy.act(batch, 1, games)
    assert len(north.calls) == 1 and len(east.calls) == 1
    assert sorted(north.calls[0] + east.calls[0]) == list(range(8))
    for g in range(8):
        assert moves[g] == (0 if g in north.calls[0] else 1)
        member = policy.assigned[g]
        assert member is not None
        assert (member.agent is north) == (moves[g] == 0)


def test_env_id__maps_and_registered_suite(tmp_path: Path) -> None:
    assert [m.name for m in parse_env_id("tron:room10,cross")] == ["room10", "cross"]
    assert len(parse_env_id("tron")) > 1
    with pytest.raises(ValueError, match="is for 4 players"):
        parse_env_id("tron:room16-4p")
    assert env_suite("tron:room10") == "tron"
    env = make_vec_env("tron:room10", 3)
    assert find_league_env(env).league.members
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 10, 10) and obs.dtype == np.uint8


def test_selfplay__loop_runs_updates_league_grows_and_resumes(tmp_path: Path) -> None:
    league = LeagueConfig(
        fixed=("random",),
        snapshot_every=2,
        gauntlet=("random",),
        gauntlet_every=60,
        gauntlet_games=2,
        gauntlet_maps=("room10",),
    )
    overrides = {"n_steps": "5"}
    run = tmp_path / "run"
    learner = build_selfplay(
        "acktr", "tron:room10", num_envs=4, overrides=overrides, league=league, seed=1
    )
    assert [m.name for m in learner.league.snapshots] == ["snapshot@0"]
    train_selfplay(learner, 120, run, checkpoint_every=40, progress_bar=False, tensorboard=False)
    assert learner.num_timesteps == 120  # 6 updates of 4 envs x 5 steps
    names = [m.name for m in learner.league.snapshots]
    assert names == ["snapshot@0", "snapshot@40", "snapshot@80", "snapshot@120"]
    with open(run / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [20, 40, 60, 80, 100, 120]
    assert [r["league/snapshots"] for r in rows] == ["1", "2", "2", "3", "3", "4"]
    assert [bool(r["gauntlet/random"]) for r in rows] == [False, False, True, False, False, True]
    assert (run / "checkpoint.pt").exists() and (run / "league.pt").exists()

    resumed = build_selfplay("acktr", "tron:room10", run_dir=run, resume=True)
    assert resumed.num_timesteps == 120
    assert resumed.config == league  # the league's settings come back with it
    assert resumed.learner.env is not None and resumed.learner.env.num_envs == 4
    assert [m.name for m in resumed.league.snapshots] == names
    for key, value in learner.learner.model.state_dict().items():
        torch.testing.assert_close(resumed.learner.model.state_dict()[key], value)
    train_selfplay(
        resumed, 160, run, checkpoint_every=40, resumed=True, progress_bar=False, tensorboard=False
    )
    with open(run / "progress.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)][-3:] == [120, 140, 160]


def test_selfplay__a_short_acktr_run_beats_random_on_a_small_map(tmp_path: Path) -> None:
    game_map = tmp_path / "open6.txt"
    game_map.write_text(OPEN6)
    league = LeagueConfig(fixed=("random",), p_latest=0.0, p_older=0.0, gauntlet_every=0)
    # The first network (board planes, no move mask), whose untrained moves crash: the test is
    # that ACKTR learns from the rewards alone (a masked network beats random before training).
    overrides = {
        "n_steps": "5",
        "lr_schedule": "constant",
        "normalize_advantages": "true",
        "net.features": "board",
        "net.mask": "false",
    }
    learner = build_selfplay(
        "acktr", f"tron:{game_map}", num_envs=16, overrides=overrides, league=league, seed=1
    )
    untrained = TronNet.from_state_dict(learner.learner.model.state_dict())
    train_selfplay(learner, 18_000, tmp_path / "run", checkpoint_every=10**9, progress_bar=False,
                   tensorboard=False)  # fmt: skip
    trained = TronNet.from_state_dict(learner.learner.model.state_dict())
    maps = [parse_map(OPEN6, "open6")]
    before = play_match(NeuralAgent(untrained), "random", maps, 200, seed=1).score(0)
    after = play_match(NeuralAgent(trained), "random", maps, 200, seed=1).score(0)
    assert before < 0.1
    assert after > 0.55  # 0.6275 measured (random scores 0.5 against itself)


def test_selfplay__network_settings_are_recorded_and_kept_on_resume(tmp_path: Path) -> None:
    league = LeagueConfig(fixed=("random",), gauntlet_every=0)
    overrides = {"n_steps": "5", "net.features": "board"}
    learner = build_selfplay("acktr", "tron:room10", num_envs=2, overrides=overrides, league=league)
    model = learner.learner.model
    assert isinstance(model, TronNet) and (model.features, model.mask) == ("board", True)
    assert learner.describe()["network"]["features"] == "board"
    run = tmp_path / "run"
    train_selfplay(learner, 10, run, checkpoint_every=10, progress_bar=False, tensorboard=False)
    network = read_checkpoint(run / "checkpoint.pt").config["network"]
    assert (network["features"], network["mask"]) == ("board", True)
    # NetConfig's defaults (voronoi) do not apply to a resumed run: it keeps its own network.
    resumed = build_selfplay("acktr", "tron:room10", run_dir=run, resume=True)
    again = resumed.learner.model
    assert isinstance(again, TronNet) and (again.features, again.mask) == ("board", True)
    assert isinstance(resumed.league.snapshots[-1].agent, NeuralAgent)
    assert resumed.league.snapshots[-1].agent.net.features == "board"
    with pytest.raises(ValueError, match="bad value 'grid' for features"):
        build_selfplay("acktr", "tron:room10", num_envs=2, overrides={"net.features": "grid"})
