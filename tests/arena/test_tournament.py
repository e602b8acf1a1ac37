"""Tournaments: the schedule, batched play with forfeits, the SQLite store, resuming after a kill,
and the ``tron tournament`` command."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from agents.base import Agent
from agents.registry import make_agent
from arena.cli import main
from arena.store import Store
from arena.tournament import blocks, play_games, run_tournament, schedule, standings
from tron.maps import get_map
from tron.replay import load_replays, replay_to_batch
from tron.rules import TronBatch

ROOM10, CROSS, RING = get_map("room10"), get_map("cross"), get_map("ring")

# A deterministic bot that speaks the protocol slowly (5 ms a move): first free square of N, E,
# S, W. It makes a tournament last long enough to be killed in the middle.
SLOW_BOT = """
import sys, time
while True:
    size = sys.stdin.readline()
    if not size:
        break
    if not size.strip():
        continue
    w, h = map(int, size.split())
    rows = [sys.stdin.readline().rstrip("\\n") for _ in range(h)]
    r, c = next((r, row.index("1")) for r, row in enumerate(rows) if "1" in row)
    move = "1"
    for digit, (dr, dc) in (("1", (-1, 0)), ("2", (0, 1)), ("3", (1, 0)), ("4", (0, -1))):
        if 0 <= r + dr < h and rows[r + dr][c + dc : c + dc + 1] == " ":
            move = digit
            break
    time.sleep(0.005)
    print(move, flush=True)
"""


# ----------------------------------------------------------------------------- schedule


def test_schedule__every_pair_n_games_seats_alternate_maps_rotate() -> None:
    games = schedule(["random", "greedy", "chaser"], [ROOM10, CROSS, RING], 8)
    by_pair: dict[tuple[str, ...], list] = {}
    for g in games:
        by_pair.setdefault(g.group, []).append(g)
    assert sorted(by_pair) == [("chaser", "greedy"), ("chaser", "random"), ("greedy", "random")]
    for (a, b), pair in by_pair.items():
        assert [g.number for g in pair] == list(range(8))
        assert [g.seats for g in pair] == [(a, b), (b, a)] * 4
        assert [g.map.name for g in pair] == ["room10", "room10", "cross", "cross", "ring", "ring", "room10", "room10"]  # fmt: skip
    assert len({g.id for g in games}) == len(games) == 24
    assert len({g.seed for g in games}) == 24


def test_schedule__ids_do_not_depend_on_argument_order_and_survive_more_games() -> None:
    one = schedule(["random", "greedy"], [ROOM10, CROSS], 4)
    two = schedule(["greedy", "random"], [ROOM10, CROSS], 4)
    more = schedule(["greedy", "random", "chaser"], [ROOM10, CROSS], 6)
    assert [(g.id, g.seed) for g in one] == [(g.id, g.seed) for g in two]
    assert {g.id for g in one} < {g.id for g in more}
    assert [g.seats for g in one] == [("greedy", "random"), ("random", "greedy")] * 2


def test_schedule__default_games_are_every_seating_on_every_map() -> None:
    games = schedule(["random", "greedy"], [ROOM10, CROSS, RING])
    assert len(games) == 6
    assert Counter((g.map.name, g.seats[0]) for g in games) == {(m, a): 1 for m in ("room10", "cross", "ring") for a in ("greedy", "random")}  # fmt: skip


def test_schedule__gauntlet_plays_everyone_against_one() -> None:
    games = schedule(["random", "greedy", "chaser", "wallhugger"], [ROOM10], 2, vs="greedy")
    assert sorted({g.group for g in games}) == [("chaser", "greedy"), ("greedy", "random"), ("greedy", "wallhugger")]  # fmt: skip
    assert len(games) == 6


def test_schedule__free_for_all_rotates_seats_through_every_group() -> None:
    maps = [get_map("room17-3p"), get_map("room16-4p")]
    games = schedule(["a", "b", "c", "d"], maps, 6)
    groups = Counter(g.group for g in games)
    assert groups == {("a", "b", "c"): 6, ("a", "b", "d"): 6, ("a", "c", "d"): 6, ("b", "c", "d"): 6, ("a", "b", "c", "d"): 6}  # fmt: skip
    abc = [g.seats for g in games if g.group == ("a", "b", "c")]
    assert abc == [("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b")] * 2
    quad = [g for g in games if len(g.group) == 4]
    assert [g.seats[0] for g in quad] == ["a", "b", "c", "d", "a", "b"]
    assert {g.map.name for g in quad} == {"room16-4p"}


def test_schedule__refuses_repeated_agents_and_too_few_players() -> None:
    with pytest.raises(ValueError, match="'greedy' is given twice"):
        schedule(["greedy", "greedy"], [ROOM10])
    with pytest.raises(ValueError, match="is for 4 players, got 3 agents"):
        schedule(["a", "b", "c"], [get_map("room16-4p")])


def test_blocks__cut_each_group_by_game_number() -> None:
    games = schedule(["random", "greedy"], [ROOM10], 8)
    cut = blocks(games, 3)
    assert [[g.number for g in b.games] for b in cut] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [b.agent_seed for b in cut] == [games[0].seed, games[3].seed, games[6].seed]


def test_blocks__by_default_small_for_search_agents_large_for_the_others() -> None:
    games = schedule(["random", "greedy", "minimax:level=1"], [ROOM10], 40)
    sizes = Counter((b.group, len(b.games)) for b in blocks(games))
    assert sizes == {
        (("greedy", "random"), 32): 1,
        (("greedy", "random"), 8): 1,
        (("greedy", "minimax:level=1"), 4): 10,
        (("minimax:level=1", "random"), 4): 10,
    }


# ----------------------------------------------------------------------------- play


class _Raiser(Agent):
    name = "raiser"

    def act(self, batch: TronBatch, seat: int, games: np.ndarray) -> np.ndarray:
        if (batch.turn[games] >= 2).any():
            raise RuntimeError("boom")
        return np.full(len(games), 1 if seat == 0 else 3, dtype=np.int8)


class _Liar(Agent):
    name = "liar"

    def act(self, batch: TronBatch, seat: int, games: np.ndarray) -> np.ndarray:
        return np.full(len(games), 9, dtype=np.int8)


def test_play_games__an_agent_that_raises_or_lies_forfeits_and_play_goes_on() -> None:
    wide = get_map("room15")
    for bad, reason in [
        (_Raiser(), "raiser forfeited: crashed (RuntimeError: boom)"),
        (_Liar(), "liar forfeited: broke the interface: act returned int8 [9, 9]"),
    ]:
        games = schedule([bad.name, "greedy"], [wide], 4)
        assert games[0].group == ("greedy", bad.name)
        results = play_games([make_agent("greedy"), bad], games)
        assert len(results) == 4
        for r in results:
            seat = r.agents.index(bad.name)
            assert r.winner == 1 - seat
            assert r.causes[seat] == "forfeit"
            assert r.reason.startswith(reason)
            assert r.moves[seat].endswith("X")
            replay_to_batch(r.to_replay())  # the moves reproduce the recorded result


def test_play_games__results_replay_on_the_engine_and_repeat_with_the_seed() -> None:
    games = schedule(["random", "chaser"], [ROOM10, CROSS, RING], 6)

    def play() -> list:
        agents = [make_agent("chaser", seed=5), make_agent("random", seed=6)]
        return sorted(play_games(agents, games, agent_seed=5), key=lambda r: r.number)

    first, second = play(), play()
    assert [r.to_json() for r in first] == [r.to_json() for r in second]
    for r, g in zip(first, games, strict=True):
        assert (r.id, r.agents, r.map.name, r.agent_seed) == (g.id, g.seats, g.map.name, 5)
        batch = replay_to_batch(r.to_replay())
        assert int(batch.turn[0]) == r.turns
        assert tuple(int(t) for t in batch.crash_turn[0]) == r.crash_turns


def test_play_games__free_for_all() -> None:
    games = schedule(["random", "greedy", "chaser", "wallhugger"], [get_map("room16-4p")], 4)
    agents = [make_agent(s) for s in games[0].group]
    results = play_games(agents, games)
    assert len(results) == 4
    for r in results:
        assert len(r.moves) == 4 and sum(r.scores) == pytest.approx(1.0)
        assert sum(t < 0 for t in r.crash_turns) == (1 if r.winner >= 0 else 0)
        replay_to_batch(r.to_replay())


def test_run_tournament__a_crashing_program_loses_with_the_reason_and_the_rest_is_played(
    tmp_path: Path,
) -> None:
    crash = f"cmd:{sys.executable} -c 'import sys; sys.exit(3)'"
    run = run_tournament([crash, "greedy", "random"], [ROOM10], tmp_path / "t.db", games=2, workers=1)  # fmt: skip
    assert (run.scheduled, run.already, run.played) == (6, 0, 6)
    with Store(tmp_path / "t.db") as store:
        results = store.games()
    assert len(results) == 6
    crashed = [r for r in results if crash in r.agents]
    assert len(crashed) == len(run.forfeits) == 4
    for r in crashed:
        seat = r.agents.index(crash)
        assert r.winner == 1 - seat and r.causes[seat] == "forfeit"
        assert f"{crash} forfeited: exited with code 3" in r.reason
    assert [s.agent for s in standings(results)][-1] == crash


# ----------------------------------------------------------------------------- resuming

RESUME_SPECS = ["greedy", "minimax:depth=2", "random:seed=7"]


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT id, agents, map, seed, agent_seed, winner, turns, crash_turns, reason, moves "
            "FROM games ORDER BY id"
        ).fetchall()


def test_run_tournament__resumes_after_an_interruption_with_the_same_table(tmp_path: Path) -> None:
    maps = [ROOM10, CROSS]
    whole = tmp_path / "whole.db"
    run_tournament(RESUME_SPECS, maps, whole, games=6, batch=4, workers=1)
    cut = tmp_path / "cut.db"
    seen = []

    def stop_after_three(result: object) -> None:
        seen.append(result)
        if len(seen) == 3:  # in the middle of the first block (games 0-3 of the first pair)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tournament(RESUME_SPECS, maps, cut, games=6, batch=4, workers=1, on_game=stop_after_three)  # fmt: skip
    assert len(_rows(cut)) == 3
    again = run_tournament(RESUME_SPECS, maps, cut, games=6, batch=4, workers=1)
    assert (again.already, again.played) == (3, 15)
    assert _rows(cut) == _rows(whole)
    done = run_tournament(RESUME_SPECS, maps, cut, games=6, batch=4, workers=1)
    assert (done.already, done.played) == (18, 0)


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db) as c:
            return int(c.execute("SELECT count(*) FROM games").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_cli_tournament__killed_with_sigkill_then_resumed_gives_the_uninterrupted_table(
    tmp_path: Path,
) -> None:
    """Kill -9 in the middle of a 2-worker run: no finished game is lost, the workers die with it,
    the re-run plays the rest, and the final rows and standings are those of a run never killed
    (played in one process)."""
    bot = tmp_path / "slowbot.py"
    bot.write_text(SLOW_BOT)
    specs = [f"cmd:{sys.executable} {bot}", *RESUME_SPECS]
    db = tmp_path / "killed.db"
    argv = [sys.executable, "-m", "arena", "tournament", *specs, "--map", "room10", "--games", "4", "--batch", "2", "--workers", "2", "--db", str(db), "--no-plot"]  # fmt: skip
    total = 6 * 4
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = _count(db)
    assert 2 <= at_kill < total
    time.sleep(1.0)
    assert _count(db) == at_kill  # the workers died with the parent

    out = subprocess.run([*argv, "--json"], capture_output=True, text=True, check=True)
    resumed = json.loads(out.stdout)
    assert resumed["run"]["already_stored"] == at_kill
    assert resumed["run"]["played"] == total - at_kill
    assert resumed["games_in_db"] == total

    whole = tmp_path / "whole.db"
    run_tournament(specs, [ROOM10], whole, games=4, batch=2, workers=1)
    assert _rows(db) == _rows(whole)
    with Store(whole) as store:
        assert resumed["standings"] == [s.to_json() for s in standings(store.games())]


# ----------------------------------------------------------------------------- the CLI


def test_cli_tournament__json_plot_replays_and_standings_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    argv = ["tournament", "greedy", "chaser", "random", "--map", "room10", "--map", "cross", "--games", "4", "--db", str(db), "--workers", "1"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"] == {"scheduled": 12, "already_stored": 0, "played": 12, "seconds": data["run"]["seconds"], "forfeits": []}  # fmt: skip
    assert data["games_in_db"] == 12
    assert {s["agent"] for s in data["standings"]} == {"greedy", "chaser", "random"}
    for s in data["standings"]:
        assert set(s) >= {"agent", "rating", "ci95", "games", "score"}
        assert s["games"] == 8 and s["ci95"][0] < s["rating"] < s["ci95"][1]
    ratings = [s["rating"] for s in data["standings"]]
    assert ratings == sorted(ratings, reverse=True)
    assert sum(ratings) / 3 == pytest.approx(1500.0, abs=0.1)
    assert data["plot"] == str(tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    replays = tmp_path / "games.json"
    assert main(["tournament", "--db", str(db), "--export-replays", str(replays), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"12 games in {db}\n")
    assert "played" not in out
    assert out.splitlines()[1].split()[:3] == ["rank", "agent", "rating"]
    loaded = load_replays(replays)
    assert len(loaded) == 12
    for r in loaded:
        replay_to_batch(r)

    assert main(argv) == 0  # everything stored already: nothing is played again
    assert capsys.readouterr().out.startswith("played 0 games")
    assert _count(db) == 12


def test_cli_tournament__gauntlet_and_free_for_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "t.db")
    argv = ["tournament", "random", "chaser", "--vs", "greedy", "--map", "room10", "--games", "2", "--db", db, "--workers", "1", "--no-plot", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["run"]["scheduled"] == 4  # greedy vs each, twice
    with Store(db) as store:
        assert all("greedy" in r.agents for r in store.games())
    argv = ["tournament", "random", "chaser", "greedy", "--ffa", "--map", "room17-3p", "--games", "3", "--db", db, "--workers", "1", "--no-plot", "--json"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"]["played"] == 3 and data["games_in_db"] == 7
    assert {s["agent"]: s["games"] for s in data["standings"]} == {"greedy": 7, "random": 5, "chaser": 5}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["greedy"], "a tournament needs at least two agents (or one and --vs SPEC)"),
        (["greedy", "nobody"], "unknown agent 'nobody'; valid agents:"),
        (["greedy", "random", "greedy"], "agent 'greedy' is given twice"),
        (["greedy", "random", "--map", "nowhere"], "unknown map 'nowhere'"),
        (["greedy", "random", "--map", "room16-4p"], "map 'room16-4p' is for 4 players; use --ffa"),
        (["greedy", "random", "--ffa", "--map", "room10"], "map 'room10' is for 2 players; --ffa plays 3- and 4-player maps"),
        (["greedy", "random", "--ffa"], "map 'room17-3p' is for 3 players, got 2 agents"),
        (["greedy", "random", "--games", "0"], "--games must be >= 1, got 0"),
        (["greedy", "random", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["greedy", "cmd:/no/such/bot"], "'cmd:/no/such/bot':"),
        (["--db", "missing.db"], "no agents given and no database 'missing.db' to show"),
        (["greedy", "random", "--db", "notadb.txt"], "notadb.txt: not a tournament database"),
        (["greedy", "random", "--db", "nodir/t.db"], "--db nodir/t.db: no such directory 'nodir'"),
        (["greedy", "random", "--db", "other.db"], "other.db: not a tournament database (its games table lacks 'id')"),
    ],
)  # fmt: skip
def test_cli_tournament__bad_input_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notadb.txt").write_text("hello, not a database\n" * 100)
    with sqlite3.connect(tmp_path / "other.db") as other:
        other.execute("CREATE TABLE games (name TEXT, score INTEGER)")
    assert main(["tournament", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tron tournament: error: {message}")
    assert err.count("\n") == 1
