"""The game loop of ``tron play`` and ``tron watch``: rounds, ticks, keys, agents that think aside.

Two layers, so the rules of the session can be tested without a window or a clock:

* ``GameSession`` is the game as people see it: a countdown, then turns at ``speed`` ticks per
  second, pause, restart, the score across rounds, the replay of every round. It knows no pygame:
  every method that depends on time takes ``now`` (seconds, any monotonic origin) as an argument,
  so a test steps it with made-up times and never sleeps. The terminal front end
  (``arena.terminal``) drives the same object.
* ``PlaySession`` puts a ``GameSession`` in a pygame window: ``handle_event`` turns keys into
  presses, pause, restart and quit; ``draw`` paints a frame; ``run_window`` is the real loop
  (events, ``update``, ``draw``, about 60 frames a second whatever the tick rate).

Timing. The window runs at its own frame rate; the game advances one turn when a tick is due
(every ``1 / speed`` seconds) and every agent's move for that turn is ready. Each agent thinks in a
worker thread of its own (``Thinker``) on a snapshot of the board, started right after the previous
turn (or at the start of the countdown, which gives it the countdown as extra time for its first
move, as the AI Challenge did). A slow agent therefore never freezes the window: the loop keeps
drawing and reading keys, the turn waits for the agent, and the HUD says who is being waited for.
The game never invents a move for an agent. An agent that raises forfeits the round.

Agents named by a spec on the command line think in a child process each (``ProcessAgent``, driven
from the agent's thread): numba code holds the GIL for a whole search call unless compiled with
``nogil=True``, so a search in a thread stalls the window for as long. Measured on the 2-core
machine (loaded by other work), two ``minimax:level=5`` on room15 at 10 ticks/s: frames up to
164 ms apart (p99 157 ms) with the agents in threads, up to 48 ms (p99 43 ms) in processes.

Humans are agents too (``agents.human.HumanAgent``): their moves come from the key buffer, read at
the moment the tick is played, so a press just before the tick counts for that tick.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from agents.base import FORFEIT, Agent
from agents.human import HumanAgent, start_heading
from tron.maps import Map
from tron.replay import Replay, ReplayRecorder
from tron.rules import DELTAS, Cause, Direction, TronBatch

if TYPE_CHECKING:
    import pygame

    from tron.render.pygame_view import Frame, FrameDrawer

logger = logging.getLogger(__name__)

#: The map ``tron play`` picks for each number of players when none is given.
DEFAULT_MAPS = {2: "room15", 3: "room17-3p", 4: "room16-4p"}
#: Where the shipped ACKTR agent lives; ``tron play`` prefers it as the opponent once it exists.
ACKTR_MODEL = Path(__file__).resolve().parents[1] / "models" / "acktr_tron.pt"
#: The strongest search agent, the opponent until a trained one is shipped.
STRONGEST_MINIMAX = "minimax:level=5"
#: Speeds (ticks per second) that the + and - keys step through.
SPEED_STEPS = (2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 60.0)
#: Seconds "GO!" stays up when a round starts.
GO_SHOWN_S = 0.5
#: A turn that waits longer than this for an agent gets a "waiting for" note in the HUD.
LATE_NOTE_S = 0.25

N, E, S, W = Direction
_GAME = np.zeros(1, dtype=np.intp)  # every session plays game 0 of a one-game batch


def default_opponent(speed: float = 10.0) -> str:
    """The spec of the strongest agent available: the shipped ACKTR agent, else the best minimax.

    The minimax's 100 ms a move is cut to three quarters of a tick when the game runs faster than
    7.5 ticks/s, so that the agent keeps up with ``speed`` (a move costs its budget plus ~10 ms of
    passing the board to its process).
    """
    if ACKTR_MODEL.exists():
        return "acktr"
    budget = int(0.75 * 1000.0 / speed)
    return STRONGEST_MINIMAX if budget >= 100 else f"{STRONGEST_MINIMAX},ms={max(1, budget)}"


class Phase(Enum):
    """Where a session is."""

    COUNTDOWN = "countdown"
    RUNNING = "running"
    PAUSED = "paused"
    ROUND_OVER = "round over"
    FINISHED = "finished"


@dataclass(frozen=True)
class CrashSite:
    """Where a bike crashed, in map coordinates (fractions: the impact point on a cell's edge).

    A bike that hits a wall or a trail stops at the edge between its head and the square it moved
    into; bikes that meet head-on meet in the middle of the square they both moved into.
    """

    seat: int
    row: float
    col: float
    cause: Cause


def crash_site(batch: TronBatch, game: int, seat: int, move: int) -> CrashSite:
    """Where player ``seat`` crashed on the last turn, having tried to move ``move`` (-1: forfeit).

    A crashed bike stays on its last square (the engine does not move it), so the impact point
    is found from that square and the move it tried.
    """
    r, c = (int(v) for v in batch.head_positions()[game, seat])
    cause = Cause(int(batch.cause[game, seat]))
    if move < 0:  # a forfeit: the bike stops where it is
        return CrashSite(seat, float(r), float(c), cause)
    dr, dc = (int(v) for v in DELTAS[move])
    reach = 1.0 if cause is Cause.HEAD_ON else 0.5
    return CrashSite(seat, r + dr * reach, c + dc * reach, cause)


class Thinker:
    """Runs one agent's calls (``reset``, ``act``, ``close``) in order, in a thread of its own.

    The thread is a daemon, so an agent stuck in a long search never keeps the program from quitting.
    With ``threaded=False`` every call runs at once in the caller's thread instead (deterministic
    tests; agents that answer instantly).
    """

    def __init__(self, agent: Agent, seat: int, *, threaded: bool = True) -> None:
        self.agent = agent
        self.seat = seat
        self.threaded = threaded
        self._jobs: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ]
        self._jobs = queue.SimpleQueue()
        self._move: Future[NDArray[np.int8]] | None = None
        if threaded:
            name = f"tron-seat{seat}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._run(*job)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self.threaded:
            self._jobs.put((future, fn, args))
        else:
            self._run(future, fn, args)
        return future

    @staticmethod
    def _run(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # handed to whoever waits on the future
                future.set_exception(e)

    def reset(self) -> None:
        """Forget any move in flight and reset the agent (after whatever it is doing now)."""
        self._move = None
        self._submit(self.agent.reset, _GAME).add_done_callback(self._log_failure)

    def think(self, batch: TronBatch) -> None:
        """Start choosing a move for the current position (a snapshot: the batch may move on)."""
        self._move = self._submit(self.agent.act, copy.deepcopy(batch), self.seat, _GAME)

    @property
    def ready(self) -> bool:
        """Whether the move asked for last is ready (or none was asked for)."""
        return self._move is None or self._move.done()

    def move(self) -> int | None:
        """The chosen ``Direction`` value, waiting for it if needed; ``None`` if the agent failed."""
        if self._move is None:
            return None
        try:
            move = int(np.asarray(self._move.result()).reshape(-1)[0])
        except Exception:
            logger.exception("agent %s (seat %d) failed to move", self.agent.name, self.seat)
            return None
        finally:
            self._move = None
        if move == FORFEIT:
            logger.warning(
                "%s (seat %d) forfeits: %s",
                self.agent.name,
                self.seat,
                self.agent.forfeit_reason(0),
            )
            return None
        if not 0 <= move <= 3:
            logger.error(
                "agent %s (seat %d) chose %r, not a direction", self.agent.name, self.seat, move
            )
            return None
        return move

    def close(self) -> None:
        """Close the agent after its last call, then stop the thread."""
        self._move = None
        self._submit(self.agent.close).add_done_callback(self._log_failure)
        if self.threaded:
            self._jobs.put(None)

    def _log_failure(self, future: Future[Any]) -> None:
        if future.exception() is not None:
            logger.error("agent %s (seat %d): %s", self.agent.name, self.seat, future.exception())


class GameSession:
    """Rounds of Tron between humans and agents, one game at a time, driven by ``update(now)``.

    Call ``start(now)`` once, then ``update(now)`` every frame; ``press``, ``toggle_pause``,
    ``restart``, ``next_round`` and ``quit`` are what the keys do. ``close`` when done.

    Attributes:
        batch: the one-game batch being played (the front ends read it to draw).
        names: the display name of each seat.
        humans: the seats played by people, by seat.
        scores: points across rounds (1 a win, a draw shared, ``TronBatch.outcome``).
        wins: rounds won by each seat.
        round: the number of the current round (1 after ``start``).
        phase: where the session is.
        replays: every finished round, in order.
        crash_sites: where bikes crashed in the current round.
        last_actions: (P,) the moves of the last turn (-1 for seats that did not move).
        last_tick_at: when the last turn was played (the window slides heads in after it).
    """

    def __init__(
        self,
        game_map: Map,
        agents: Sequence[Agent],
        *,
        names: Sequence[str] | None = None,
        speed: float = 10.0,
        countdown: float = 3.0,
        rounds: int | None = None,
        auto_next: float | None = None,
        seed: int | None = None,
        threaded: bool = True,
    ) -> None:
        """Set up a session; nothing runs until ``start``.

        Args:
            game_map: the map every round is played on.
            agents: one agent per seat (2 to 4); ``HumanAgent`` seats are played from the keyboard.
            names: display names (default: each agent's ``name``).
            speed: turns per second.
            countdown: seconds of countdown before each round.
            rounds: end the session after this many rounds (default: play until quit).
            auto_next: start the next round by itself this many seconds after a round ends
                (default: wait for ``next_round``).
            seed: recorded in the replays.
            threaded: agents think in worker threads (``Thinker``); False runs them inline
                when a turn is played, which makes a session fully deterministic in tests.
        """
        n = len(agents)
        if not 2 <= n <= 4:
            raise ValueError(f"a game needs 2 to 4 players, got {n}")
        if len(game_map.starts) < n:
            raise ValueError(
                f"map {game_map.name!r} has {len(game_map.starts)} start squares, "
                f"not enough for {n} players"
            )
        if speed <= 0:
            raise ValueError(f"speed must be positive (ticks per second), got {speed}")
        if rounds is not None and rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        self.batch = TronBatch([game_map], 1, n_players=n)
        self.agents = list(agents)
        self.names = list(names) if names is not None else [a.name for a in agents]
        if len(self.names) != n:
            raise ValueError(f"{len(self.names)} names for {n} players")
        self.speed = float(speed)
        self.countdown = float(countdown)
        self.rounds = rounds
        self.auto_next = auto_next
        self.seed = seed
        self.humans = {s: a for s, a in enumerate(agents) if isinstance(a, HumanAgent)}
        self._thinkers = {
            s: Thinker(a, s, threaded=threaded)
            for s, a in enumerate(agents)
            if not isinstance(a, HumanAgent)
        }
        self.scores = [0.0] * n
        self.wins = [0] * n
        self.round = 0
        self.phase = Phase.COUNTDOWN
        self.replays: list[Replay] = []
        self.crash_sites: list[CrashSite] = []
        self.last_actions = np.full(n, -1, dtype=np.int8)
        self.last_tick_at = 0.0
        self._recorder = ReplayRecorder(self.batch, 0, self.names, seed)
        self._phase_end = 0.0  # end of the countdown, or when the next round starts by itself
        self._next_tick = 0.0
        self._paused_from = Phase.RUNNING
        self._paused_left = 0.0
        self._go_at = 0.0
        self._started = False

    # ------------------------------------------------------------------ controls

    @property
    def period(self) -> float:
        """Seconds per turn."""
        return 1.0 / self.speed

    @property
    def n_players(self) -> int:
        return self.batch.n_players

    @property
    def match_over(self) -> bool:
        """Whether the last round of a session with a round limit has been played."""
        return (
            self.rounds is not None
            and self.round >= self.rounds
            and self.phase in (Phase.ROUND_OVER, Phase.FINISHED)
        )

    def start(self, now: float) -> None:
        """Begin the first round's countdown."""
        if self._started:
            raise RuntimeError("the session has already started")
        self._started = True
        self._new_round(now)

    def press(self, seat: int, direction: Direction) -> None:
        """A human seat's key press; ignored while paused or between rounds."""
        if self.phase in (Phase.COUNTDOWN, Phase.RUNNING) and seat in self.humans:
            self.humans[seat].press(direction)

    def toggle_pause(self, now: float) -> None:
        """Pause a countdown or a running round, or resume it with the time it had left."""
        if self.phase in (Phase.COUNTDOWN, Phase.RUNNING):
            self._paused_from = self.phase
            deadline = self._phase_end if self.phase is Phase.COUNTDOWN else self._next_tick
            self._paused_left = max(0.0, deadline - now)
            self.phase = Phase.PAUSED
        elif self.phase is Phase.PAUSED:
            self.phase = self._paused_from
            if self.phase is Phase.COUNTDOWN:
                self._phase_end = now + self._paused_left
            else:
                self._next_tick = now + self._paused_left

    def restart(self, now: float) -> None:
        """Start the current round again from its countdown; an unfinished round is not scored.

        After a round has ended there is nothing to restart: it starts the next round instead.
        """
        if self.phase is Phase.ROUND_OVER:
            self.next_round(now)
        elif self.phase is not Phase.FINISHED:
            self.round -= 1
            self._new_round(now)

    def next_round(self, now: float) -> None:
        """After a round: start the next one, or finish when the round limit is reached."""
        if self.phase is not Phase.ROUND_OVER:
            return
        if self.match_over:
            self.phase = Phase.FINISHED
        else:
            self._new_round(now)

    def quit(self) -> None:
        """End the session (the front end's loop stops)."""
        self.phase = Phase.FINISHED

    def change_speed(self, steps: int) -> None:
        """Step the speed up or down through ``SPEED_STEPS``."""
        faster = [s for s in SPEED_STEPS if s > self.speed]
        slower = [s for s in SPEED_STEPS if s < self.speed]
        if steps > 0 and faster:
            self.speed = faster[min(steps, len(faster)) - 1]
        elif steps < 0 and slower:
            self.speed = slower[-min(-steps, len(slower))]

    def close(self) -> None:
        """Close every agent (in its own thread, after the call it is busy with)."""
        for thinker in self._thinkers.values():
            thinker.close()
        for human in self.humans.values():
            human.close()
        self._thinkers.clear()

    # ------------------------------------------------------------------ time

    def countdown_left(self, now: float) -> float:
        """Seconds of countdown left (0 outside a countdown)."""
        if self.phase is Phase.COUNTDOWN:
            return max(0.0, self._phase_end - now)
        if self.phase is Phase.PAUSED and self._paused_from is Phase.COUNTDOWN:
            return self._paused_left
        return 0.0

    def waiting_for(self, now: float) -> list[str]:
        """Agents whose move for a due turn is late by more than ``LATE_NOTE_S``."""
        if self.phase is not Phase.RUNNING or now < self._next_tick + LATE_NOTE_S:
            return []
        return [self.names[s] for s, t in self._thinkers.items() if not t.ready]

    def update(self, now: float) -> bool:
        """Advance the session to time ``now``: end a countdown, play a due turn, start a round.

        Returns:
            Whether a turn was played.
        """
        if self.phase is Phase.COUNTDOWN and now >= self._phase_end:
            self.phase = Phase.RUNNING
            self._next_tick = self._phase_end + self.period
        if self.phase is Phase.RUNNING and now >= self._next_tick and self.agents_ready:
            self.tick(now)
            self._next_tick += self.period
            # An agent that ran late does not earn a burst of catch-up turns.
            if self._next_tick <= now:
                self._next_tick = now + self.period
            return True
        if self.phase is Phase.ROUND_OVER and self.auto_next is not None and now >= self._phase_end:
            self.next_round(now)
        return False

    @property
    def agents_ready(self) -> bool:
        """Whether every agent has its move for the next turn."""
        return all(t.ready for t in self._thinkers.values())

    def tick(self, now: float = 0.0) -> None:
        """Play one turn now: the humans' buffered presses and the agents' moves (waited for)."""
        if self.phase not in (Phase.RUNNING, Phase.COUNTDOWN):
            raise RuntimeError(f"no turn can be played while the session is {self.phase.value}")
        self.phase = Phase.RUNNING
        batch = self.batch
        n = self.n_players
        actions = np.zeros((1, n), dtype=np.int8)
        forfeit = np.zeros((1, n), dtype=bool)
        for seat in range(n):
            if not batch.alive[0, seat]:
                continue
            if seat in self.humans:
                actions[0, seat] = self.humans[seat].act(batch, seat, _GAME)[0]
            else:
                move = self._thinkers[seat].move()
                if move is None:
                    forfeit[0, seat] = True
                else:
                    actions[0, seat] = move
        moving = batch.alive[0].copy()
        self._recorder.record(actions, forfeit)
        result = batch.step(actions, forfeit=forfeit)
        self.last_tick_at = now
        self.last_actions = np.where(moving & ~forfeit[0], actions[0], -1).astype(np.int8)
        for crashed in np.flatnonzero(result.crashed[0]):
            move = int(self.last_actions[crashed])
            self.crash_sites.append(crash_site(batch, 0, int(crashed), move))
        if result.ended[0]:
            self._end_round(now)
        else:
            self._think()

    # ------------------------------------------------------------------ views

    def heading(self, seat: int) -> Direction:
        """The direction seat ``seat`` is moving in (its start direction before the first turn)."""
        last = int(self.batch.last_move[0, seat])
        return Direction(last) if last >= 0 else start_heading(self.batch, 0, seat)

    def result_text(self) -> str:
        """A line about the last finished round: who won, or the draw."""
        if not self.replays:
            return ""
        winner = self.replays[-1].winner
        if winner < 0:
            return "Draw"
        name = self.names[winner]
        return f"{name} win" if name == "You" else f"{name} wins"

    def frame(self, now: float, hint: str = "") -> Frame:
        """What the window shows at time ``now``, with the front end's key ``hint`` in the footer."""
        from tron.render.pygame_view import Banner, Frame

        batch = self.batch
        banner = None
        slide = 1.0
        if self.phase is Phase.COUNTDOWN or (
            self.phase is Phase.PAUSED and self._paused_from is Phase.COUNTDOWN
        ):
            left = self.countdown_left(now)
            banner = Banner(str(max(1, int(np.ceil(left)))), f"Round {self.round}")
            if self.phase is Phase.PAUSED:
                banner = Banner("Paused", "Space to resume")
        elif self.phase is Phase.RUNNING:
            if now < self._go_at + GO_SHOWN_S:
                banner = Banner("GO!", "")
            slide = min(1.0, (now - self.last_tick_at) / (0.6 * self.period))
        elif self.phase is Phase.PAUSED:
            banner = Banner("Paused", "Space to resume · R restart · Esc quit")
        elif self.phase in (Phase.ROUND_OVER, Phase.FINISHED):
            winner = self.replays[-1].winner if self.replays else -1
            if self.match_over:
                then = "Space or Esc to quit"
            elif self.auto_next is not None:
                then = "next round in a moment…"
            else:
                then = "Space for the next round · Esc to quit"
            banner = Banner(self.result_text(), then, seat=winner)
        n = self.n_players
        waiting = self.waiting_for(now)
        status = f"waiting for {', '.join(waiting)}…" if waiting else ""
        return Frame(
            batch=batch,
            names=tuple(self.names),
            scores=tuple(self.scores),
            crash_sites=tuple((c.seat, c.row, c.col) for c in self.crash_sites),
            # Where the humans set off; agents choose their own first move.
            headings=tuple(int(self.heading(s)) if s in self.humans else -1 for s in range(n))
            if int(batch.turn[0]) == 0
            else None,
            last_moves=tuple(int(a) for a in self.last_actions),
            slide=slide,
            info=f"Round {self.round}  ·  turn {int(batch.turn[0])}  ·  {self.speed:g} ticks/s",
            status=status,
            hint=hint,
            banner=banner,
            time=now,
        )

    # ------------------------------------------------------------------ rounds

    def _new_round(self, now: float) -> None:
        self.round += 1
        self.batch.reset()
        for human in self.humans.values():
            human.reset(_GAME)
        for thinker in self._thinkers.values():
            thinker.reset()
        self._recorder = ReplayRecorder(self.batch, 0, self.names, self.seed)
        self.crash_sites = []
        self.last_actions = np.full(self.n_players, -1, dtype=np.int8)
        self.last_tick_at = now
        self.phase = Phase.COUNTDOWN
        self._phase_end = now + self.countdown
        self._go_at = self._phase_end
        self._think()

    def _think(self) -> None:
        for seat, thinker in self._thinkers.items():
            if self.batch.alive[0, seat]:
                thinker.think(self.batch)

    def _end_round(self, now: float) -> None:
        replay = self._recorder.finish()
        self.replays.append(replay)
        for seat, points in enumerate(replay.scores):
            self.scores[seat] += points
        if replay.winner >= 0:
            self.wins[replay.winner] += 1
        self.phase = Phase.ROUND_OVER
        self._phase_end = now + (self.auto_next or 0.0)
        logger.info("round %d: %s after %d turns", self.round, self.result_text(), replay.turns)


# ---------------------------------------------------------------------------- agents aside


class ProcessAgent(Agent):
    """An agent built from a spec in a child process of its own, answering over a pipe.

    Search agents compiled with numba hold the GIL for a whole search call, which in a thread
    would stall the window for as long; in a child process they cannot. The child is a fresh
    interpreter (``python -c``, not ``multiprocessing``, whose spawn re-runs the parent's main
    module: ``python -m arena`` would start the CLI again), started when the object is made;
    requests and answers are pickled over its stdin and stdout. ``wait_ready`` reports a bad
    spec as ``SpecError`` and a failed start as ``RuntimeError``.
    """

    def __init__(self, spec: str, *, seed: int = 0) -> None:
        self.name = spec
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from arena.play import serve_agent; serve_agent()",
                spec,
                str(seed),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._ready = False
        self._lock = threading.Lock()

    def wait_ready(self) -> None:
        """Wait until the child has built its agent.

        Raises:
            SpecError: the spec is invalid (the registry's message).
            RuntimeError: the child failed to start.
        """
        from agents.registry import SpecError

        with self._lock:
            if self._ready:
                return
            kind, message = self._receive()
            if kind == "spec-error":
                raise SpecError(message)
            if kind != "ready":
                raise RuntimeError(f"agent {self.name!r} failed to start: {message}")
            self._ready = True

    def _receive(self) -> Any:
        assert self._process.stdout is not None
        try:
            return pickle.load(self._process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as e:
            code = self._process.poll()
            why = f"exit status {code}" if code is not None else str(e) or type(e).__name__
            raise RuntimeError(f"agent {self.name!r} stopped ({why})") from None

    def _call(self, *request: Any) -> Any:
        self.wait_ready()
        assert self._process.stdin is not None
        with self._lock:
            try:
                pickle.dump(request, self._process.stdin)
                self._process.stdin.flush()
            except OSError as e:
                raise RuntimeError(f"agent {self.name!r} stopped ({e})") from None
            ok, value = self._receive()
        if not ok:
            raise RuntimeError(f"agent {self.name!r}: {value}")
        return value

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        return np.asarray(self._call("act", batch, seat, games), dtype=np.int8)

    def reset(self, games: NDArray[np.intp]) -> None:
        self._call("reset", games)

    def forfeit_reason(self, game: int) -> str:
        return str(self._call("forfeit_reason", game))

    def close(self) -> None:
        """End the child: closing its stdin closes its agent; killed if it is still there in 5 s."""
        # Not under the lock: a thread may be waiting on a long search, and closing must not wait.
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def serve_agent() -> None:
    """The child's side of ``ProcessAgent`` (``sys.argv``: spec, seed).

    Builds the agent, then answers pickled ``(method, *args)`` requests on stdin with
    ``(ok, value)`` on stdout until stdin closes. Anything the agent prints goes to stderr, so it
    cannot garble the answers; Ctrl-C is left to the parent, which closes the child.
    """
    from agents.registry import SpecError, make_agent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec, seed = sys.argv[1], int(sys.argv[2])
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer

    def send(message: object) -> None:
        pickle.dump(message, answers)
        answers.flush()

    try:
        agent = make_agent(spec, seed=seed)
    except SpecError as e:
        send(("spec-error", str(e)))
        return
    except Exception as e:
        send(("error", f"{type(e).__name__}: {e}"))
        return
    send(("ready", ""))
    try:
        while True:
            try:
                method, *args = pickle.load(requests)
            except EOFError:
                return
            try:
                send((True, getattr(agent, method)(*args)))
            except Exception as e:
                send((False, f"{type(e).__name__}: {e}"))
    finally:
        agent.close()


# ---------------------------------------------------------------------------- the window


def key_bindings(human_seats: Sequence[int]) -> dict[int, tuple[int, Direction]]:
    """pygame key -> (seat, direction) for the human seats.

    One human steers with the arrows or WASD; two humans share the keyboard, the first on WASD
    and the second on the arrows.
    """
    import pygame

    arrows = {pygame.K_UP: N, pygame.K_RIGHT: E, pygame.K_DOWN: S, pygame.K_LEFT: W}
    wasd = {pygame.K_w: N, pygame.K_d: E, pygame.K_s: S, pygame.K_a: W}
    if len(human_seats) > 2:
        raise ValueError(f"at most two humans share a keyboard, got {len(human_seats)}")
    if len(human_seats) == 1:
        seat = human_seats[0]
        return {k: (seat, d) for k, d in (arrows | wasd).items()}
    if len(human_seats) == 2:
        first, second = human_seats
        return {k: (first, d) for k, d in wasd.items()} | {
            k: (second, d) for k, d in arrows.items()
        }
    return {}


class PlaySession:
    """A ``GameSession`` in a pygame window: keys in, frames out. Step it with injected times.

    ``handle_event(event, now)`` for each pygame event, ``update(now)`` and ``draw(surface, now)``
    once a frame; ``run_window`` does exactly that with the real clock.
    """

    def __init__(self, game: GameSession) -> None:
        self.game = game
        self.bindings = key_bindings(sorted(game.humans))
        self._drawer: FrameDrawer | None = None
        if len(game.humans) == 2:
            steer = "WASD / arrows steer"
        elif game.humans:
            steer = "arrows or WASD steer"
        else:
            steer = "+/- speed"
        self.hint = f"{steer} · Space pause · R restart · Esc quit"

    @property
    def running(self) -> bool:
        """False once the session has finished (quit, or the last round acknowledged)."""
        return self.game.phase is not Phase.FINISHED

    def handle_event(self, event: pygame.event.Event, now: float) -> None:
        """React to one pygame event (keys, window close)."""
        import pygame

        game = self.game
        if event.type == pygame.QUIT:
            game.quit()
        if event.type != pygame.KEYDOWN:
            return
        key = event.key
        if key in self.bindings:
            seat, direction = self.bindings[key]
            game.press(seat, direction)
        elif key in (pygame.K_ESCAPE, pygame.K_q):
            game.quit()
        elif key == pygame.K_SPACE:
            if game.phase is Phase.ROUND_OVER:
                game.next_round(now)
            else:
                game.toggle_pause(now)
        elif key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            game.next_round(now)
        elif key == pygame.K_r:
            game.restart(now)
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
            game.change_speed(+1)
        elif key in (pygame.K_MINUS, pygame.K_KP_MINUS):
            game.change_speed(-1)

    def update(self, now: float) -> bool:
        """Advance the game (``GameSession.update``); returns whether a turn was played."""
        return self.game.update(now)

    def draw(self, surface: pygame.Surface, now: float) -> None:
        """Paint the current frame onto ``surface``."""
        from tron.render.pygame_view import FrameDrawer

        if self._drawer is None:
            self._drawer = FrameDrawer()
        self._drawer.draw(surface, self.game.frame(now, self.hint))


def run_window(
    session: PlaySession,
    *,
    title: str = "Tron",
    fps: int = 60,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Open a window and run the session in it until it finishes (the caller closes the game).

    The window is sized for the map to fill most of the screen and can be resized (the board
    scales with it).
    """
    import pygame

    from tron.render.pygame_view import cell_for_screen, window_size

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    pygame.display.init()
    try:
        info = pygame.display.Info()
        screen = (info.current_w, info.current_h)
        if min(screen) <= 0:
            screen = (1280, 900)
        m = session.game.batch.map_of(0)
        size = window_size((m.width, m.height), cell_for_screen((m.width, m.height), screen))
        window = pygame.display.set_mode(size, pygame.RESIZABLE)
        pygame.display.set_caption(title)
        ticker = pygame.time.Clock()
        session.game.start(clock())
        while session.running:
            now = clock()
            for event in pygame.event.get():
                session.handle_event(event, now)
            session.update(now)
            session.draw(window, now)
            pygame.display.flip()
            ticker.tick(fps)
    finally:
        pygame.display.quit()


# ---------------------------------------------------------------------------- set-up for the CLI


def pick_map(spec: str | None, players: int | None) -> Map:
    """The map of ``--map`` (a name or a file), or the default map for ``players`` players.

    Raises:
        MapError: the map cannot be read.
        ValueError: the map has fewer start squares than ``players``, or ``players`` is not 2..4.
    """
    from tron.maps import get_map, load_map

    if players is not None and not 2 <= players <= 4:
        raise ValueError(f"--players must be 2, 3 or 4, got {players}")
    if spec is None:
        return get_map(DEFAULT_MAPS[players or 2])
    m = load_map(spec)
    if players is not None and players > m.n_players:
        raise ValueError(
            f"map {m.name!r} has start squares for {m.n_players} players, not {players}"
        )
    return m


def start_agents(specs: Sequence[str], *, seed: int | None = None) -> list[Agent]:
    """One agent per spec: ``human`` is a person at the keyboard, any other spec runs in a child
    process of its own (``ProcessAgent``). Returns once every agent is ready.

    Raises:
        SpecError: a spec is invalid (every agent started so far is closed again).
        RuntimeError: an agent failed to start.
    """
    base = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    agents: list[Agent] = []
    try:
        for seat, spec in enumerate(specs):
            if spec.strip() == "human":
                agents.append(HumanAgent())
            else:
                agents.append(ProcessAgent(spec, seed=base + seat))
        for agent in agents:
            if isinstance(agent, ProcessAgent):
                agent.wait_ready()
    except BaseException:
        for agent in agents:
            agent.close()
        raise
    return agents


def display_names(agents: Sequence[Agent]) -> list[str]:
    """Short names for the HUD: "You" for a lone human, "Player 1"/"Player 2" for two; agents by
    their spec's name (``minimax`` for ``minimax:level=5``), numbered when several share it."""
    humans = [s for s, a in enumerate(agents) if isinstance(a, HumanAgent)]
    short = [a.name.partition(":")[0] for a in agents]
    names = []
    for seat, agent in enumerate(agents):
        if isinstance(agent, HumanAgent):
            names.append("You" if len(humans) == 1 else f"Player {humans.index(seat) + 1}")
        elif short.count(short[seat]) > 1:
            names.append(f"{short[seat]} {short[: seat + 1].count(short[seat])}")
        else:
            names.append(short[seat])
    return names


def run_front_end(game: GameSession, *, ui: str, title: str) -> str:
    """Run a session in a window, or in the terminal when there is no display (or ``ui`` says so).

    Args:
        game: the session (the caller closes it).
        ui: ``"auto"``, ``"window"`` or ``"terminal"``.
        title: the window's title.

    Returns:
        The front end used: ``"window"`` or ``"terminal"``.
    """
    from arena.terminal import has_display, play_in_terminal

    use_window = ui == "window" or (ui == "auto" and has_display())
    if use_window:
        run_window(PlaySession(game), title=title)
        return "window"
    play_in_terminal(game)
    return "terminal"


def run_game_command(
    specs: Sequence[str],
    *,
    map_spec: str | None,
    players: int | None,
    speed: float,
    countdown: float,
    rounds: int | None,
    seed: int | None,
    save_replay: str | None,
    ui: str,
    title: str,
    auto_next: float | None,
) -> int:
    """What ``tron play`` and ``tron watch`` share: set up, run, save the replay.

    ``specs`` are the seats' agent specs in order (``human`` for a person); bad input raises
    ``CommandError`` with one line.
    """
    from agents.registry import SpecError
    from arena.cli import CommandError
    from arena.terminal import has_display
    from tron.maps import MapError
    from tron.replay import save_replays

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not speed > 0:
        raise CommandError(f"--speed must be a positive number of ticks per second, got {speed}")
    if rounds is not None and rounds < 1:
        raise CommandError(f"--rounds must be at least 1, got {rounds}")
    if not countdown >= 0:
        raise CommandError(f"--countdown must be 0 or more seconds, got {countdown}")
    if ui == "terminal" or (ui == "auto" and not has_display()):
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise CommandError(
                "no display for a window and no terminal to play in (stdin/stdout are not a tty)"
            )
        if ui == "auto":
            print(
                "tron: no display found, playing in the terminal (--ui window forces a window)",
                file=sys.stderr,
            )
    try:
        game_map = pick_map(map_spec, players)
    except (MapError, ValueError) as e:
        raise CommandError(str(e)) from None
    n = players or len(specs)
    if len(game_map.starts) < n:
        raise CommandError(
            f"map {game_map.name!r} has start squares for {game_map.n_players} players, not {n}"
        )
    try:
        agents = start_agents(specs, seed=seed)
    except SpecError as e:
        raise CommandError(str(e)) from None
    except RuntimeError as e:
        raise CommandError(str(e)) from None
    game = GameSession(
        game_map,
        agents,
        names=display_names(agents),
        speed=speed,
        countdown=countdown,
        rounds=rounds,
        auto_next=auto_next,
        seed=seed,
    )
    try:
        run_front_end(game, ui=ui, title=title)
    finally:
        game.close()
        if save_replay and game.replays:
            try:
                save_replays(save_replay, game.replays)
            except OSError as e:
                raise CommandError(
                    f"cannot write the replay {save_replay}: {e.strerror or e}"
                ) from None
            print(f"saved {len(game.replays)} round(s) to {save_replay}", file=sys.stderr)
    return 0
