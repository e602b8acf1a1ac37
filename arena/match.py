"""Matches: N two-player games between agents A and B, batched, alternating seats, rotating maps.

Game ``i`` is played on ``maps[(i // 2) % len(maps)]`` with A in seat ``i % 2``, so every map is
played with the seats both ways. Up to ``concurrency`` games run at once in one ``TronBatch``; each
turn an agent is asked once per seat for all running games in which it sits there (one ``act``
call for a whole batch of games). The games with A in seat 0 are played first, then the others,
so running games share their seating and each agent gets one call a turn (two only around the
switch); external bots of all running games then think at the same time. A game that ends frees
its slot for the next.

Every game is kept as a ``GameRecord`` with the moves of both seats, enough to replay it on the
engine (``GameRecord.replay``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agents.base import FORFEIT, Agent
from agents.registry import make_agent
from tron.maps import Map
from tron.rules import Cause, TronBatch

logger = logging.getLogger(__name__)

#: How each ``Cause`` reads in a record's ``causes`` and ``reason``.
CAUSE_NAMES = {
    Cause.WALL: "wall",
    Cause.TRAIL: "trail",
    Cause.HEAD_ON: "head-on",
    Cause.FORFEIT: "forfeit",
}
_CAUSE_PHRASES = {
    Cause.WALL: "hit a wall",
    Cause.TRAIL: "hit a trail",
    Cause.HEAD_ON: "crashed head-on",
}
_LABELS = ("A", "B")


@dataclass
class GameRecord:
    """One finished game of a match.

    Attributes:
        index: the game's number in the match (0-based).
        map: the map's name.
        a_seat: the seat (engine player index) of agent A; B had the other one.
        winner: 0 if A won, 1 if B won, None for a draw.
        turns: turns played.
        reason: how the game ended, one line ("B hit a trail", "A forfeited: timed out ...").
        causes: how A and B (in that order) went out: "wall", "trail", "head-on", "forfeit", or
            None for the survivor.
        moves: per turn, the ``Direction`` played by seat 0 and seat 1 (-1: no move, forfeited).
    """

    index: int
    map: str
    a_seat: int
    winner: int | None
    turns: int
    reason: str
    causes: tuple[str | None, str | None]
    moves: list[tuple[int, int]] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "index": self.index,
            "map": self.map,
            "a_seat": self.a_seat,
            "winner": self.winner,
            "turns": self.turns,
            "reason": self.reason,
            "causes": list(self.causes),
            "moves": [list(m) for m in self.moves],
        }

    def replay(self, game_map: Map) -> TronBatch:
        """Play the recorded moves again on ``game_map``; returns the finished one-game batch."""
        batch = TronBatch([game_map], 1, n_players=2)
        for m0, m1 in self.moves:
            moves = np.array([[max(m0, 0), max(m1, 0)]], dtype=np.int64)
            forfeit = np.array([[m0 < 0, m1 < 0]])
            batch.step(moves, forfeit=forfeit)
        return batch


@dataclass
class MatchResult:
    """The outcome of ``play_match``.

    Attributes:
        agents: the names of A and B.
        records: one per game, in game order.
    """

    agents: tuple[str, str]
    records: list[GameRecord]

    @property
    def games(self) -> int:
        return len(self.records)

    @property
    def wins(self) -> list[int]:
        """Wins of A and of B."""
        return [sum(r.winner == k for r in self.records) for k in (0, 1)]

    @property
    def draws(self) -> int:
        return sum(r.winner is None for r in self.records)

    def score(self, agent: int = 0) -> float:
        """Points per game of A (``agent=0``) or B (1): a win 1, a draw 0.5."""
        if not self.records:
            return 0.0
        return (self.wins[agent] + 0.5 * self.draws) / self.games

    def to_json(self) -> dict[str, Any]:
        """``games``, ``wins`` [A, B], ``draws``, ``score`` (A's), ``agents`` and ``records``."""
        return {
            "agents": list(self.agents),
            "games": self.games,
            "wins": self.wins,
            "draws": self.draws,
            "score": self.score(0),
            "records": [r.to_json() for r in self.records],
        }


def _reason(causes: list[Cause], explain: list[str | None]) -> str:
    """One line saying how a game ended, from A's and B's causes (``Cause.NONE``: survived)."""
    out = [k for k in (0, 1) if causes[k] != Cause.NONE]

    def phrase(k: int) -> str:
        if causes[k] == Cause.FORFEIT:
            return f"{_LABELS[k]} forfeited: {explain[k]}"
        return f"{_LABELS[k]} {_CAUSE_PHRASES[Cause(causes[k])]}"

    if len(out) == 1:
        return phrase(out[0])
    if causes[0] == causes[1] == Cause.HEAD_ON:
        return "draw: head-on collision"
    return f"draw: {phrase(0)} and {phrase(1)}"


def play_match(
    agent_a: Agent | str,
    agent_b: Agent | str,
    maps: Sequence[Map],
    games: int,
    *,
    seed: int = 0,
    concurrency: int = 16,
    on_game: Callable[[GameRecord], None] | None = None,
) -> MatchResult:
    """Play ``games`` games between A and B (see the module docstring for the schedule).

    Args:
        agent_a, agent_b: agents, or registry specs (``agents.registry``) built here with seeds
            ``seed`` and ``seed + 1`` and closed at the end. Agents passed in are the caller's to
            close.
        maps: 2-player maps to rotate through.
        games: the number of games (>= 1).
        seed: seed of the agents built from specs.
        concurrency: the most games played at once (the batch size).
        on_game: called with each record as its game ends (progress bars, logs).

    Returns:
        The records of all games.

    Raises:
        ValueError: no maps, a map not for 2 players, ``games < 1``, or an agent that returned
            something other than one ``Direction`` or ``FORFEIT`` per game.
        SpecError: a spec string is invalid.
    """
    if games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    if not maps:
        raise ValueError("play_match needs at least one map")
    for m in maps:
        if m.n_players != 2:
            raise ValueError(f"map {m.name!r} is for {m.n_players} players; a match is 2-player")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    owned: list[Agent] = []
    try:
        agents: list[Agent] = []
        for k, spec in enumerate((agent_a, agent_b)):
            if isinstance(spec, str):
                owned.append(make_agent(spec, seed=seed + k))
                agents.append(owned[-1])
            else:
                agents.append(spec)
        return _play(agents, maps, games, concurrency, on_game)
    finally:
        for agent in owned:
            agent.close()


def _play(
    agents: list[Agent],
    maps: Sequence[Map],
    games: int,
    concurrency: int,
    on_game: Callable[[GameRecord], None] | None,
) -> MatchResult:
    n_slots = min(games, concurrency)
    batch = TronBatch(maps, n_slots, n_players=2)
    slot_game = np.full(n_slots, -1, dtype=np.int64)  # the game each slot plays, -1 idle
    a_seat = np.zeros(n_slots, dtype=np.int64)
    moves: list[list[tuple[int, int]]] = [[] for _ in range(n_slots)]
    explain: list[list[str | None]] = [[None, None] for _ in range(n_slots)]
    records: list[GameRecord | None] = [None] * games
    schedule = [*range(0, games, 2), *range(1, games, 2)]
    next_game = 0

    def start(slots: NDArray[np.int64]) -> None:
        nonlocal next_game
        for s in slots:
            slot_game[s] = schedule[next_game]
            a_seat[s] = slot_game[s] % 2
            moves[s] = []
            explain[s] = [None, None]
            next_game += 1
        batch.reset(slots, map_index=(slot_game[slots] // 2) % len(maps))
        for agent in agents:
            agent.reset(slots)

    start(np.arange(n_slots))
    while (slot_game >= 0).any():
        active = (slot_game >= 0) & ~batch.done
        actions = np.zeros((n_slots, 2), dtype=np.int64)
        forfeit = np.zeros((n_slots, 2), dtype=bool)
        for k, agent in enumerate(agents):
            for seat in (0, 1):
                games_here = np.flatnonzero(active & ((a_seat == seat) == (k == 0)))
                if games_here.size == 0:
                    continue
                chosen = _checked(agent, agent.act(batch, seat, games_here), games_here.size)
                actions[games_here, seat] = np.maximum(chosen, 0)
                for g in games_here[chosen == FORFEIT]:
                    forfeit[g, seat] = True
                    explain[g][k] = agent.forfeit_reason(int(g))
        result = batch.step(actions, forfeit=forfeit)
        for s in np.flatnonzero(active):
            moves[s].append(
                (
                    -1 if forfeit[s, 0] else int(actions[s, 0]),
                    -1 if forfeit[s, 1] else int(actions[s, 1]),
                )
            )
        ended = np.flatnonzero(result.ended & (slot_game >= 0))
        for s in ended:
            record = _record(batch, int(s), int(slot_game[s]), int(a_seat[s]), moves[s], explain[s])
            records[record.index] = record
            logger.debug("game %d: %s", record.index, record)
            if on_game is not None:
                on_game(record)
            slot_game[s] = -1
        if ended.size and next_game < games:
            start(ended[: games - next_game])
    names = (agents[0].name, agents[1].name)
    return MatchResult(names, [r for r in records if r is not None])


def _checked(agent: Agent, chosen: NDArray[np.integer], n: int) -> NDArray[np.int64]:
    out = np.asarray(chosen)
    if out.shape != (n,) or not np.issubdtype(out.dtype, np.integer):
        raise ValueError(
            f"agent {agent.name!r} returned {out.dtype} of shape {out.shape}; "
            f"act must return {n} integer moves"
        )
    out = out.astype(np.int64)
    if ((out < FORFEIT) | (out > 3)).any():
        raise ValueError(
            f"agent {agent.name!r} returned moves {sorted(set(out.tolist()))}; "
            "act must return Directions 0..3 or FORFEIT (-1)"
        )
    return out


def _record(
    batch: TronBatch,
    slot: int,
    index: int,
    a_seat: int,
    moves: list[tuple[int, int]],
    explain: list[str | None],
) -> GameRecord:
    seats = (a_seat, 1 - a_seat)  # the seat of A, of B
    w = int(batch.winner[slot])
    winner = None if w < 0 else seats.index(w)
    causes = [Cause(int(batch.cause[slot, seats[k]])) for k in (0, 1)]
    return GameRecord(
        index=index,
        map=batch.map_of(slot).name,
        a_seat=a_seat,
        winner=winner,
        turns=int(batch.turn[slot]),
        reason=_reason(causes, explain),
        causes=(CAUSE_NAMES.get(causes[0]), CAUSE_NAMES.get(causes[1])),
        moves=moves,
    )
