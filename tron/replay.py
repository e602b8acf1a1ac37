"""Compact replays: the map, every move, the players and the result, as JSON.

A replay file holds one or more games (a match writes all of its games to one file)::

    {"format": "tron-replay", "version": 1,
     "games": [{"map": {"name": "empty15", "text": "15 15\\n###...\\n..."},
                "agents": ["you", "minimax:level=5"], "seed": 7,
                "moves": ["EEENNW", "WWWWSS"],
                "result": {"winner": 0, "scores": [1.0, 0.0], "turns": 6}}]}

``map.text`` is the AI Challenge text format (first line ``W H``, then the rows: ``#`` wall, space
floor, ``1``..``4`` the start squares). ``moves[p]`` has one letter per turn that player ``p`` took
part in, the turn it crashed included: ``N``, ``E``, ``S``, ``W``, or ``X`` for a forfeit (removed
without moving). A 2-player game of 100 turns takes about 200 bytes of moves.

The engine is deterministic, so the moves reproduce the game exactly: ``replay_to_batch`` replays
them through ``TronBatch`` and checks that the recorded result comes out again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from tron.maps import Map, MapError, format_map, parse_map
from tron.rules import TronBatch

FORMAT = "tron-replay"
VERSION = 1
MOVE_LETTERS = "NESW"
FORFEIT = "X"


class ReplayError(ValueError):
    """A replay file that cannot be read, or whose moves do not reproduce its result."""


@dataclass(frozen=True)
class Replay:
    """One recorded game.

    Attributes:
        map: the map it was played on.
        agents: the name (or spec) of the player in each seat.
        moves: one string per seat: a letter of ``NESW`` per turn played, ``X`` for a forfeit.
        winner: the winning seat, -1 for a draw.
        scores: each seat's score: 1 win, 0.5 shared draw, 0 loss (``TronBatch.outcome``).
        turns: the number of turns the game lasted.
        seed: the seed the game was played with, if any.
    """

    map: Map
    agents: tuple[str, ...]
    moves: tuple[str, ...]
    winner: int
    scores: tuple[float, ...]
    turns: int
    seed: int | None = None

    @property
    def n_players(self) -> int:
        return len(self.agents)


class ReplayRecorder:
    """Records one game of a batch while it is played; ``finish`` turns it into a ``Replay``.

    Call ``record`` with the same arguments as ``TronBatch.step`` just before each step.
    """

    def __init__(
        self, batch: TronBatch, game: int, agents: Sequence[str], seed: int | None = None
    ) -> None:
        if len(agents) != batch.n_players:
            raise ValueError(f"{len(agents)} agent names for {batch.n_players} players")
        self.batch = batch
        self.game = game
        self.agents = tuple(agents)
        self.seed = seed
        self._moves: list[list[str]] = [[] for _ in agents]

    def record(
        self, actions: NDArray[np.integer], forfeit: NDArray[np.bool_] | None = None
    ) -> None:
        """Note the moves of the live players of the recorded game before ``batch.step``.

        Args:
            actions: (B, P) the actions about to be played.
            forfeit: (B, P) the forfeit mask about to be passed to ``step``, if any.
        """
        g = self.game
        if self.batch.done[g]:
            return
        for p in np.flatnonzero(self.batch.alive[g]):
            if forfeit is not None and forfeit[g, p]:
                self._moves[p].append(FORFEIT)
            else:
                self._moves[p].append(MOVE_LETTERS[int(actions[g, p])])

    def finish(self) -> Replay:
        """The finished game as a ``Replay``."""
        g = self.game
        if not self.batch.done[g]:
            raise ValueError("the recorded game is still running")
        return Replay(
            map=self.batch.map_of(g),
            agents=self.agents,
            moves=tuple("".join(m) for m in self._moves),
            winner=int(self.batch.winner[g]),
            scores=tuple(self.batch.outcome(g)),
            turns=int(self.batch.turn[g]),
            seed=self.seed,
        )


# ------------------------------------------------------------------------ reproduction


def iter_replay(replay: Replay) -> Iterator[tuple[TronBatch, NDArray[np.int8]]]:
    """Play a replay back turn by turn.

    Yields:
        ``(batch, actions)`` after each turn: the one-game batch (the same object, stepped in place)
        and the (P,) actions played on that turn (-1 for players that did not move). The batch's
        state before the first turn is ``replay_to_batch(replay, 0)``.

    Raises:
        ReplayError: when the moves do not fit the game (a move for a crashed player, a missing
            move) or do not reproduce the recorded result.
    """
    batch = _new_batch(replay)
    n = replay.n_players
    for t in range(replay.turns):
        actions = np.full((1, n), -1, dtype=np.int8)
        forfeit = np.zeros((1, n), dtype=bool)
        for p in range(n):
            moves = replay.moves[p]
            if batch.alive[0, p]:
                if t >= len(moves):
                    raise ReplayError(f"seat {p} has no move for turn {t + 1} of {replay.turns}")
                letter = moves[t]
                if letter == FORFEIT:
                    forfeit[0, p] = True
                    actions[0, p] = 0
                else:
                    actions[0, p] = MOVE_LETTERS.index(letter)
            elif t < len(moves):
                raise ReplayError(f"seat {p} has a move for turn {t + 1}, after it crashed")
        batch.step(actions, forfeit=forfeit)
        yield batch, np.where(forfeit[0], -1, actions[0])
    if (
        not batch.done[0]
        or int(batch.turn[0]) != replay.turns
        or int(batch.winner[0]) != replay.winner
        or tuple(batch.outcome(0)) != replay.scores
    ):
        raise ReplayError(
            "the moves do not reproduce the recorded result (a damaged file, or one recorded "
            "under other rules)"
        )


def replay_to_batch(replay: Replay, turns: int | None = None) -> TronBatch:
    """The one-game batch of a replay after ``turns`` turns (default: the end of the game).

    Replaying to the end checks that the recorded result comes out again (``ReplayError`` if not).
    """
    if turns is not None and not 0 <= turns <= replay.turns:
        raise ValueError(f"turns must be 0..{replay.turns}, got {turns}")
    if turns == 0:
        return _new_batch(replay)
    for t, (batch, _) in enumerate(iter_replay(replay), start=1):
        if t == turns:
            return batch
    return batch


def replay_from_moves(
    game_map: Map,
    agents: Sequence[str],
    turn_moves: Iterable[Sequence[int]],
    seed: int | None = None,
) -> Replay:
    """The replay of a game given turn by turn, played on the engine to get its result.

    Args:
        game_map: the map.
        agents: the name of each seat.
        turn_moves: per turn, a move per seat: a ``Direction`` value, or -1 for a forfeit (entries
            of players already out are ignored).
        seed: the seed to record.

    Raises:
        ReplayError: the moves go on after the game ended, or stop before it does.
    """
    batch = TronBatch([game_map], 1, n_players=len(agents))
    recorder = ReplayRecorder(batch, 0, agents, seed)
    for t, moves in enumerate(turn_moves):
        if batch.done[0]:
            raise ReplayError(f"moves for turn {t + 1}, after the game ended on turn {t}")
        actions = np.asarray(moves, dtype=np.int64).reshape(1, -1)
        forfeit = actions < 0
        actions = np.where(forfeit, 0, actions)
        recorder.record(actions, forfeit)
        batch.step(actions, forfeit=forfeit)
    if not batch.done[0]:
        raise ReplayError(f"the moves stop after turn {int(batch.turn[0])}, before the game ends")
    return recorder.finish()


class MatchRecord(Protocol):
    """What ``save_match_replays`` reads of a game of a match (``arena.match.GameRecord``)."""

    @property
    def map(self) -> str:
        """The map's name."""

    @property
    def a_seat(self) -> int:
        """The seat of agent A (B has the other)."""

    @property
    def moves(self) -> Sequence[Sequence[int]]:
        """Per turn, the moves of seat 0 and seat 1 (-1: a forfeit)."""


def save_match_replays(
    path: str | os.PathLike[str],
    records: Sequence[MatchRecord],
    maps: Sequence[Map],
    agents: Sequence[str],
    seed: int | None = None,
) -> None:
    """Write every game of a two-agent match to one replay file (``tron replay FILE``).

    Args:
        path: the file to write (atomically).
        records: the games, each naming its map, A's seat and the moves.
        maps: the maps of the match (looked up by name).
        agents: the names of A and B.
        seed: the match's seed, recorded in each game.

    Raises:
        ReplayError: a record names a map not in ``maps``, or its moves are not a whole game.
    """
    by_name = {m.name: m for m in maps}
    replays = []
    for i, record in enumerate(records):
        if record.map not in by_name:
            raise ReplayError(
                f"game {i + 1} was played on {record.map!r}, which is not among the maps"
            )
        a, b = agents
        names = (a, b) if record.a_seat == 0 else (b, a)
        replays.append(replay_from_moves(by_name[record.map], names, record.moves, seed))
    save_replays(path, replays)


def _new_batch(replay: Replay) -> TronBatch:
    return TronBatch([replay.map], 1, n_players=replay.n_players)


# ------------------------------------------------------------------------ files


def replay_to_json(replay: Replay) -> dict[str, Any]:
    """The JSON object of one game (an entry of a file's ``games`` list)."""
    return {
        "map": {"name": replay.map.name, "text": format_map(replay.map)},
        "agents": list(replay.agents),
        "seed": replay.seed,
        "moves": list(replay.moves),
        "result": {
            "winner": replay.winner,
            "scores": list(replay.scores),
            "turns": replay.turns,
        },
    }


def save_replays(path: str | os.PathLike[str], replays: Sequence[Replay]) -> None:
    """Write games to a replay file, atomically (a temporary file renamed into place)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "games": [replay_to_json(r) for r in replays],
    }
    _write_atomic(Path(path), json.dumps(doc, separators=(",", ":")) + "\n")


def load_replays(path: str | os.PathLike[str]) -> list[Replay]:
    """Read every game of a replay file.

    Raises:
        ReplayError: with a one-line message saying what is wrong with the file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReplayError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReplayError(f"{p}: cannot read it ({e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReplayError(f"{p}: not a replay file (invalid JSON: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReplayError(f'{p}: not a replay file (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise ReplayError(
            f"{p}: replay version {doc.get('version')!r}, this program reads version {VERSION}"
        )
    games = doc.get("games")
    if not isinstance(games, list) or not games:
        raise ReplayError(f"{p}: the file holds no games")
    out = []
    for i, game in enumerate(games):
        try:
            out.append(replay_from_json(game))
        except (ReplayError, KeyError, TypeError, ValueError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise ReplayError(f"{p}: game {i + 1}: {what}") from None
    return out


def replay_from_json(game: dict[str, Any]) -> Replay:
    """Parse and check one entry of a file's ``games`` list (``ReplayError`` if it is invalid)."""
    name = str(game["map"]["name"])
    try:
        m = parse_map(str(game["map"]["text"]), name)
    except MapError as e:
        raise ReplayError(f"map {name!r}: {e}") from None
    agents = tuple(str(a) for a in game["agents"])
    moves = tuple(str(s) for s in game["moves"])
    result = game["result"]
    seed = game.get("seed")
    if not 2 <= len(agents) <= len(m.starts):
        raise ReplayError(f"{len(agents)} players on a map with {len(m.starts)} start squares")
    if len(moves) != len(agents):
        raise ReplayError(f"{len(moves)} move strings for {len(agents)} players")
    for p, s in enumerate(moves):
        bad = set(s) - set(MOVE_LETTERS + FORFEIT)
        if bad:
            raise ReplayError(f"seat {p}: unknown moves {''.join(sorted(bad))!r} (use N E S W X)")
    scores = tuple(float(v) for v in result["scores"])
    if len(scores) != len(agents):
        raise ReplayError(f"{len(scores)} scores for {len(agents)} players")
    turns = int(result["turns"])
    if turns < 1:
        raise ReplayError(f"a game lasts at least one turn, the result says {turns}")
    if turns != max(len(s) for s in moves):
        raise ReplayError(f"result says {turns} turns, the moves last {max(map(len, moves))}")
    return Replay(
        map=m,
        agents=agents,
        moves=moves,
        winner=int(result["winner"]),
        scores=scores,
        turns=turns,
        seed=None if seed is None else int(seed),
    )


def _write_atomic(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private; a replay is an ordinary document.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
