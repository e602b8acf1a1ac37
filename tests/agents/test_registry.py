"""Agent specs: the built-in agents, options, and refusals that list what is valid."""

from __future__ import annotations

import pytest

from agents.base import Agent
from agents.minimax import MinimaxAgent, MinimaxConfig
from agents.registry import SpecError, agent_types, make_agent, parse_options, register
from agents.simple import ChaserAgent, GreedyAgent, RandomAgent, WallHuggerAgent


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("random", RandomAgent),
        ("random:seed=7", RandomAgent),
        ("greedy", GreedyAgent),
        ("wallhugger", WallHuggerAgent),
        ("chaser", ChaserAgent),
        ("minimax", MinimaxAgent),
        (" minimax:ms=50 ", MinimaxAgent),
    ],
)
def test_make_agent__builds_each_builtin(spec: str, cls: type[Agent]) -> None:
    agent = make_agent(spec)
    assert isinstance(agent, cls)
    assert agent.name == spec.strip()


@pytest.mark.parametrize(
    ("spec", "config"),
    [
        ("minimax", MinimaxConfig()),
        ("minimax:ms=100", MinimaxConfig(ms=100.0)),
        ("minimax:depth=4", MinimaxConfig(depth=4)),
        ("minimax:evals=5000", MinimaxConfig(evals=5000)),
        ("minimax:level=1", MinimaxConfig(depth=1, edges=False, chambers=False, parity=False, fill=False, contempt=0.0)),
        ("minimax:level=3", MinimaxConfig(depth=2, chambers=False, contempt=0.0)),
        ("minimax:level=3,ms=50", MinimaxConfig(ms=50.0, chambers=False, contempt=0.0)),
        ("minimax:level=4,evals=900", MinimaxConfig(evals=900, contempt=0.0)),
        ("minimax:chambers=0,fill=off", MinimaxConfig(chambers=False, fill=False)),
        ("minimax:contempt=2.5", MinimaxConfig(contempt=2.5)),
    ],
)  # fmt: skip
def test_make_agent__minimax_options(spec: str, config: MinimaxConfig) -> None:
    agent = make_agent(spec)
    assert isinstance(agent, MinimaxAgent)
    assert agent.config == config


def test_make_agent__seeds() -> None:
    import numpy as np

    from tron.maps import get_map
    from tron.rules import TronBatch

    batch = TronBatch([get_map("room15")], 1)
    games = np.zeros(50, dtype=np.intp)

    def moves(spec: str, seed: int) -> list[int]:
        return make_agent(spec, seed=seed).act(batch, 0, games).tolist()

    assert moves("random", 1) == moves("random", 1)
    assert moves("random", 1) != moves("random", 2)
    assert moves("random:seed=5", 1) == moves("random:seed=5", 2)  # the spec's seed wins


def test_make_agent__unknown_spec_lists_the_valid_ones() -> None:
    with pytest.raises(SpecError) as e:
        make_agent("alphazero")
    message = str(e.value)
    assert message.startswith("unknown agent 'alphazero'; valid agents: random[:seed=N], greedy")
    for t in agent_types():
        assert t.usage in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("greedy:fast=1", "'greedy' takes no options"),
        ("minimax:level=6", "level must be 1..5"),
        ("minimax:level=0", "option level='0': must be >= 1"),
        ("minimax:depth=three", "option depth='three': not an integer"),
        ("minimax:ms=-5", "option ms='-5': must be > 0"),
        ("minimax:ms=inf", "option ms='inf': must be > 0"),
        ("minimax:depth=3,ms=20", "at most one budget"),
        ("minimax:speed=9", "unknown option 'speed'; valid: level, depth"),
        ("minimax:depth", "expected KEY=VALUE, got 'depth'"),
        ("minimax:depth=2,depth=3", "option 'depth' given twice"),
        ("minimax:fill=maybe", "option fill='maybe': expected 0 or 1"),
        ("minimax:contempt=-1", "option contempt='-1': must be >= 0"),
        ("random:seed=x", "option seed='x'"),
    ],
)
def test_make_agent__bad_options_are_refused_in_one_line(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=None) as e:
        make_agent(spec)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_parse_options__converters() -> None:
    schema = {"n": int, "x": float}
    assert parse_options("", schema, usage="u") == {}
    assert parse_options("n=3, x = 0.5", schema, usage="u") == {"n": 3, "x": 0.5}


def test_register__names_are_unique_words() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("greedy", lambda argument, seed: GreedyAgent(), usage="greedy", summary="")
    with pytest.raises(ValueError, match="lowercase words"):
        register("My Agent", lambda argument, seed: GreedyAgent(), usage="x", summary="")
