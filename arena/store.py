"""The tournament database: one SQLite row per finished game, enough to replay it.

Schema (``sqlite3 FILE .schema`` shows it)::

    meta(key PRIMARY KEY, value)          format version
    maps(sha PRIMARY KEY, name, text)     every map played, in the AI Challenge text format
    games(id PRIMARY KEY,                 the scheduled game's id (``arena.tournament``)
          agents,                         JSON list of agent specs, in seat order
          map, map_sha,                   the map's name and the key of its text in ``maps``
          number, seed, agent_seed,       game number in its group, its seed, the agents' seed
          winner, turns,                  winning seat (-1 a draw), turns played
          scores, crash_turns, causes,    JSON lists, one entry per seat (``GameResult``)
          reason,                         one line: how the game ended
          moves,                          JSON list of ``tron.replay`` move strings, one per seat
          finished_at)                    UTC time the row was written

Writes are one transaction per finished game (``INSERT OR IGNORE`` on the unique id), in WAL mode
with ``synchronous=NORMAL``: a committed game survives the writing process being killed (kill -9);
only a power cut may lose the last few. Several processes may write at once (the tournament's
workers do); each waits up to ``BUSY_TIMEOUT_S`` for the write lock.

To replay game ``ID`` from the shell: ``tron tournament --db FILE --export-replays out.json`` writes
every game of the database to a replay file for ``tron replay out.json``; in Python,
``Store(path).replays()`` gives ``tron.replay.Replay`` objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tron.maps import Map, format_map, parse_map
from tron.replay import Replay

#: The schema version written to ``meta``; a database with another one is refused.
SCHEMA_VERSION = "1"
#: How long a writer waits for another process's write lock, in seconds.
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS maps (sha TEXT PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY,
    agents TEXT NOT NULL,
    map TEXT NOT NULL,
    map_sha TEXT NOT NULL REFERENCES maps(sha),
    number INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    agent_seed INTEGER NOT NULL,
    winner INTEGER NOT NULL,
    turns INTEGER NOT NULL,
    scores TEXT NOT NULL,
    crash_turns TEXT NOT NULL,
    causes TEXT NOT NULL,
    reason TEXT NOT NULL,
    moves TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
"""

_COLUMNS = (
    "id, agents, map, map_sha, number, seed, agent_seed, winner, turns, scores, crash_turns, "
    "causes, reason, moves"
)


class StoreError(Exception):
    """A file that is not a tournament database, or one of another schema version."""


def map_sha(game_map: Map) -> str:
    """A short content hash of a map (its text format), to tell maps of the same name apart."""
    return hashlib.sha256(format_map(game_map).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GameResult:
    """One finished tournament game.

    Attributes:
        id: the scheduled game's id (unique in a database).
        agents: the agent spec in each seat.
        map: the map.
        number: the game's number among the games of its group of agents.
        seed: the game's own seed (derived from its id).
        agent_seed: the seed its agents were built with (games played in one batch share it).
        winner: the winning seat, -1 for a draw.
        turns: turns played.
        scores: each seat's score: 1 a win, 1/2 a shared draw, 0 a loss (``TronBatch.outcome``).
        crash_turns: the turn each seat went out on, -1 for the winner.
        causes: how each seat went out ("wall", "trail", "head-on", "forfeit"), None: the winner.
        reason: one line saying how the game ended.
        moves: one ``tron.replay`` move string per seat (``NESW``, ``X`` for a forfeit).
    """

    id: str
    agents: tuple[str, ...]
    map: Map
    number: int
    seed: int
    agent_seed: int
    winner: int
    turns: int
    scores: tuple[float, ...]
    crash_turns: tuple[int, ...]
    causes: tuple[str | None, ...]
    reason: str
    moves: tuple[str, ...]

    def to_replay(self) -> Replay:
        """The game as a ``tron.replay.Replay`` (for ``save_replays`` and ``tron replay``)."""
        return Replay(
            map=self.map,
            agents=self.agents,
            moves=self.moves,
            winner=self.winner,
            scores=self.scores,
            turns=self.turns,
            seed=self.seed,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, the map by name."""
        return {
            "id": self.id,
            "agents": list(self.agents),
            "map": self.map.name,
            "number": self.number,
            "seed": self.seed,
            "agent_seed": self.agent_seed,
            "winner": self.winner,
            "turns": self.turns,
            "scores": list(self.scores),
            "crash_turns": list(self.crash_turns),
            "causes": list(self.causes),
            "reason": self.reason,
            "moves": list(self.moves),
        }


class Store:
    """A tournament database (created if missing). Use as a context manager or ``close`` it.

    Raises:
        StoreError: the file is not an SQLite database, or holds another kind of data.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(f"{self.path}: not a tournament database ({e})") from None
        except StoreError:
            self._db.close()
            raise
        self._known_maps: set[str] = set()

    def _check_version(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if row is not None and row[0] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: tournament database version {row[0]}, this program reads "
                f"version {SCHEMA_VERSION}"
            )
        # A database of another program may have its own table called games.
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(games)")}
        missing = [c for c in (*_COLUMNS.split(", "), "finished_at") if c not in columns]
        if missing:
            raise StoreError(
                f"{self.path}: not a tournament database (its games table lacks {missing[0]!r})"
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def add(self, game: GameResult) -> bool:
        """Store a finished game in one transaction; False if its id was already stored."""
        sha = map_sha(game.map)
        row = (
            game.id,
            json.dumps(list(game.agents)),
            game.map.name,
            sha,
            game.number,
            game.seed,
            game.agent_seed,
            game.winner,
            game.turns,
            json.dumps(list(game.scores)),
            json.dumps(list(game.crash_turns)),
            json.dumps(list(game.causes)),
            game.reason,
            json.dumps(list(game.moves)),
            dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if sha not in self._known_maps:
                self._db.execute(
                    "INSERT OR IGNORE INTO maps VALUES (?, ?, ?)",
                    (sha, game.map.name, format_map(game.map)),
                )
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO games ({_COLUMNS}, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._known_maps.add(sha)
        return cursor.rowcount == 1

    def finished_ids(self) -> set[str]:
        """The ids of every stored game."""
        return {row[0] for row in self._db.execute("SELECT id FROM games")}

    def count(self) -> int:
        """The number of stored games."""
        return int(self._db.execute("SELECT count(*) FROM games").fetchone()[0])

    def games(self, ids: Iterable[str] | None = None) -> list[GameResult]:
        """Stored games in the order they were written: all of them, or those of ``ids``."""
        maps = {
            sha: parse_map(text, name)
            for sha, name, text in self._db.execute("SELECT sha, name, text FROM maps")
        }
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM games ORDER BY rowid").fetchall()
        wanted = None if ids is None else set(ids)
        return [_from_row(row, maps) for row in rows if wanted is None or row[0] in wanted]

    def replays(self, ids: Iterable[str] | None = None) -> list[Replay]:
        """Stored games as replays (``tron.replay.save_replays`` writes them to a file)."""
        return [g.to_replay() for g in self.games(ids)]


def _from_row(row: tuple[Any, ...], maps: dict[str, Map]) -> GameResult:
    (gid, agents, _, sha, number, seed, agent_seed, winner, turns, scores, crash_turns, causes,
     reason, moves) = row  # fmt: skip
    return GameResult(
        id=gid,
        agents=tuple(json.loads(agents)),
        map=maps[sha],
        number=int(number),
        seed=int(seed),
        agent_seed=int(agent_seed),
        winner=int(winner),
        turns=int(turns),
        scores=tuple(float(s) for s in json.loads(scores)),
        crash_turns=tuple(int(t) for t in json.loads(crash_turns)),
        causes=tuple(json.loads(causes)),
        reason=reason,
        moves=tuple(json.loads(moves)),
    )
