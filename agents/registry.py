"""Agent specs: short strings that name an agent and its settings, for the CLI and config files.

Grammar::

    SPEC     := NAME | NAME ":" ARGUMENT
    ARGUMENT := KEY "=" VALUE ("," KEY "=" VALUE)*     most agents (``parse_options``)
              | anything                              agents that take it verbatim (``cmd:``)

The built-in agents::

    random[:seed=N]                 a random safe move
    greedy                          the move with the most reachable space
    wallhugger                      follows walls clockwise
    chaser                          heads for the nearest opponent
    minimax[:level=1..5,depth=N,evals=N,ms=N,edges=0|1,chambers=0|1,parity=0|1,fill=0|1,
            contempt=X]             alpha-beta search (``agents.minimax``); default level 5
                                    (100 ms a move); a budget (depth, evals, ms) replaces the
                                    level's, the other keys its evaluation settings
    cmd:[ms=N] [first_ms=N] [mem_mb=N] PROGRAM ARGS...
                                    an external program (``agents.external``); the rest is split
                                    like a shell would (``shlex``) but never run by one. Leading
                                    ``KEY=N`` words set the move time limit, the first move's, and
                                    the memory cap (as ``env VAR=x PROGRAM`` does for variables)

More agents (trained networks, a human at the keyboard) join with ``register``: a factory takes the
text after ``NAME:`` ("" if none) and a seed. Factories import their heavy dependencies (torch,
pygame) when called, so importing this module stays cheap.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agents.base import Agent

#: Builds an agent from the text after ``NAME:`` ("" when absent) and a seed.
Factory = Callable[[str, int], Agent]


class SpecError(ValueError):
    """An invalid agent spec; the message says what is wrong and what is valid."""


@dataclass(frozen=True)
class AgentType:
    """A registered kind of agent.

    Attributes:
        name: the spec's ``NAME``.
        factory: builds the agent (see ``Factory``).
        usage: the spec's syntax, shown in error messages and help.
        summary: one line saying what the agent does.
    """

    name: str
    factory: Factory
    usage: str
    summary: str


_TYPES: dict[str, AgentType] = {}


def register(name: str, factory: Factory, *, usage: str, summary: str) -> None:
    """Make ``NAME`` and ``NAME:...`` specs build agents with ``factory``.

    Raises:
        ValueError: ``name`` is already registered or is not a plain lowercase word.
    """
    if not name.replace("_", "").replace("-", "").isalnum() or name != name.lower():
        raise ValueError(f"agent names are lowercase words, got {name!r}")
    if name in _TYPES:
        raise ValueError(f"agent {name!r} is already registered")
    _TYPES[name] = AgentType(name, factory, usage, summary)


def agent_types() -> list[AgentType]:
    """Every registered agent type, in registration order."""
    return list(_TYPES.values())


def valid_specs() -> str:
    """The usage of every agent type, comma-separated (for error messages)."""
    return ", ".join(t.usage for t in _TYPES.values())


def make_agent(spec: str, *, seed: int = 0) -> Agent:
    """Build the agent a spec describes; its ``name`` is the spec.

    Args:
        spec: ``NAME`` or ``NAME:ARGUMENT`` (see the module docstring).
        seed: seed for agents that draw random numbers (a spec's own ``seed=`` wins).

    Raises:
        SpecError: unknown name or invalid argument; the message lists what is valid.
    """
    spec = spec.strip()
    name, _, argument = spec.partition(":")
    kind = _TYPES.get(name)
    if kind is None:
        raise SpecError(f"unknown agent {spec!r}; valid agents: {valid_specs()}")
    try:
        agent = kind.factory(argument, seed)
    except SpecError as e:
        raise SpecError(f"{spec!r}: {e}") from None
    except ValueError as e:
        raise SpecError(f"{spec!r}: {e} (usage: {kind.usage})") from None
    agent.name = spec
    return agent


def parse_options(
    argument: str, schema: Mapping[str, Callable[[str], object]], *, usage: str
) -> dict[str, object]:
    """Parse ``KEY=VALUE,KEY=VALUE`` with one converter per allowed key.

    Raises:
        SpecError: an unknown or repeated key, a missing ``=``, or a value its converter refuses.
    """
    options: dict[str, object] = {}
    if not argument:
        return options
    for item in argument.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SpecError(f"expected KEY=VALUE, got {item!r} (usage: {usage})")
        if key not in schema:
            raise SpecError(f"unknown option {key!r}; valid: {', '.join(schema)} (usage: {usage})")
        if key in options:
            raise SpecError(f"option {key!r} given twice (usage: {usage})")
        try:
            options[key] = schema[key](value.strip())
        except ValueError as e:
            raise SpecError(f"option {key}={value!r}: {e} (usage: {usage})") from None
    return options


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError("not an integer") from None
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not 0 < value < float("inf"):
        raise ValueError("must be > 0")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not 0 <= value < float("inf"):
        raise ValueError("must be >= 0")
    return value


def flag(text: str) -> bool:
    """A boolean: 1/0, true/false, yes/no, on/off."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 0 or 1")


def _refuse_argument(name: str, argument: str) -> None:
    if argument:
        raise SpecError(f"{name!r} takes no options, got {name}:{argument}")


def _random(argument: str, seed: int) -> Agent:
    from agents.simple import RandomAgent

    options = parse_options(argument, {"seed": int}, usage=_TYPES["random"].usage)
    return RandomAgent(seed=int(options.get("seed", seed)))  # type: ignore[call-overload]


def _greedy(argument: str, seed: int) -> Agent:
    from agents.simple import GreedyAgent

    _refuse_argument("greedy", argument)
    return GreedyAgent()


def _wallhugger(argument: str, seed: int) -> Agent:
    from agents.simple import WallHuggerAgent

    _refuse_argument("wallhugger", argument)
    return WallHuggerAgent()


def _chaser(argument: str, seed: int) -> Agent:
    from agents.simple import ChaserAgent

    _refuse_argument("chaser", argument)
    return ChaserAgent()


def _minimax(argument: str, seed: int) -> Agent:
    from agents.minimax import MinimaxAgent, MinimaxConfig, level_config

    schema: dict[str, Callable[[str], object]] = {
        "level": positive_int,
        "depth": positive_int,
        "evals": positive_int,
        "ms": positive_float,
        "edges": flag,
        "chambers": flag,
        "parity": flag,
        "fill": flag,
        "contempt": non_negative_float,
    }
    options = parse_options(argument, schema, usage=_TYPES["minimax"].usage)
    level = int(options.pop("level", 5))  # type: ignore[call-overload]
    if len({"depth", "evals", "ms"} & options.keys()) > 1:
        raise SpecError("give at most one budget of depth, evals and ms")
    config: MinimaxConfig = level_config(level, **options)
    return MinimaxAgent(config)


_CMD_OPTIONS = {"ms": "move_ms", "first_ms": "first_move_ms", "mem_mb": "memory_mb"}


def _cmd(argument: str, seed: int) -> Agent:
    from agents.external import ExternalAgent

    try:
        words = shlex.split(argument)
    except ValueError as e:
        raise SpecError(f"cannot split the command line {argument!r}: {e}") from None
    limits: dict[str, float] = {}
    while words and words[0].partition("=")[0] in _CMD_OPTIONS and "=" in words[0]:
        key, _, value = words.pop(0).partition("=")
        try:
            limits[_CMD_OPTIONS[key]] = positive_float(value)
        except ValueError as e:
            raise SpecError(f"cmd option {key}={value}: {e}") from None
    if "memory_mb" in limits:
        limits["memory_mb"] = int(limits["memory_mb"])
    return ExternalAgent(words, **limits)  # type: ignore[arg-type]


register(
    "random",
    _random,
    usage="random[:seed=N]",
    summary="a uniformly random safe move",
)
register(
    "greedy",
    _greedy,
    usage="greedy",
    summary="the safe move with the most reachable free squares",
)
register(
    "wallhugger",
    _wallhugger,
    usage="wallhugger",
    summary="follows walls clockwise",
)
register(
    "chaser",
    _chaser,
    usage="chaser",
    summary="heads for the nearest opponent, then fills like greedy",
)
register(
    "minimax",
    _minimax,
    usage="minimax[:level=1..5,depth=N,evals=N,ms=N]",
    summary="iterative-deepening alpha-beta, Voronoi + chamber evaluation (default level 5, 100 ms)",
)
register(
    "cmd",
    _cmd,
    usage="cmd:[ms=N] [first_ms=N] [mem_mb=N] PROGRAM ARGS...",
    summary="an external program speaking the AI Challenge protocol",
)


def _human(argument: str, seed: int) -> Agent:
    from agents.human import HumanAgent

    _refuse_argument("human", argument)
    return HumanAgent()


def _neural(algo: str) -> Factory:
    """A factory for trained networks; torch is imported only when such an agent is built."""

    def factory(argument: str, seed: int) -> Agent:
        from agents.neural import make_neural_agent

        return make_neural_agent(algo, argument, seed)

    return factory


register(
    "human",
    _human,
    usage="human",
    summary="a person at the keyboard (tron play / tron watch feed it key presses)",
)
register(
    "acktr",
    _neural("acktr"),
    usage="acktr[:PATH]",
    summary="a network trained by ACKTR self-play (default: the shipped models/acktr_tron.pt)",
)
register(
    "a2c",
    _neural("a2c"),
    usage="a2c:PATH",
    summary="a network trained by A2C self-play, from its checkpoint",
)


def _policy(algo: str) -> Factory:
    """A factory for DQN and A3C checkpoints; torch is imported only when such an agent is built."""

    def factory(argument: str, seed: int) -> Agent:
        from agents.neural import make_policy_agent

        return make_policy_agent(algo, argument, seed)

    return factory


register(
    "dqn",
    _policy("dqn"),
    usage="dqn:PATH",
    summary="a greedy DQN policy trained on Tron (tron train dqn --env tron), from its checkpoint",
)
register(
    "a3c",
    _policy("a3c"),
    usage="a3c:PATH",
    summary="a greedy A3C policy trained on Tron (tron train a3c --env tron), from its checkpoint",
)
