"""The match runner and the ``tron match`` / ``tron maps`` / ``tron bot`` commands."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from agents.base import FORFEIT, Agent
from arena.cli import main
from arena.match import GameRecord, MatchResult, play_match
from tron.maps import BUILTIN_MAP_NAMES, builtin_maps, get_map, parse_map
from tron.rules import TronBatch


def test_play_match__alternates_seats_and_rotates_maps() -> None:
    maps = [get_map("room10"), get_map("cross"), get_map("ring")]
    result = play_match("greedy", "random", maps, 8, concurrency=3)
    assert result.games == 8
    assert [r.index for r in result.records] == list(range(8))
    assert [r.a_seat for r in result.records] == [0, 1] * 4
    assert [r.map for r in result.records] == ["room10", "room10", "cross", "cross", "ring", "ring", "room10", "room10"]  # fmt: skip
    assert sum(result.wins) + result.draws == 8
    assert result.agents == ("greedy", "random")


def test_play_match__records_replay_on_the_engine() -> None:
    """Each record's moves, played again, give the recorded winner, turns and causes."""
    maps = {m.name: m for m in builtin_maps(2)}
    result = play_match("minimax:depth=1", "chaser", list(maps.values())[:4], 8)
    for r in result.records:
        batch = r.replay(maps[r.map])
        assert batch.done[0]
        assert int(batch.turn[0]) == r.turns == len(r.moves)
        seats = (r.a_seat, 1 - r.a_seat)
        w = int(batch.winner[0])
        assert r.winner == (None if w < 0 else seats.index(w))


def test_play_match__deterministic_agents_give_the_same_match() -> None:
    maps = [get_map("pillars"), get_map("oblong")]
    one = play_match("minimax:depth=2", "greedy", maps, 4)
    two = play_match("minimax:depth=2", "greedy", maps, 4, concurrency=1)
    assert [r.to_json() for r in one.records] == [r.to_json() for r in two.records]


def test_play_match__json_and_score() -> None:
    record = GameRecord(0, "m", 0, None, 3, "draw: head-on collision", ("head-on", "head-on"), [(1, 3)] * 3)  # fmt: skip
    won = GameRecord(1, "m", 1, 0, 5, "B hit a wall", (None, "wall"), [(0, 0)] * 5)
    result = MatchResult(("a", "b"), [record, won])
    assert result.wins == [1, 0] and result.draws == 1
    assert result.score(0) == 0.75 and result.score(1) == 0.25
    data = result.to_json()
    assert data["records"][0] == {
        "index": 0,
        "map": "m",
        "a_seat": 0,
        "winner": None,
        "turns": 3,
        "reason": "draw: head-on collision",
        "causes": ["head-on", "head-on"],
        "moves": [[1, 3], [1, 3], [1, 3]],
    }


class _Quitter(Agent):
    """Gives up every game on its second move."""

    name = "quitter"

    def act(self, batch: TronBatch, seat: int, games: np.ndarray) -> np.ndarray:
        towards_the_middle = 1 if seat == 0 else 3  # east from the left, west from the right
        return np.where(batch.turn[games] >= 1, FORFEIT, towards_the_middle).astype(np.int8)

    def forfeit_reason(self, game: int) -> str:
        return "had enough"


def test_play_match__forfeits_are_recorded() -> None:
    game_map = parse_map("9 3\n         \n1       2\n         \n")
    result = play_match(_Quitter(), "greedy", [game_map], 2)
    for r in result.records:
        assert r.winner == 1 and r.turns == 2
        assert r.causes == ("forfeit", None)
        assert r.reason == "A forfeited: had enough"
        assert r.moves[-1][r.a_seat] == -1


def test_play_match__refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="is for 4 players"):
        play_match("greedy", "greedy", [get_map("room16-4p")], 2)
    with pytest.raises(ValueError, match="games must be >= 1"):
        play_match("greedy", "greedy", [get_map("room10")], 0)

    class Broken(Agent):
        def act(self, batch: TronBatch, seat: int, games: np.ndarray) -> np.ndarray:
            return np.full(len(games), 7, dtype=np.int8)

    with pytest.raises(ValueError, match=r"Directions 0\.\.3 or FORFEIT"):
        play_match(Broken(), "greedy", [get_map("room10")], 1)


# ---------------------------------------------------------------------------- the CLI


def test_cli_match__json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["match", "greedy", "chaser", "--games", "4", "--map", "room10", "--map", "cross", "--json"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["games"] == 4
    assert sum(data["wins"]) + data["draws"] == 4
    assert [r["map"] for r in data["records"]] == ["room10", "room10", "cross", "cross"]
    for r in data["records"]:
        assert r["winner"] in (0, 1, None)
        assert r["turns"] == len(r["moves"])
        assert isinstance(r["reason"], str)


def test_cli_match__table_and_map_file(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.txt"  # type: ignore[operator]
    path.write_text("5 1\n1   2\n")
    assert main(["match", "greedy", "greedy", "--map", str(path)]) == 0
    out = capsys.readouterr().out
    # both walk into each other: a head-on draw in the middle, twice (default: 2 games per map)
    assert "A = greedy\nB = greedy\n" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["tiny"] == ["2", "0", "0", "2", "2.0"]
    assert "score of A: 50.0 %" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["match", "nobody", "greedy"], "tron match: error: unknown agent 'nobody'; valid agents:"),
        (["match", "greedy", "greedy", "--map", "nowhere"], "tron match: error: unknown map 'nowhere'"),
        (["match", "greedy", "greedy", "--map", "room16-4p"], "tron match: error: map 'room16-4p' is for 4 players"),
        (["match", "greedy", "greedy", "--games", "0"], "tron match: error: --games must be >= 1"),
        (["bot", "minimax:depth=x"], "tron bot: error: 'minimax:depth=x': option depth='x'"),
    ],
)  # fmt: skip
def test_cli__bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_cli_maps__lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["maps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "size", "players", "free"]
    assert [ln.split()[0] for ln in lines[1:]] == list(BUILTIN_MAP_NAMES)
    assert lines[1].split() == ["room10", "10x10", "2", "98"]
    assert main(["maps", "--players", "3"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert names == [m.name for m in builtin_maps(3)]


def test_cli_bot__in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a position, a blank line, the next position (player 2 moved north), then end of input
    text = "5 3\n1    \n     \n    2\n\n5 3\n#1   \n    2\n    #\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["bot", "minimax:depth=2"]) == 0
    moves = capsys.readouterr().out.split()
    assert len(moves) == 2 and all(m in "1234" for m in moves)
