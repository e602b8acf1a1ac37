"""External bots over the AI Challenge protocol: forfeits, reaping, Ctrl-C, and ``tron bot``."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.external import ExternalAgent
from agents.registry import SpecError, make_agent
from arena.match import play_match
from tron.maps import get_map
from tron.rules import TronBatch

ROOT = Path(__file__).resolve().parents[2]

# Every bot first appends its pid to the file named by its first argument. After that:
BOTS = {
    # answers the first free direction of its head, N E S W: a legal, silly bot
    "good": """
        def head(rows):
            for r, row in enumerate(rows):
                if "1" in row:
                    return r, row.index("1")
        while True:
            size = sys.stdin.readline()
            if not size:
                break
            w, h = map(int, size.split())
            rows = [sys.stdin.readline().rstrip("\\n") for _ in range(h)]
            r, c = head(rows)
            for digit, (dr, dc) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1)), 1):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w and rows[rr][cc] == " ":
                    break
            print(digit, flush=True)
    """,
    "garbage": """
        sys.stdin.readline()
        print("hello", flush=True)
        time.sleep(60)
    """,
    "two_lines": """
        sys.stdin.readline()
        print("2\\n2", flush=True)
        time.sleep(60)
    """,
    "sleeper": """
        sys.stdin.readline()
        time.sleep(60)
    """,
    "early_exit": """
        sys.stdin.readline()
        sys.exit(0)
    """,
    "crash": """
        sys.stdin.readline()
        raise RuntimeError("boom")
    """,
    # starts a child of its own, then never answers: both must be gone afterwards
    "spawner": """
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(sys.argv[1], "a") as f:
            f.write(f"{child.pid}\\n")
        time.sleep(60)
    """,
    "hog": """
        sys.stdin.readline()
        hog = bytearray(512 * 1024 * 1024)
        print(2, flush=True)
    """,
}


def _bot(tmp_path: Path, name: str) -> tuple[str, Path]:
    """A spec running bot ``name`` and the file its processes' pids are written to."""
    pids = tmp_path / f"{name}.pids"
    body = "\n".join(line[8:] for line in BOTS[name].strip("\n").splitlines())
    script = tmp_path / f"{name}.py"
    script.write_text(
        "import os, subprocess, sys, time\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n" + body + "\n"
    )
    command = shlex.join([sys.executable, str(script), str(pids)])
    return command, pids


def _state(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _gone(pids_file: Path) -> None:
    """Every pid in the file is gone: no process running, no zombie left for us to reap.

    A bot's own children are killed with it (SIGKILL to its process group) and reaped by init;
    the kernel may take a moment to finish them, hence the short wait.
    """
    pids = [int(p) for p in pids_file.read_text().split()]
    assert pids
    deadline = time.monotonic() + 5
    for pid in pids:
        while (st := _state(pid)) is not None and st[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        if st is not None:
            state, ppid = st
            assert state == "Z" and ppid != os.getpid(), f"process {pid} left behind ({state})"


def _one_game(spec: str) -> tuple[int | None, str]:
    result = play_match(spec, "greedy", [get_map("room10")], 1)
    record = result.records[0]
    return record.winner, record.reason


def test_external__a_legal_bot_plays_whole_games(tmp_path: Path) -> None:
    command, pids = _bot(tmp_path, "good")
    result = play_match(f"cmd:{command}", "random", [get_map("room10")], 4, concurrency=4)
    assert result.games == 4
    assert all("forfeit" not in r.causes for r in result.records)
    assert all(r.turns > 1 for r in result.records)
    _gone(pids)
    assert len(pids.read_text().split()) == 4  # one process per game


@pytest.mark.parametrize(
    ("name", "options", "reason"),
    [
        ("garbage", "", "A forfeited: protocol error: expected a move 1-4, got 'hello'"),
        ("two_lines", "", "A forfeited: printed more than one line (then '2')"),
        ("sleeper", "ms=300 first_ms=300 ", "A forfeited: no answer within 0.30 s"),
        ("early_exit", "", "A forfeited: exited with code 0 before answering"),
        (
            "crash",
            "",
            "A forfeited: exited with code 1 before answering (stderr: RuntimeError: boom)",
        ),
        ("spawner", "first_ms=500 ", "A forfeited: no answer within 0.50 s"),
        ("hog", "mem_mb=256 ", "A forfeited: exited with code 1 before answering"),
    ],
)
def test_external__a_broken_bot_loses_cleanly(
    tmp_path: Path, name: str, options: str, reason: str
) -> None:
    command, pids = _bot(tmp_path, name)
    winner, got = _one_game(f"cmd:{options}{command}")
    assert winner == 1
    assert got.startswith(reason)
    _gone(pids)


def test_external__reaped_on_ctrl_c(tmp_path: Path) -> None:
    """SIGINT to ``tron match`` while its bots think: it exits 130 and leaves nothing behind."""
    command, pids = _bot(tmp_path, "spawner")
    spec = f"cmd:ms=60000 first_ms=60000 {command}"
    match = subprocess.Popen(
        [sys.executable, "-m", "arena", "match", spec, "greedy", "--games", "4"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not pids.exists() or len(pids.read_text().split()) < 4
    ):  # the bots of games 0 and 2 (A in seat 0) and their children
        time.sleep(0.05)
    match.send_signal(signal.SIGINT)
    _, err = match.communicate(timeout=30)
    assert match.returncode == 130
    assert err.strip().splitlines()[-1] == "tron match: interrupted"
    _gone(pids)


def test_external__reset_and_close_kill_the_waiting_bots(tmp_path: Path) -> None:
    command, pids = _bot(tmp_path, "good")
    agent = make_agent(f"cmd:{command}")
    batch = TronBatch([get_map("room10")], 3)
    agent.reset(np.arange(3))
    assert (agent.act(batch, 0, np.arange(3)) >= 0).all()
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 3 and all(Path(f"/proc/{p}").exists() for p in started)
    agent.reset(np.array([1]))  # game 1 restarts: its bot goes, the others wait for a move
    assert sum(Path(f"/proc/{p}").exists() for p in started) == 2
    agent.close()
    _gone(pids)


def test_external__spec_errors() -> None:
    with pytest.raises(SpecError, match="not found or not executable"):
        make_agent("cmd:no-such-program-here --fast")
    with pytest.raises(SpecError, match="no program given"):
        make_agent("cmd:")
    with pytest.raises(SpecError, match="cannot split"):
        make_agent("cmd:python 'unterminated")
    with pytest.raises(SpecError, match="ms=0"):
        make_agent(f"cmd:ms=0 {sys.executable}")
    agent = make_agent(f"cmd:ms=250 first_ms=900 mem_mb=64 {sys.executable} -u bot.py")
    assert isinstance(agent, ExternalAgent)
    assert (agent.move_ms, agent.first_move_ms, agent.memory_mb) == (250, 900, 64)
    assert agent.argv[1:] == ["-u", "bot.py"]


def test_tron_bot__plays_the_same_moves_as_in_process() -> None:
    """minimax at depth 3 through ``cmd:`` + ``tron bot`` against greedy, both seats: the moves
    are exactly those of the same minimax playing in-process."""
    bot = shlex.join([sys.executable, "-m", "arena", "bot", "minimax:depth=3"])
    maps = [get_map("room10"), get_map("cross")]
    cwd = os.getcwd()
    os.chdir(ROOT)  # the bot process imports the packages from the repository
    try:
        remote = play_match(f"cmd:first_ms=60000 ms=30000 {bot}", "greedy", maps, 4)
    finally:
        os.chdir(cwd)
    local = play_match("minimax:depth=3", "greedy", maps, 4)
    assert [r.moves for r in remote.records] == [r.moves for r in local.records]
    assert [r.winner for r in remote.records] == [r.winner for r in local.records]


def test_tron_bot__answers_positions_until_end_of_input() -> None:
    positions = "5 3\n1    \n     \n    2\n" + "5 3\n#1   \n    2\n    #\n"
    done = subprocess.run(
        [sys.executable, "-m", "arena", "bot", "greedy"],
        cwd=ROOT,
        input=positions,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2"]
    bad = subprocess.run(
        [sys.executable, "-m", "arena", "bot", "greedy"],
        cwd=ROOT,
        input="5 3\n1    \n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "tron bot: error: input ended in the middle of a position"
