"""Replays: recording, the JSON file, exact reproduction, and clear errors on bad files."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tron.maps import Map, get_map
from tron.replay import (
    Replay,
    ReplayError,
    ReplayRecorder,
    iter_replay,
    load_replays,
    replay_from_moves,
    replay_to_batch,
    save_match_replays,
    save_replays,
)
from tron.rules import Cause, Direction, TronBatch

N, E, S, W = Direction


def play_random(
    game_map: Map, n_players: int, seed: int, forfeit_at: int | None = None
) -> tuple[Replay, TronBatch]:
    """Play one game of random (mostly non-suicidal) moves, recording it."""
    rng = np.random.default_rng(seed)
    batch = TronBatch([game_map], 1, n_players=n_players)
    rec = ReplayRecorder(batch, 0, [f"bot{p}" for p in range(n_players)], seed=seed)
    while not batch.done[0]:
        actions = np.zeros((1, n_players), dtype=np.int8)
        flat = batch.cells[0].reshape(-1)
        for p in range(n_players):
            free = [d for d in range(4) if flat[batch.heads[0, p] + batch.offsets[d]] == 0]
            actions[0, p] = rng.choice(free) if free and rng.random() < 0.97 else rng.integers(4)
        forfeit = None
        if forfeit_at is not None and int(batch.turn[0]) == forfeit_at and batch.alive[0, 1]:
            forfeit = np.zeros((1, n_players), dtype=bool)
            forfeit[0, 1] = True
        rec.record(actions, forfeit)
        batch.step(actions, forfeit=forfeit)
    return rec.finish(), batch


def corridor() -> Map:
    """A 1x5 corridor: the players start at both ends and meet head-on in the middle."""
    return Map("corridor", np.zeros((1, 5), dtype=bool), ((0, 0), (0, 4)))


def test_replay__records_moves_letters_and_result() -> None:
    batch = TronBatch([corridor()], 1)
    rec = ReplayRecorder(batch, 0, ["left", "right"], seed=3)
    for _ in range(2):
        actions = np.array([[E, W]], dtype=np.int8)
        rec.record(actions)
        batch.step(actions)
    replay = rec.finish()
    assert replay.moves == ("EE", "WW")
    assert replay.winner == -1
    assert replay.scores == (0.5, 0.5)
    assert replay.turns == 2
    assert replay.seed == 3
    assert replay.agents == ("left", "right")


@pytest.mark.parametrize(
    ("map_name", "players", "seed"),
    [("room15", 2, 0), ("pillars", 2, 1), ("room17-3p", 3, 2), ("room16-4p", 4, 3)],
)
def test_replay__round_trip_reproduces_final_board_exactly(
    tmp_path: Path, map_name: str, players: int, seed: int
) -> None:
    replay, played = play_random(get_map(map_name), players, seed)
    path = tmp_path / "game.json"
    save_replays(path, [replay])
    (loaded,) = load_replays(path)
    assert loaded == replay
    again = replay_to_batch(loaded)
    np.testing.assert_array_equal(again.cells, played.cells)
    np.testing.assert_array_equal(again.heads, played.heads)
    np.testing.assert_array_equal(again.alive, played.alive)
    np.testing.assert_array_equal(again.crash_turn, played.crash_turn)
    np.testing.assert_array_equal(again.cause, played.cause)
    assert int(again.winner[0]) == int(played.winner[0])
    assert int(again.turn[0]) == int(played.turn[0])


def test_replay__forfeit_is_recorded_and_replayed(tmp_path: Path) -> None:
    replay, played = play_random(get_map("room16-4p"), 4, seed=5, forfeit_at=2)
    assert replay.moves[1] == replay.moves[1][:2] + "X"
    save_replays(tmp_path / "r.json", [replay])
    again = replay_to_batch(load_replays(tmp_path / "r.json")[0])
    assert again.cause[0, 1] == Cause.FORFEIT
    np.testing.assert_array_equal(again.cells, played.cells)


def test_replay__many_games_in_one_file_keep_their_order(tmp_path: Path) -> None:
    games = [play_random(get_map("room10"), 2, seed)[0] for seed in range(3)]
    save_replays(tmp_path / "match.json", games)
    assert load_replays(tmp_path / "match.json") == games


def test_replay__partial_replay_and_iteration_agree() -> None:
    replay, _ = play_random(get_map("room10"), 2, seed=4)
    assert replay_to_batch(replay, 0).turn[0] == 0
    for t, (batch, actions) in enumerate(iter_replay(replay), start=1):
        if t == 3:
            np.testing.assert_array_equal(batch.cells, replay_to_batch(replay, 3).cells)
            assert [int(a) for a in actions] == ["NESW".index(m[2]) for m in replay.moves]
            break
    with pytest.raises(ValueError, match="turns must be"):
        replay_to_batch(replay, replay.turns + 1)


def test_replay__file_is_compact_json(tmp_path: Path) -> None:
    replay, _ = play_random(get_map("room15"), 2, seed=6)
    save_replays(tmp_path / "r.json", [replay])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["format"] == "tron-replay" and doc["version"] == 1
    game = doc["games"][0]
    assert game["map"]["name"] == "room15"
    assert game["map"]["text"].startswith("15 15\n")
    assert game["moves"] == list(replay.moves)
    assert game["result"] == {
        "winner": replay.winner,
        "scores": list(replay.scores),
        "turns": replay.turns,
    }
    # No temporary file is left behind by the atomic write.
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def _good_doc() -> dict:
    batch = TronBatch([corridor()], 1)
    rec = ReplayRecorder(batch, 0, ["a", "b"])
    for _ in range(2):
        rec.record(np.array([[E, W]]))
        batch.step(np.array([[E, W]]))
    save = json.loads(json.dumps({"format": "tron-replay", "version": 1, "games": []}))
    from tron.replay import replay_to_json

    save["games"].append(replay_to_json(rec.finish()))
    return save


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="something"), "not a replay file"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(games=[]), "holds no games"),
        (lambda d: d["games"][0]["moves"].__setitem__(0, "EQ"), "unknown moves 'Q'"),
        (lambda d: d["games"][0]["moves"].__setitem__(0, "EW"), "do not reproduce"),
        (lambda d: d["games"][0]["result"].__setitem__("winner", 0), "do not reproduce"),
        (lambda d: d["games"][0]["result"].__setitem__("turns", 3), "result says 3 turns"),
        (lambda d: d["games"][0]["map"].__setitem__("text", "5 1\n1 x 2\n"), "unknown character"),
        (lambda d: d["games"][0].pop("agents"), "missing field 'agents'"),
        (
            lambda d: d["games"][0].__setitem__("agents", ["a", "b", "c"]),
            "3 players on a map with 2",
        ),
    ],
)
def test_replay__bad_files_give_one_clear_error(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    doc = _good_doc()
    mutate(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(ReplayError, match=message) as info:
        for replay in load_replays(path):
            replay_to_batch(replay)
    assert "\n" not in str(info.value)


def test_replay__unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no such file"):
        load_replays(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ReplayError, match="invalid JSON"):
        load_replays(tmp_path / "junk.json")


@dataclass
class FakeRecord:
    map: str
    a_seat: int
    moves: list[tuple[int, int]]


def test_replay__match_records_become_one_file_with_seats_named(tmp_path: Path) -> None:
    line = corridor()
    records = [
        FakeRecord("corridor", 0, [(E, W), (E, W)]),  # head-on draw in the middle
        FakeRecord("corridor", 1, [(E, W), (-1, W)]),  # seat 0 (B) forfeits on turn 2
    ]
    save_match_replays(tmp_path / "m.json", records, [line], ("alpha", "beta"), seed=9)
    first, second = load_replays(tmp_path / "m.json")
    assert first.agents == ("alpha", "beta") and first.winner == -1 and first.moves == ("EE", "WW")
    assert second.agents == ("beta", "alpha") and second.winner == 1 and second.seed == 9
    assert second.moves == ("EX", "WW")
    assert replay_to_batch(second).cause[0, 0] == Cause.FORFEIT


def test_replay__match_records_that_are_not_whole_games() -> None:
    line = corridor()
    with pytest.raises(ReplayError, match="before the game ends"):
        replay_from_moves(line, ("a", "b"), [(E, W)])
    with pytest.raises(ReplayError, match="after the game ended"):
        replay_from_moves(line, ("a", "b"), [(E, W), (E, W), (E, W)])
    with pytest.raises(ReplayError, match="not among the maps"):
        save_match_replays("unused.json", [FakeRecord("elsewhere", 0, [])], [line], ("a", "b"))
