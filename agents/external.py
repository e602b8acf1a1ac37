"""External bots: any program that speaks the AI Challenge protocol (``tron.protocol``).

One process per game, started at the game's first move and killed when the game is reset or the
agent closed. The program runs without a shell (an argument list), in its own session (so the
whole process group can be killed, and a Ctrl-C in the terminal reaches us, not it), with its
address space capped (``RLIMIT_AS``) and, on Linux, killed if we die. Its standard error goes to a
temporary file, whose last line explains a crash in the forfeit reason.

All games' positions are written first and the answers collected together, so the bots of a batch
think concurrently. A bot forfeits the game (``agents.base.FORFEIT``, reason in
``forfeit_reason``) when it does not answer in time (``move_ms``; ``first_move_ms`` for the first
move, which includes starting up), exits or crashes, or prints anything but one line with a digit
1-4. A forfeiting bot is killed at once. Every process is reaped: no orphans, no zombies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from numpy.typing import NDArray

from agents.base import FORFEIT, Agent
from tron.protocol import ProtocolError, format_position, parse_move
from tron.rules import TronBatch

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: Longest answer line kept for a forfeit reason.
_MAX_LINE = 4096


def _limit_child(memory_bytes: int | None) -> None:
    """Runs in the child between fork and exec: cap memory, die with the parent (Linux)."""
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _last_line(f: IO[bytes]) -> str:
    """The last non-empty line of a file (a bot's stderr), shortened."""
    with contextlib.suppress(OSError):
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 2048))
        lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln]
        if lines:
            return lines[-1] if len(lines[-1]) <= 120 else lines[-1][:117] + "..."
    return ""


def _shown(out: bytearray) -> str:
    """The first line of a bot's unexpected output, quoted and shortened."""
    text = bytes(out[:200]).decode("utf-8", "replace").strip()
    line = text.splitlines()[0] if text else ""
    return repr(line if len(line) <= 40 else line[:37] + "...")


@dataclass
class _Bot:
    """One running bot process and its I/O state."""

    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]
    moves: int = 0
    out: bytearray = field(default_factory=bytearray)
    pending: bytes = b""  # the part of this turn's position not yet written

    def kill(self) -> None:
        """Kill the process group, reap the process, close the pipes. Safe to call twice."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()

    def exit_reason(self, when: str) -> str:
        """Why the bot stopped talking ``when`` it did (it exited, was killed, or closed its
        output), with the last line of its stderr."""
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            what = "closed its output"
        else:
            if code < 0:
                try:
                    what = f"was killed by {signal.Signals(-code).name}"
                except ValueError:
                    what = f"was killed by signal {-code}"
            else:
                what = f"exited with code {code}"
        tail = _last_line(self.stderr)
        return f"{what} {when}" + (f" (stderr: {tail})" if tail else "")


def _kill_all(bots: dict[int, _Bot]) -> None:
    for bot in bots.values():
        bot.kill()
    bots.clear()


class ExternalAgent(Agent):
    """Plays through external programs speaking the AI Challenge protocol."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        move_ms: float = 1000.0,
        first_move_ms: float = 3000.0,
        memory_mb: int | None = 2048,
        name: str | None = None,
    ) -> None:
        """Check the program exists; no process starts until a game's first move.

        Args:
            argv: the program and its arguments (never run through a shell).
            move_ms: time to answer a move, in milliseconds.
            first_move_ms: time to answer the first move of a game (start-up included).
            memory_mb: address-space limit of the process (None: no limit).
            name: display name (default: the command line).

        Raises:
            ValueError: empty ``argv``, a program that is not found or not executable, or a
                limit that is not positive.
        """
        if not argv:
            raise ValueError("no program given: write cmd:PROGRAM ARGS...")
        program = argv[0]
        resolved = shutil.which(program) if os.sep not in program else program
        if resolved is None or not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
            raise ValueError(f"program {program!r} not found or not executable")
        if move_ms <= 0 or first_move_ms <= 0:
            raise ValueError("time limits must be positive")
        if memory_mb is not None and memory_mb <= 0:
            raise ValueError(f"memory_mb must be positive, got {memory_mb}")
        self.argv = [resolved, *argv[1:]]
        self.move_ms = move_ms
        self.first_move_ms = first_move_ms
        self.memory_mb = memory_mb
        self.name = name or " ".join(argv)
        self._bots: dict[int, _Bot] = {}
        self._reasons: dict[int, str] = {}
        # Kill the processes even if the agent is dropped without close().
        self._finalizer = weakref.finalize(self, _kill_all, self._bots)

    # ------------------------------------------------------------------ Agent

    def reset(self, games: NDArray[np.intp]) -> None:
        for g in games:
            bot = self._bots.pop(int(g), None)
            if bot is not None:
                bot.kill()
            self._reasons.pop(int(g), None)

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        out = np.full(len(games), FORFEIT, dtype=np.int8)
        now = time.monotonic()
        waiting: dict[int, tuple[int, float]] = {}  # game -> (index in games, deadline)
        for i, g in enumerate(int(x) for x in games):
            if g in self._reasons:
                continue  # already forfeited this game
            bot = self._bots.get(g)
            if bot is None:
                bot = self._start(g)
                if bot is None:
                    continue
            else:
                alive = self._read_available(bot)
                if bot.out.strip():
                    self._forfeit(g, f"printed {_shown(bot.out)} when no move was asked for")
                    continue
                if not alive:
                    self._forfeit(g, bot.exit_reason("between moves"))
                    continue
            bot.pending = format_position(batch, g, seat).encode()
            limit = self.first_move_ms if bot.moves == 0 else self.move_ms
            waiting[g] = (i, now + limit / 1000.0)
        self._exchange(waiting, out)
        return out

    def forfeit_reason(self, game: int) -> str:
        return self._reasons.get(game, "forfeited")

    def close(self) -> None:
        self._finalizer()

    # ------------------------------------------------------------------ internals

    def _start(self, game: int) -> _Bot | None:
        # Kept open for the bot's lifetime (closed by _Bot.kill), so no context manager.
        stderr = tempfile.TemporaryFile()  # noqa: SIM115
        memory = None if self.memory_mb is None else self.memory_mb * 1024 * 1024
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=lambda: _limit_child(memory),
            )
        except (OSError, subprocess.SubprocessError) as e:
            stderr.close()
            self._reasons[game] = f"could not start {self.argv[0]!r}: {e}"
            return None
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        bot = _Bot(proc, stderr)
        self._bots[game] = bot
        return bot

    def _forfeit(self, game: int, reason: str) -> None:
        self._reasons[game] = reason
        bot = self._bots.pop(game, None)
        if bot is not None:
            bot.kill()
        logger.info("external bot %r forfeits game %d: %s", self.name, game, reason)

    @staticmethod
    def _read_available(bot: _Bot) -> bool:
        """Read what the bot has written so far; False at end of file."""
        assert bot.proc.stdout is not None
        while True:
            try:
                chunk = os.read(bot.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            bot.out += chunk
            if len(bot.out) > _MAX_LINE:
                return True

    def _exchange(self, waiting: dict[int, tuple[int, float]], out: NDArray[np.int8]) -> None:
        """Write every waiting bot's position and collect its answer before its deadline."""
        sel = selectors.DefaultSelector()
        try:
            for g in waiting:
                bot = self._bots[g]
                assert bot.proc.stdin is not None
                sel.register(bot.proc.stdin, selectors.EVENT_WRITE, g)
            while waiting:
                now = time.monotonic()
                for g, (_, deadline) in list(waiting.items()):
                    if now >= deadline:
                        self._unregister(sel, g)
                        waiting.pop(g)
                        limit = self.first_move_ms if self._bots[g].moves == 0 else self.move_ms
                        self._forfeit(g, f"no answer within {limit / 1000:.2f} s")
                if not waiting:
                    break
                timeout = max(0.0, min(d for _, d in waiting.values()) - now)
                for key, events in sel.select(timeout):
                    g = key.data
                    if g not in waiting:
                        continue
                    if events & selectors.EVENT_WRITE:
                        self._write_some(sel, g, waiting)
                    elif events & selectors.EVENT_READ:
                        self._read_answer(sel, g, waiting, out)
        finally:
            sel.close()

    def _unregister(self, sel: selectors.BaseSelector, game: int) -> None:
        bot = self._bots[game]
        for f in (bot.proc.stdin, bot.proc.stdout):
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(f)  # type: ignore[arg-type]

    def _write_some(
        self, sel: selectors.BaseSelector, g: int, waiting: dict[int, tuple[int, float]]
    ) -> None:
        bot = self._bots[g]
        assert bot.proc.stdin is not None and bot.proc.stdout is not None
        try:
            n = os.write(bot.proc.stdin.fileno(), bot.pending)
        except BlockingIOError:
            return
        except OSError:
            # The pipe is closed: the bot is gone. Collect what it said and why it left.
            self._unregister(sel, g)
            waiting.pop(g)
            self._read_available(bot)
            self._forfeit(g, bot.exit_reason("before reading its position"))
            return
        bot.pending = bot.pending[n:]
        if not bot.pending:
            sel.unregister(bot.proc.stdin)
            sel.register(bot.proc.stdout, selectors.EVENT_READ, g)

    def _read_answer(
        self,
        sel: selectors.BaseSelector,
        g: int,
        waiting: dict[int, tuple[int, float]],
        out: NDArray[np.int8],
    ) -> None:
        bot = self._bots[g]
        alive = self._read_available(bot)
        newline = bot.out.find(b"\n")
        if newline < 0 and alive and len(bot.out) <= _MAX_LINE:
            return  # no full line yet
        i, _ = waiting.pop(g)
        self._unregister(sel, g)
        if newline < 0:
            if not alive:
                self._forfeit(g, bot.exit_reason("before answering"))
            else:
                self._forfeit(g, f"printed a line of over {_MAX_LINE} bytes")
            return
        line = bytes(bot.out[:newline])
        del bot.out[: newline + 1]
        try:
            move = parse_move(line.decode("utf-8", "replace"))
        except ProtocolError as e:
            self._forfeit(g, f"protocol error: {e}")
            return
        if bot.out.strip():
            self._forfeit(g, f"printed more than one line (then {_shown(bot.out)})")
            return
        bot.out.clear()
        bot.moves += 1
        out[i] = move
