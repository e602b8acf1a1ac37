"""``dqn:PATH`` and ``a3c:PATH``: greedy DQN and A3C policies trained on Tron play as agents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.registry import SpecError, make_agent
from arena.cli import main as tron
from arena.match import play_match
from tron.maps import get_map
from tron.observe import Encoder
from tron.rules import TronBatch


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A few hundred steps of `tron train dqn|a3c --env tron:room10`: small networks, real files."""
    out = {}
    for algo, extra in (("dqn", []), ("a3c", ["--envs", "1"])):
        run = tmp_path_factory.mktemp(algo)
        argv = ["train", algo, "--env", "tron:room10", "--steps", "300", "--out", str(run)]
        assert tron([*argv, "--no-progress", "--no-tensorboard", *extra]) == 0
        out[algo] = run
    return out


@pytest.mark.parametrize("algo", ["dqn", "a3c"])
def test_policy_agent__plays_the_policy_greedy_move(runs: dict[str, Path], algo: str) -> None:
    agent = make_agent(f"{algo}:{runs[algo]}")
    batch = TronBatch([get_map("room10")], 3)
    games = np.arange(3)
    moves = agent.act(batch, 1, games)
    expected = agent.policy(Encoder(batch, (10, 10)).encode(1, games))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(moves, expected)
    assert moves.dtype == np.int8 and set(moves.tolist()) <= {0, 1, 2, 3}


def test_policy_agent__forfeits_only_maps_larger_than_its_boards(runs: dict[str, Path]) -> None:
    result = play_match(f"dqn:{runs['dqn']}", "greedy", [get_map("pillars"), get_map("room10")], 4)
    by_map: dict[str, list[str]] = {}
    for record in result.records:
        by_map.setdefault(record.map, []).append(record.reason)
    assert (
        by_map["pillars"]
        == [
            f"A forfeited: the map is larger than the 10x10 boards dqn:{runs['dqn']} was trained on"
        ]
        * 2
    )
    assert all("forfeited" not in reason for reason in by_map["room10"])


def test_policy_agent__bad_specs_are_one_line_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"dqn needs a checkpoint: dqn:PATH"):
        make_agent("dqn")
    with pytest.raises(SpecError, match="a3c"):
        make_agent(f"dqn:{runs['a3c']}")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError):
        make_agent(f"a3c:{garbage}")
