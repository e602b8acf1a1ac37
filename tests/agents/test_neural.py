"""The Tron network and NeuralAgent: shapes, batched play, determinism, checkpoint specs, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import neural
from agents.neural import NeuralAgent, TronNet, load_network, tron_policy
from agents.registry import SpecError, make_agent
from arena.match import play_match
from tron.maps import get_map
from tron.observe import Category, Encoder
from tron.rules import Direction, TronBatch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: two threads on two shared cores mostly wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(seed: int = 0) -> TronNet:
    torch.manual_seed(seed)
    return TronNet()


def test_tron_net__outputs_for_any_board_size() -> None:
    net = _net()
    for side in (6, 15, 25):
        obs = torch.zeros((3, side, side), dtype=torch.uint8)
        obs[:, 1, 1] = Category.OWN_HEAD
        obs[:, side - 2, side - 2] = Category.OPPONENT_HEAD
        logits, value = net(obs)
        assert logits.shape == (3, 4)
        assert value.shape == (3,)
        assert torch.isfinite(logits).all() and torch.isfinite(value).all()


def test_tron_net__state_dict_round_trip_keeps_the_outputs() -> None:
    net = _net()
    obs = torch.randint(0, 6, (5, 12, 9), dtype=torch.uint8)
    copy = TronNet.from_state_dict(net.state_dict())
    assert copy.dilations == net.dilations
    torch.testing.assert_close(copy(obs), net(obs))


def test_tron_net__voronoi_masked_round_trip_and_description() -> None:
    torch.manual_seed(2)
    net = TronNet(features="voronoi", mask=True)
    obs = torch.randint(0, 6, (5, 12, 9), dtype=torch.uint8)
    obs[:, 3, 3], obs[:, 8, 6] = Category.OWN_HEAD, Category.OPPONENT_HEAD
    copy = TronNet.from_state_dict(net.state_dict())
    assert (copy.features, copy.mask) == ("voronoi", True)
    torch.testing.assert_close(copy(obs), net(obs))
    assert net.describe() == {
        "network": "TronNet",
        "channels": [32, 32, 32, 32],
        "dilations": [1, 1, 1, 2],
        "hidden": 128,
        "features": "voronoi",
        "mask": True,
        "parameters": 52_965,
    }
    # New self-play networks are this one: the policy factory's defaults.
    default = tron_policy(gym.spaces.Box(0, 5, (10, 10), np.uint8), gym.spaces.Discrete(4))
    assert (default.features, default.mask) == ("voronoi", True)


def test_tron_net__weights_saved_before_the_feature_buffers_load_as_the_first_encoding() -> None:
    # The first shipped agent's state dict has no feature_set / move_mask entries.
    net = _net(4)
    old = {k: v for k, v in net.state_dict().items() if k not in ("feature_set", "move_mask")}
    assert len(old) == len(net.state_dict()) - 2
    loaded = TronNet.from_state_dict(old)
    assert (loaded.features, loaded.mask) == ("board", False)
    obs = torch.randint(0, 6, (4, 10, 10), dtype=torch.uint8)
    torch.testing.assert_close(loaded(obs), net(obs))


def test_tron_net__first_policy_is_near_uniform() -> None:
    # The policy head starts at gain 0.01, so the first moves are explored evenly.
    obs = torch.randint(0, 6, (8, 10, 10), dtype=torch.uint8)
    probs = torch.softmax(_net()(obs)[0], dim=1)
    assert torch.allclose(probs, torch.full_like(probs, 0.25), atol=0.02)


def test_tron_policy__refuses_other_spaces() -> None:
    board = gym.spaces.Box(0, 5, (10, 10), np.uint8)
    assert isinstance(tron_policy(board, gym.spaces.Discrete(4)), TronNet)
    with pytest.raises(ValueError, match="Discrete\\(4\\)"):
        tron_policy(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6))


def test_neural_agent__batched_moves_equal_one_game_at_a_time() -> None:
    maps = [get_map("room15"), get_map("cross")]
    batch = TronBatch(maps, 6)
    batch.reset(np.arange(6), map_index=np.array([0, 1, 0, 1, 0, 1]))
    rng = np.random.default_rng(3)
    for _ in range(4):  # a few random turns so the games differ
        batch.step(rng.integers(0, 4, size=(6, 2)))
    running = np.flatnonzero(~batch.done & batch.alive[:, 1])
    agent = NeuralAgent(_net())
    together = agent.act(batch, 1, running)
    alone = np.concatenate([agent.act(batch, 1, running[i : i + 1]) for i in range(running.size)])
    np.testing.assert_array_equal(together, alone)
    assert together.dtype == np.int8


def test_neural_agent__greedy_is_the_arg_max_of_the_logits() -> None:
    batch = TronBatch([get_map("room10")], 3)
    agent = NeuralAgent(_net(1))
    games = np.arange(3)
    obs = Encoder(batch).encode(0, games)
    expected = agent.net(torch.from_numpy(obs))[0].argmax(dim=1).numpy()
    np.testing.assert_array_equal(agent.act(batch, 0, games), expected)


def test_neural_agent__greedy_play_is_deterministic_and_sampling_is_seeded() -> None:
    maps = [get_map("room10")]
    first = play_match(NeuralAgent(_net()), "random", maps, 6, seed=5)
    second = play_match(NeuralAgent(_net()), "random", maps, 6, seed=5)
    assert [r.moves for r in first.records] == [r.moves for r in second.records]

    def sampled(seed: int) -> list[list[tuple[int, int]]]:
        agent = NeuralAgent(_net(), greedy=False, seed=seed)
        return [r.moves for r in play_match(agent, "random", maps, 4).records]

    assert sampled(7) == sampled(7)
    assert sampled(7) != sampled(8)


def _save_tron_checkpoint(path: Path, algo: str = "acktr") -> torch.nn.Module:
    from arena.selfplay import LeagueConfig, build_selfplay

    league = LeagueConfig(fixed=("random",), gauntlet_every=0)
    learner = build_selfplay(algo, "tron:room10", num_envs=2, league=league)
    learner.learner.save(path)
    return learner.learner.model


def test_spec__checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    model = _save_tron_checkpoint(path)
    agent = make_agent(f"acktr:{path}")
    assert isinstance(agent, NeuralAgent)
    assert agent.name == f"acktr:{path}"
    for key, value in model.state_dict().items():
        torch.testing.assert_close(agent.net.state_dict()[key], value)
    # A run directory works too, and the agent plays.
    (tmp_path / "run").mkdir()
    path.rename(tmp_path / "run" / "checkpoint.pt")
    result = play_match(f"acktr:{tmp_path / 'run'}", "random", [get_map("room10")], 2)
    assert result.games == 2


def test_spec__a2c_checkpoint_and_algo_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "a2c.pt"
    _save_tron_checkpoint(path, "a2c")
    assert isinstance(make_agent(f"a2c:{path}"), NeuralAgent)
    with pytest.raises(SpecError, match=f"{path} is a a2c checkpoint: use a2c:PATH"):
        make_agent(f"acktr:{path}")
    with pytest.raises(SpecError, match="a2c needs a checkpoint"):
        make_agent("a2c")


def test_spec__corrupted_and_foreign_files_give_one_line_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint at all")
    with pytest.raises(SpecError, match=r"not a (readable|tron-lab) checkpoint") as info:
        make_agent(f"acktr:{garbage}")
    assert "\n" not in str(info.value)

    truncated = tmp_path / "truncated.pt"
    _save_tron_checkpoint(truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(SpecError, match="not a readable checkpoint"):
        make_agent(f"acktr:{truncated}")

    bare = tmp_path / "bare.pt"
    torch.save(_net().state_dict(), bare)
    with pytest.raises(SpecError, match="not a tron-lab learner checkpoint"):
        make_agent(f"acktr:{bare}")

    with pytest.raises(SpecError, match="no checkpoint at"):
        make_agent(f"acktr:{tmp_path / 'missing.pt'}")


def test_spec__checkpoint_of_another_env_is_refused(tmp_path: Path) -> None:
    from acktr.acktr import ACKTR

    path = tmp_path / "cartpole.pt"
    ACKTR.for_env("CartPole-v1", num_envs=1).save(path)
    with pytest.raises(SpecError, match=r"trained on 'CartPole-v1'.*holds no Tron network"):
        make_agent(f"acktr:{path}")
    with pytest.raises(Exception, match="holds no Tron network"):
        load_network(path)


def test_spec__acktr_without_path_is_the_shipped_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(neural, "SHIPPED_MODEL", tmp_path / "acktr_tron.pt")
    with pytest.raises(SpecError, match="no shipped model at"):
        make_agent("acktr")
    _save_tron_checkpoint(tmp_path / "acktr_tron.pt")
    agent = make_agent("acktr")
    assert isinstance(agent, NeuralAgent) and agent.greedy


def test_neural_agent__moves_are_directions() -> None:
    batch = TronBatch([get_map("room25")], 2)
    moves = NeuralAgent(_net()).act(batch, 0, np.arange(2))
    assert set(moves.tolist()) <= {int(d) for d in Direction}


def test_shipped_model__loads_with_its_own_network_and_plays() -> None:
    from acktr.training import read_checkpoint

    checkpoint = read_checkpoint(neural.SHIPPED_MODEL, algo="acktr")
    agent = make_agent("acktr")
    assert isinstance(agent, NeuralAgent) and agent.greedy
    # A checkpoint that records its network loads as that network; one from before the record
    # (the first shipped agent) as the six board planes without a mask.
    recorded = checkpoint.config.get("network", {"features": "board", "mask": False})
    assert (agent.net.features, agent.net.mask) == (recorded["features"], recorded["mask"])
    result = play_match(agent, "random", [get_map("room10")], 2)
    assert result.games == 2
