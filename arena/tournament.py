"""Tournaments: a deterministic schedule of games, played batched and in parallel, stored in SQLite.

**Schedule** (``schedule``). Agents are grouped by the maps' number of players: with 2-player maps
every pair of agents is a group (round robin), with 3- and 4-player maps every set of 3 or 4 agents
(free-for-all); in a gauntlet (``vs``) only the groups that hold the gauntlet agent. A group's
agents are sorted by spec, so the order they are given in does not matter. Game ``k`` of a group of
``n`` agents seats them rotated by ``k % n`` (``group[r:] + group[:r]``: in a duel the seats
alternate) on map ``maps[(k // n) % len(maps)]`` (each map is played with every rotation before
the next map comes). A game's id is a hash of its seat order, its map (name and contents) and
``k``; its seed is derived from the id. Adding games, agents or maps later keeps the ids of the
games already scheduled, so a database grows into a league.

**Play** (``play_games``). The games of a group are cut into blocks of ``batch`` games (by game
number: block ``b`` holds games ``b * batch`` to ``(b + 1) * batch - 1``; by default 32, or 4 for a
group with a minimax agent, which searches game after game and gains nothing from a batch, while
small blocks spread its games evenly over the workers). A block is played in one ``TronBatch``: every agent is built once from its spec for the whole block (seeded with the seed of
the block's first game, plus its place in the group) and asked once per turn and seat for all the
running games in which it sits there, so a network moves in every game with one forward pass.
An agent that raises, returns something that is not a move, or answers ``FORFEIT`` (an external
bot that crashed, timed out or broke the protocol) loses that game by forfeit, with the reason
recorded; the tournament goes on.

**Parallelism** (``run_tournament``). Blocks run in ``workers`` processes, each block in one
process. Agents do not pickle, so each worker builds its agents from the specs. Every spec is
built once in the parent first (a bad spec fails before any game), which also compiles the
minimax kernels into numba's on-disk cache if they are not there yet, so the workers load them
instead of each compiling them. Workers are started with ``spawn``, not ``fork``: a fork of a
process that has started torch's or numba's threads can hang. They share the cores' threads
(``OMP_NUM_THREADS``), die with the parent (Linux ``PR_SET_PDEATHSIG``), and write every game to
the database the moment it ends, one transaction per game, so killing the tournament, even with
kill -9, loses no finished game.

**Resuming.** A re-run with the same database plays only the blocks that still miss a game, and
plays each such block whole, so the games of the block are played exactly as in an uninterrupted
run by agents that are deterministic given their seed (``greedy``, ``minimax:depth=N``,
``random:seed=N``...); games already stored are not stored again (``INSERT OR IGNORE`` on the id)
and keep their recorded result. Changing ``batch`` between runs changes which games share a block
(and so the agents' random streams), not which games are played.

**Ratings** (``standings``): Bradley-Terry on every game in the database (``arena.ratings``).
A game of ``n`` players counts as its ``n (n - 1) / 2`` pairwise comparisons: the survivor beats
everyone, a player beats those who went out before it, players who went out on the same turn draw.
Those comparisons are not independent in free-for-all games, so there the intervals are optimistic.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agents.base import FORFEIT, Agent
from agents.registry import make_agent
from arena.match import CAUSE_NAMES
from arena.ratings import fit_bradley_terry
from arena.store import GameResult, Store, map_sha
from tron.maps import Map
from tron.replay import FORFEIT as FORFEIT_LETTER
from tron.replay import MOVE_LETTERS
from tron.rules import Cause, TronBatch

logger = logging.getLogger(__name__)

#: Games of one group played together in one batch, by default: agents that act for a whole
#: batch at once (networks, scripted bots, external bots thinking side by side) gain from more.
DEFAULT_BATCH = 32
#: The default for a group with a search agent, which thinks game after game: small blocks
#: spread its games over the workers evenly.
SEARCH_BATCH = 4
#: Agent names (the spec before ":") that search game after game.
_SEARCH_AGENTS = frozenset({"minimax"})

_PHRASES = {
    Cause.WALL: "hit a wall",
    Cause.TRAIL: "hit a trail",
    Cause.HEAD_ON: "crashed head-on",
}
# Index -1 (a forfeit) picks the last letter; -2 marks a turn the player took no part in.
_LETTERS = np.array([*MOVE_LETTERS, FORFEIT_LETTER])
_NOT_PLAYING = -2
_PR_SET_PDEATHSIG = 1
_MAX_REASON = 160


class TournamentError(Exception):
    """A tournament that cannot be played as asked; the message is one line."""


# ------------------------------------------------------------------------------ schedule


@dataclass(frozen=True)
class ScheduledGame:
    """One game of the schedule.

    Attributes:
        id: hash of ``seats``, the map (name and contents) and ``number``.
        group: the agents of the game, sorted (the group it belongs to).
        number: the game's number among the games of its group (0-based).
        seats: the agent in each seat.
        map: the map.
        seed: derived from ``id``.
    """

    id: str
    group: tuple[str, ...]
    number: int
    seats: tuple[str, ...]
    map: Map
    seed: int


def game_id(seats: Sequence[str], game_map: Map, number: int) -> str:
    """The id of game ``number`` with agents ``seats`` (in seat order) on ``game_map``."""
    key = json.dumps([list(seats), game_map.name, map_sha(game_map), number])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _seed_of(gid: str) -> int:
    return int(hashlib.sha256(f"seed:{gid}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def schedule(
    agents: Sequence[str],
    maps: Sequence[Map],
    games: int | None = None,
    *,
    vs: str | None = None,
) -> list[ScheduledGame]:
    """Every game of a round robin (or a gauntlet against ``vs``), in play order.

    Args:
        agents: agent specs, all different (``vs`` may be among them or not).
        maps: the maps; those for ``n`` players make the groups of ``n`` agents.
        games: games per group (default: ``n`` per map for ``n``, every rotation on every map).
        vs: the gauntlet agent: only groups that hold it are scheduled.

    Raises:
        ValueError: repeated agents, too few agents for a map, no maps, or ``games < 1``.
    """
    if len(set(agents)) != len(agents):
        twice = next(a for a in agents if list(agents).count(a) > 1)
        raise ValueError(f"agent {twice!r} is given twice")
    if not maps:
        raise ValueError("a tournament needs at least one map")
    if games is not None and games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    others = sorted(a for a in agents if a != vs)
    by_players: dict[int, list[Map]] = defaultdict(list)
    for m in maps:
        by_players[m.n_players].append(m)
    out: list[ScheduledGame] = []
    for n, group_maps in sorted(by_players.items()):
        if vs is None:
            groups = list(itertools.combinations(others, n))
        else:
            groups = [tuple(sorted((vs, *rest))) for rest in itertools.combinations(others, n - 1)]
        if not groups:
            have = len(others) + (vs is not None)
            raise ValueError(f"map {group_maps[0].name!r} is for {n} players, got {have} agents")
        count = games if games is not None else n * len(group_maps)
        for group in groups:
            for k in range(count):
                r = k % n
                seats = group[r:] + group[:r]
                game_map = group_maps[(k // n) % len(group_maps)]
                gid = game_id(seats, game_map, k)
                out.append(ScheduledGame(gid, group, k, seats, game_map, _seed_of(gid)))
    return out


@dataclass(frozen=True)
class Block:
    """Games of one group played together in one batch by the same agent objects.

    Attributes:
        games: the games, in game-number order.
    """

    games: tuple[ScheduledGame, ...]

    @property
    def group(self) -> tuple[str, ...]:
        return self.games[0].group

    @property
    def agent_seed(self) -> int:
        """The seed the block's agents are built with (plus their place in the group)."""
        return self.games[0].seed


def default_batch(group: Sequence[str]) -> int:
    """The block size of a group: ``SEARCH_BATCH`` if a member searches, else ``DEFAULT_BATCH``."""
    searching = any(spec.partition(":")[0].strip() in _SEARCH_AGENTS for spec in group)
    return SEARCH_BATCH if searching else DEFAULT_BATCH


def blocks(games: Iterable[ScheduledGame], batch: int | None = None) -> list[Block]:
    """Cut scheduled games into blocks: game ``k`` of a group goes to its block ``k // batch``
    (``batch`` by default from ``default_batch``)."""
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    cut: dict[tuple[tuple[str, ...], int], list[ScheduledGame]] = {}
    for g in games:
        size = batch if batch is not None else default_batch(g.group)
        cut.setdefault((g.group, g.number // size), []).append(g)
    return [Block(tuple(sorted(v, key=lambda g: g.number))) for v in cut.values()]


# ------------------------------------------------------------------------------ play


def play_games(
    agents: Sequence[Agent],
    games: Sequence[ScheduledGame],
    *,
    agent_seed: int = 0,
    on_game: Callable[[GameResult], None] | None = None,
) -> list[GameResult]:
    """Play scheduled games of one group at once in one ``TronBatch``.

    Args:
        agents: one agent per member of the games' group, in the group's (sorted) order; the
            caller builds and closes them.
        games: games of one group (the same agents, any seats and maps).
        agent_seed: the seed the agents were built with (recorded in each result).
        on_game: called with each result as its game ends.

    Returns:
        The results, in the order the games ended.

    Raises:
        ValueError: games of different groups, or not one agent per member of the group.
    """
    if not games:
        return []
    group = games[0].group
    if any(g.group != group for g in games):
        raise ValueError("play_games plays games of one group of agents at a time")
    if len(agents) != len(group):
        raise ValueError(f"{len(agents)} agents for a group of {len(group)}")
    n_games, n_players = len(games), len(group)
    maps: list[Map] = []
    for g in games:
        if g.map not in maps:
            maps.append(g.map)
    batch = TronBatch(maps, n_games, n_players=n_players)
    batch.reset(map_index=np.array([maps.index(g.map) for g in games]))
    # seat_of[g, j]: the seat of group member j in game g.
    seat_of = np.array([[g.seats.index(a) for a in group] for g in games], dtype=np.int64)
    explain: list[dict[int, str]] = [{} for _ in games]
    history: list[NDArray[np.int8]] = []  # per turn, (B, P) moves, -1 forfeit, -2 no part
    for agent in agents:
        agent.reset(np.arange(n_games))
    results: list[GameResult] = []
    while not batch.done.all():
        running = ~batch.done
        actions = np.zeros((n_games, n_players), dtype=np.int64)
        forfeit = np.zeros((n_games, n_players), dtype=bool)
        for j, agent in enumerate(agents):
            for seat in range(n_players):
                asked = np.flatnonzero(running & batch.alive[:, seat] & (seat_of[:, j] == seat))
                if asked.size == 0:
                    continue
                moves = _ask(agent, batch, seat, asked, explain)
                actions[asked, seat] = np.maximum(moves, 0)
                forfeit[asked, seat] = moves == FORFEIT
        taking_part = running[:, None] & batch.alive
        history.append(
            np.where(taking_part, np.where(forfeit, FORFEIT, actions), _NOT_PLAYING).astype(np.int8)
        )
        ended = np.flatnonzero(batch.step(actions, forfeit=forfeit).ended)
        if ended.size:
            played = np.stack(history)  # (T, B, P)
            for b in ended.tolist():
                result = _result(batch, b, games[b], played[:, b], explain[b], agent_seed)
                results.append(result)
                if on_game is not None:
                    on_game(result)
    return results


def _ask(
    agent: Agent,
    batch: TronBatch,
    seat: int,
    games: NDArray[np.intp],
    explain: list[dict[int, str]],
) -> NDArray[np.int64]:
    """The agent's moves for ``games`` (``FORFEIT`` where it gives up, crashes or errs); the
    reason of each forfeit goes to ``explain[game][seat]``."""
    try:
        chosen = np.asarray(agent.act(batch, seat, games))
    except Exception as e:  # any error of the agent is its forfeit, not the tournament's end
        logger.warning("agent %r raised in seat %d", agent.name, seat, exc_info=True)
        reason = _short(f"crashed ({type(e).__name__}: {e})")
        for g in games:
            explain[int(g)][seat] = reason
        return np.full(games.size, FORFEIT, dtype=np.int64)
    valid = (
        chosen.shape == (games.size,)
        and np.issubdtype(chosen.dtype, np.integer)
        and bool(((chosen >= FORFEIT) & (chosen <= 3)).all())
    )
    if not valid:
        reason = _short(
            f"broke the interface: act returned {chosen.dtype} {chosen.tolist()!r} for "
            f"{games.size} games (one Direction 0..3 or FORFEIT per game)"
        )
        for g in games:
            explain[int(g)][seat] = reason
        return np.full(games.size, FORFEIT, dtype=np.int64)
    out = chosen.astype(np.int64)
    for i in np.flatnonzero(out == FORFEIT):
        explain[int(games[i])][seat] = _short(agent.forfeit_reason(int(games[i])))
    return out


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "forfeited"
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def _result(
    batch: TronBatch,
    b: int,
    game: ScheduledGame,
    played: NDArray[np.int8],
    explain: dict[int, str],
    agent_seed: int,
) -> GameResult:
    n = batch.n_players
    moves = tuple(
        "".join(_LETTERS[played[played[:, p] != _NOT_PLAYING, p]].tolist()) for p in range(n)
    )
    causes = [Cause(int(c)) for c in batch.cause[b]]
    crash_turns = tuple(int(t) for t in batch.crash_turn[b])
    winner = int(batch.winner[b])
    return GameResult(
        id=game.id,
        agents=game.seats,
        map=game.map,
        number=game.number,
        seed=game.seed,
        agent_seed=agent_seed,
        winner=winner,
        turns=int(batch.turn[b]),
        scores=tuple(batch.outcome(b)),
        crash_turns=crash_turns,
        causes=tuple(CAUSE_NAMES.get(c) for c in causes),
        reason=_reason(game.seats, winner, causes, crash_turns, explain),
        moves=moves,
    )


def _reason(
    seats: Sequence[str],
    winner: int,
    causes: Sequence[Cause],
    crash_turns: Sequence[int],
    explain: dict[int, str],
) -> str:
    """One line: who went out how (in the order they went out), "draw: " first for a draw."""
    out = sorted((t, p) for p, t in enumerate(crash_turns) if t >= 0)

    def phrase(p: int) -> str:
        if causes[p] == Cause.FORFEIT:
            return f"{seats[p]} forfeited: {explain.get(p, 'forfeited')}"
        return f"{seats[p]} {_PHRASES[causes[p]]}"

    if len(seats) == 2:
        if winner < 0 and all(c == Cause.HEAD_ON for c in causes):
            return "draw: head-on collision"
        text = " and ".join(phrase(p) for _, p in out)
    else:
        text = "; ".join(f"{phrase(p)} on turn {t}" for t, p in out)
    return ("draw: " if winner < 0 else "") + text


# ------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class TournamentRun:
    """What ``run_tournament`` did.

    Attributes:
        scheduled: games in the schedule.
        already: of those, games found in the database at the start.
        played: games played and stored by this run.
        forfeits: this run's games that ended with a forfeit.
        seconds: wall-clock time of the run.
    """

    scheduled: int
    already: int
    played: int
    forfeits: list[GameResult]
    seconds: float


def check_specs(specs: Iterable[str]) -> None:
    """Build and close each agent once, so a bad spec fails before any game.

    Raises:
        SpecError: a spec that cannot be built (the message says why).
    """
    for spec in specs:
        make_agent(spec).close()


def run_tournament(
    specs: Sequence[str],
    maps: Sequence[Map],
    db: str | os.PathLike[str],
    *,
    games: int | None = None,
    vs: str | None = None,
    batch: int | None = None,
    workers: int | None = None,
    on_game: Callable[[GameResult], None] | None = None,
) -> TournamentRun:
    """Play every scheduled game that the database ``db`` does not hold yet, and store it.

    Args:
        specs: agent specs (``agents.registry``); ``vs`` is added if missing.
        maps: the maps (see ``schedule``).
        db: the SQLite database (created if missing).
        games: games per group (see ``schedule``).
        vs: the gauntlet agent, or None for a round robin.
        batch: games of a group played together in one batch (see the module docstring;
            default: ``default_batch``).
        workers: processes playing blocks at once (default ``os.cpu_count()``); 1 plays in this
            process.
        on_game: called in this process with each game stored by this run.

    Raises:
        SpecError: a spec that cannot be built.
        ValueError: a schedule that cannot be made (see ``schedule``), ``batch`` or ``workers``
            below 1.
        StoreError: ``db`` is not a tournament database.
        TournamentError: a worker failed (the games stored until then are kept).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    everyone = list(specs) if vs is None or vs in specs else [*specs, vs]
    plan = schedule(everyone, maps, games, vs=vs)
    check_specs(everyone)
    t0 = time.perf_counter()
    forfeits: list[GameResult] = []
    played = 0

    def stored(result: GameResult) -> None:
        nonlocal played
        played += 1
        if "forfeit" in result.causes:
            forfeits.append(result)
        if on_game is not None:
            on_game(result)

    with Store(db) as store:
        done = store.finished_ids()
        already = sum(g.id in done for g in plan)
        todo = [b for b in blocks(plan, batch) if any(g.id not in done for g in b.games)]
        n_workers = min(workers or os.cpu_count() or 1, len(todo))
        logger.info(
            "%d games scheduled, %d stored already; %d blocks to play on %d workers",
            len(plan),
            already,
            len(todo),
            n_workers,
        )
        if n_workers <= 1:
            for block in todo:
                _play_block(block, store, stored)
        else:
            _play_in_workers(todo, Path(db), n_workers, stored)
    return TournamentRun(len(plan), already, played, forfeits, time.perf_counter() - t0)


def _play_block(block: Block, store: Store, stored: Callable[[GameResult], None]) -> int:
    """Build the block's agents, play it, store each new game as it ends; returns how many."""
    agents: list[Agent] = []
    count = 0

    def finished(result: GameResult) -> None:
        nonlocal count
        if store.add(result):
            count += 1
            stored(result)

    try:
        for j, spec in enumerate(block.group):
            agents.append(make_agent(spec, seed=block.agent_seed + j))
        play_games(agents, block.games, agent_seed=block.agent_seed, on_game=finished)
    finally:
        for agent in agents:
            try:
                agent.close()
            except Exception:  # one agent failing to close must not keep the others open
                logger.warning("closing agent %r failed", agent.name, exc_info=True)
    return count


# A worker's database and the queue to the parent, set by _init_worker.
_worker: tuple[Store, Any] | None = None


def _init_worker(db: str, results: Any, parent: int, threads: int) -> None:
    """Runs first in each worker: die with the parent, share the cores, open the database."""
    global _worker
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl: nobody would kill us
            os._exit(1)
    # Ctrl-C reaches the workers too: leave at once rather than play the blocks already queued.
    # Exiting mid-game is as safe as kill -9 (SQLite rolls back an unfinished write; external
    # bots die with us).
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    _worker = (Store(db), results)


def _worker_block(block: Block) -> int:
    assert _worker is not None, "_init_worker did not run"
    store, results = _worker
    return _play_block(block, store, results.put)


def _play_in_workers(
    todo: list[Block], db: Path, n_workers: int, stored: Callable[[GameResult], None]
) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    received = 0
    pool = ProcessPoolExecutor(
        n_workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(str(db), results, os.getpid(), threads),
    )
    try:
        futures: dict[Future[int], Block] = {pool.submit(_worker_block, b): b for b in todo}
        running = set(futures)
        sent = 0
        while running:
            finished, running = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            received += _drain(results, stored)
            for f in finished:
                try:
                    sent += f.result()
                except BrokenProcessPool:
                    raise TournamentError(
                        "a worker process died unexpectedly (killed, out of memory, or an "
                        "error shown above); the games stored so far are kept: run the same "
                        "command again to resume"
                    ) from None
                except Exception as e:
                    names = " vs ".join(futures[f].group)
                    raise TournamentError(
                        f"a worker failed playing {names}: {type(e).__name__}: {e}"
                    ) from None
        while received < sent:  # results the workers put just before returning
            try:
                stored(results.get(timeout=60.0))
            except queue.Empty:
                logger.warning("%d stored games were not reported back", sent - received)
                break
            received += 1
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        results.close()


def _drain(results: Any, stored: Callable[[GameResult], None]) -> int:
    """Report every result waiting in the queue; returns how many."""
    count = 0
    with contextlib.suppress(queue.Empty):
        while True:
            stored(results.get_nowait())
            count += 1
    return count


# ------------------------------------------------------------------------------ ratings


@dataclass(frozen=True)
class Standing:
    """One agent's line of the standings.

    Attributes:
        agent: the agent's spec.
        rating: Bradley-Terry rating on the Elo scale (mean of all agents 1500).
        ci95: its 95 % confidence interval (Laplace approximation).
        games: games played.
        score: points per pairwise comparison (a win 1, a draw 1/2; in a duel, per game).
        wins, draws, losses: games won outright, drawn (sharing the last turn), lost.
    """

    agent: str
    rating: float
    ci95: tuple[float, float]
    games: int
    score: float
    wins: int
    draws: int
    losses: int

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "rating": round(self.rating, 1),
            "ci95": [round(self.ci95[0], 1), round(self.ci95[1], 1)],
            "games": self.games,
            "score": round(self.score, 4),
            "wins": self.wins,
            "draws": self.draws,
            "losses": self.losses,
        }


def standings(results: Iterable[GameResult]) -> list[Standing]:
    """Ratings and tallies of every agent in ``results``, best rating first."""
    names: dict[str, int] = {}
    tallies: list[list[int]] = []  # games, wins, draws, losses
    comparisons: list[tuple[int, int, float]] = []  # (i, j, points of i against j)
    for r in results:
        idx = []
        for a in r.agents:
            if a not in names:
                names[a] = len(names)
                tallies.append([0, 0, 0, 0])
            idx.append(names[a])
        # The winner never went out: it outlasts everyone.
        out = [math.inf if t < 0 else t for t in r.crash_turns]
        for s, i in enumerate(idx):
            t = tallies[i]
            t[0] += 1
            if r.winner == s:
                t[1] += 1
            elif r.winner < 0 and r.scores[s] > 0:
                t[2] += 1
            else:
                t[3] += 1
        for s, u in itertools.combinations(range(len(idx)), 2):
            won = 1.0 if out[s] > out[u] else 0.0 if out[s] < out[u] else 0.5
            comparisons.append((idx[s], idx[u], won))
    n = len(names)
    if n == 0:
        return []
    points = np.zeros((n, n))
    counts = np.zeros((n, n))
    for i, j, p in comparisons:
        points[i, j] += p
        points[j, i] += 1.0 - p
        counts[i, j] += 1.0
        counts[j, i] += 1.0
    fit = fit_bradley_terry(points, counts)
    elo, ci = fit.elo(), fit.elo_ci95()
    table = [
        Standing(
            agent=a,
            rating=float(elo[i]),
            ci95=(float(ci[i, 0]), float(ci[i, 1])),
            games=tallies[i][0],
            score=float(points[i].sum() / counts[i].sum()) if counts[i].sum() else 0.0,
            wins=tallies[i][1],
            draws=tallies[i][2],
            losses=tallies[i][3],
        )
        for a, i in names.items()
    ]
    return sorted(table, key=lambda s: (-s.rating, s.agent))


def format_standings(table: Sequence[Standing]) -> str:
    """The standings as a text table, one line per agent."""
    width = max([len("agent"), *(len(s.agent) for s in table)])
    header = (
        f"{'rank':>4}  {'agent':<{width}}  {'rating':>6}  {'95% CI':>13}  {'games':>5}  "
        f"{'W-D-L':>11}  {'score':>7}"
    )
    lines = [header, "-" * len(header)]
    for rank, s in enumerate(table, start=1):
        ci = f"[{s.ci95[0]:.0f}, {s.ci95[1]:.0f}]"
        wdl = f"{s.wins}-{s.draws}-{s.losses}"
        lines.append(
            f"{rank:>4}  {s.agent:<{width}}  {s.rating:>6.0f}  {ci:>13}  {s.games:>5}  "
            f"{wdl:>11}  {100 * s.score:>6.1f}%"
        )
    return "\n".join(lines) + "\n"


def plot_standings(table: Sequence[Standing], path: str | os.PathLike[str], title: str) -> None:
    """Write the ratings with their 95 % intervals as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    order = list(reversed(table))  # best at the top
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.4 * len(order)), dpi=120)
    try:
        y = np.arange(len(order))
        ratings = np.array([s.rating for s in order])
        err = np.array(
            [[s.rating - s.ci95[0] for s in order], [s.ci95[1] - s.rating for s in order]]
        )
        ax.errorbar(ratings, y, xerr=err, fmt="o", color="tab:blue", ecolor="tab:gray", capsize=3)
        ax.set_yticks(y, [s.agent for s in order])
        ax.set_xlabel("rating (Elo scale, mean 1500), 95 % CI")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            fig.savefig(tmp, format="png")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    finally:
        plt.close(fig)
