"""The play loop: keys, turn buffering, pause/restart, rounds, agents aside, terminal, CLI.

Every session here is stepped with made-up times (``update(now)``/``tick(now)``): nothing sleeps.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

# Headless even when run without `make test`: a window test must never look for a real display.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pygame
import pytest
from numpy.typing import NDArray

import arena.play as play
from agents.base import Agent
from agents.human import HumanAgent
from arena.cli import main as tron
from arena.play import (
    GameSession,
    Phase,
    PlaySession,
    ProcessAgent,
    display_names,
    key_bindings,
    pick_map,
    run_window,
)
from arena.terminal import Look, TerminalView, has_display, run_terminal
from tron.maps import Map, parse_map
from tron.replay import load_replays, replay_to_batch
from tron.rules import Cause, Direction, TronBatch

N, E, S, W = Direction
# A 9x5 room: the players start facing each other on the middle row.
ROOM = parse_map(
    "9 5\n" + " " * 9 + "\n" + " " * 9 + "\n 1     2 \n" + " " * 9 + "\n" + " " * 9 + "\n",
    "room9x5",
)


class Straight(Agent):
    """Keeps its heading (west from the right-hand start); counts its calls."""

    name = "straight"

    def __init__(self, first: Direction = W) -> None:
        self.first = first
        self.calls = 0
        self.resets = 0

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        self.calls += 1
        last = batch.last_move[games, seat]
        return np.where(last >= 0, last, self.first).astype(np.int8)

    def reset(self, games: NDArray[np.intp]) -> None:
        self.resets += 1


class Blocked(Agent):
    """Waits for ``release`` before answering (a slow search), then goes west."""

    name = "slow"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        self.started.set()
        assert self.release.wait(timeout=30)
        return np.full(len(games), W, dtype=np.int8)


class Broken(Agent):
    name = "broken"

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        raise RuntimeError("search exploded")


def key(k: int) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=k)


def session(
    agents: list[Agent] | None = None, game_map: Map = ROOM, **kwargs: object
) -> GameSession:
    agents = agents if agents is not None else [HumanAgent("You"), Straight()]
    kwargs.setdefault("threaded", False)
    game = GameSession(game_map, agents, speed=10, countdown=3, **kwargs)  # type: ignore[arg-type]
    game.start(0.0)
    return game


def title(game: GameSession, now: float) -> str | None:
    """The banner's big line at ``now`` (None: no banner)."""
    banner = game.frame(now).banner
    return None if banner is None else banner.title


def head(game: GameSession, seat: int) -> tuple[int, int]:
    r, c = game.batch.head_positions()[0, seat]
    return int(r), int(c)


# ---------------------------------------------------------------------------- keys and buffering


def test_play__countdown_then_one_turn_per_tick() -> None:
    game = session()
    assert game.phase is Phase.COUNTDOWN
    assert title(game, 0.5) == "3"
    assert title(game, 2.2) == "1"
    assert not game.update(2.9) and game.batch.turn[0] == 0
    assert not game.update(3.05)  # the countdown is over; the first turn is due at 3.1
    assert game.phase is Phase.RUNNING
    assert title(game, 3.05) == "GO!"
    assert not game.update(3.099)
    assert game.update(3.101) and game.batch.turn[0] == 1
    assert not game.update(3.15)
    assert game.update(3.201) and game.batch.turn[0] == 2
    # The human pressed nothing: it sets off east (the longest free run), the agent west.
    assert head(game, 0) == (2, 3) and head(game, 1) == (2, 5)


def test_play__key_press_turns_the_player() -> None:
    game = session()
    view = PlaySession(game)
    game.update(3.0)
    view.handle_event(key(pygame.K_UP), 3.05)
    view.update(3.101)
    assert game.batch.last_move[0, 0] == N and head(game, 0) == (1, 1)


def test_play__two_presses_inside_one_tick_are_both_honoured_in_order() -> None:
    game = session()
    view = PlaySession(game)
    game.update(3.0)
    view.update(3.101)  # east to (2, 2)
    view.handle_event(key(pygame.K_UP), 3.12)
    view.handle_event(key(pygame.K_LEFT), 3.14)
    view.update(3.201)
    assert game.batch.last_move[0, 0] == N and head(game, 0) == (1, 2)
    view.update(3.301)
    assert game.batch.last_move[0, 0] == W and head(game, 0) == (1, 1)
    view.update(3.401)  # nothing left in the buffer: keep going west
    assert head(game, 0) == (1, 0)


def test_play__reverse_into_own_trail_is_ignored() -> None:
    game = session()
    view = PlaySession(game)
    game.update(3.0)
    view.update(3.101)  # east
    view.handle_event(key(pygame.K_a), 3.15)  # west: straight back into the trail
    view.update(3.201)
    assert game.batch.alive[0, 0] and game.batch.last_move[0, 0] == E and head(game, 0) == (2, 3)
    # A reverse queued behind a real turn is judged against the heading at its own tick.
    view.handle_event(key(pygame.K_DOWN), 3.22)
    view.handle_event(key(pygame.K_UP), 3.24)
    view.update(3.301)
    view.update(3.401)
    assert game.batch.alive[0, 0] and head(game, 0) == (4, 3)


def test_play__two_humans_share_the_keyboard() -> None:
    game = session([HumanAgent(), HumanAgent()])
    view = PlaySession(game)
    assert display_names(game.agents) == ["Player 1", "Player 2"]
    game.update(3.0)
    view.handle_event(key(pygame.K_w), 3.05)  # WASD: seat 0
    view.handle_event(key(pygame.K_DOWN), 3.05)  # arrows: seat 1
    view.update(3.101)
    assert head(game, 0) == (1, 1) and head(game, 1) == (3, 7)


def test_play__key_bindings() -> None:
    one = key_bindings([0])
    assert one[pygame.K_UP] == (0, N) and one[pygame.K_a] == (0, W)
    two = key_bindings([1, 3])
    assert two[pygame.K_d] == (1, E) and two[pygame.K_RIGHT] == (3, E)
    assert key_bindings([]) == {}
    with pytest.raises(ValueError, match="at most two humans"):
        key_bindings([0, 1, 2])


# ---------------------------------------------------------------------------- pause, restart, rounds


def test_play__pause_freezes_the_game_and_resumes_with_the_time_left() -> None:
    game = session()
    view = PlaySession(game)
    game.update(3.0)
    game.update(3.101)
    view.handle_event(key(pygame.K_SPACE), 3.151)  # 0.05 s before the next turn
    assert game.phase is Phase.PAUSED
    assert not game.update(10.0) and game.batch.turn[0] == 1
    view.handle_event(key(pygame.K_UP), 10.0)  # presses while paused are ignored
    view.handle_event(key(pygame.K_SPACE), 20.0)
    assert not game.update(20.04)
    assert game.update(20.051) and game.batch.turn[0] == 2
    assert game.batch.last_move[0, 0] == E


def test_play__restart_starts_the_round_again_unscored() -> None:
    game = session()
    view = PlaySession(game)
    game.update(3.0)
    game.update(3.101)
    view.handle_event(key(pygame.K_r), 3.15)
    assert game.phase is Phase.COUNTDOWN and game.round == 1
    assert game.batch.turn[0] == 0 and game.scores == [0.0, 0.0] and not game.replays


def test_play__rounds_are_scored_and_replayed(tmp_path: Path) -> None:
    game = session()
    view = PlaySession(game)
    now = 3.0
    game.update(now)
    while game.phase is Phase.RUNNING:  # both go straight: head-on in the middle on turn 3
        now += 0.1
        game.update(now)
    assert game.phase is Phase.ROUND_OVER and game.batch.turn[0] == 3
    assert game.scores == [0.5, 0.5] and game.wins == [0, 0]
    assert title(game, now) == "Draw"
    sites = {(c.seat, c.row, c.col, c.cause) for c in game.crash_sites}
    assert sites == {(0, 2.0, 4.0, Cause.HEAD_ON), (1, 2.0, 4.0, Cause.HEAD_ON)}

    view.handle_event(key(pygame.K_SPACE), now)  # next round
    assert game.phase is Phase.COUNTDOWN and game.round == 2
    now += 3.0
    game.update(now)
    # South, east, north: you cross the agent's row just ahead of it, and it runs into your trail.
    for k in (pygame.K_DOWN, pygame.K_RIGHT, pygame.K_UP):
        view.handle_event(key(k), now)
    while game.phase is Phase.RUNNING:
        now += 0.1
        game.update(now)
    assert game.scores == [1.5, 0.5] and game.wins == [1, 0]
    assert game.result_text() == "You win"
    (first, second) = game.replays
    assert first.moves == ("EEE", "WWW")
    assert second.moves == ("SENNN", "WWWWW") and second.winner == 0
    final = replay_to_batch(second)
    np.testing.assert_array_equal(final.cells, game.batch.cells)


def test_play__round_limit_finishes_the_session() -> None:
    game = session([Straight(E), Straight()], rounds=1, auto_next=2.0)
    now = 3.0
    while game.phase is not Phase.ROUND_OVER:
        now += 0.1
        game.update(now)
    assert game.match_over
    game.update(now + 1.0)
    assert game.phase is Phase.ROUND_OVER
    game.update(now + 2.0)
    assert game.phase is Phase.FINISHED


def test_play__speed_keys_step_through_the_speeds() -> None:
    game = session()
    view = PlaySession(game)
    view.handle_event(key(pygame.K_PLUS), 0.0)
    assert game.speed == 12.0
    view.handle_event(key(pygame.K_MINUS), 0.0)
    view.handle_event(key(pygame.K_MINUS), 0.0)
    assert game.speed == 8.0


# ---------------------------------------------------------------------------- agents aside


def test_play__slow_agent_never_blocks_the_loop() -> None:
    slow = Blocked()
    game = session([HumanAgent(), slow], threaded=True)
    surface = pygame.Surface((640, 480))
    view = PlaySession(game)
    assert slow.started.wait(timeout=30)  # it started thinking at the countdown
    assert not game.update(3.1) and game.batch.turn[0] == 0  # the turn waits...
    view.draw(surface, 3.2)  # ...while the window keeps drawing and reading keys
    view.handle_event(key(pygame.K_UP), 3.2)
    assert game.waiting_for(3.2) == []
    assert game.waiting_for(3.5) == ["slow"]
    assert game.frame(3.5).status == "waiting for slow…"
    slow.release.set()
    game.tick(3.6)  # waits for the move, which is now on its way
    assert head(game, 0) == (1, 1) and head(game, 1) == (2, 6)
    game.close()


def test_play__agents_think_on_a_snapshot_in_their_own_thread() -> None:
    seen: list[str] = []

    class Spy(Straight):
        def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
            seen.append(threading.current_thread().name)
            return super().act(batch, seat, games)

    game = session([HumanAgent(), Spy()], threaded=True)
    game.tick(3.1)
    game.tick(3.2)
    assert seen[:2] == ["tron-seat1", "tron-seat1"]
    game.close()


def test_play__an_agent_that_raises_forfeits() -> None:
    game = session([HumanAgent(), Broken()])
    game.tick(3.1)
    assert game.phase is Phase.ROUND_OVER
    assert game.batch.cause[0, 1] == Cause.FORFEIT and game.replays[0].winner == 0
    assert game.replays[0].moves[1] == "X"


def test_play__process_agent_runs_a_spec_in_a_child_process() -> None:
    agent = ProcessAgent("random:seed=3")
    try:
        agent.wait_ready()
        batch = TronBatch([ROOM], 1)
        agent.reset(np.zeros(1, dtype=np.intp))
        move = agent.act(batch, 0, np.zeros(1, dtype=np.intp))
        assert move.shape == (1,) and move[0] in (N, E, S)  # W is the wall
    finally:
        agent.close()
    from agents.registry import SpecError

    bad = ProcessAgent("nonsense:level=9")
    with pytest.raises(SpecError, match="unknown agent"):
        bad.wait_ready()
    bad.close()


# ---------------------------------------------------------------------------- the window


def test_play__window_loop_runs_a_watched_round_to_the_end() -> None:
    game = GameSession(
        ROOM,
        [Straight(E), Straight()],
        speed=10,
        countdown=3,
        rounds=1,
        auto_next=1.0,
        threaded=False,
    )
    times = iter(np.arange(0.0, 60.0, 0.05))
    run_window(PlaySession(game), fps=0, clock=lambda: float(next(times)))
    assert game.phase is Phase.FINISHED and game.replays[0].turns == 3


def test_play__every_phase_draws() -> None:
    game = session()
    view = PlaySession(game)
    surface = pygame.Surface((700, 500))
    for now, action in [(1.0, None), (3.05, None), (3.1, None), (3.2, pygame.K_SPACE)]:
        if action is not None:
            view.handle_event(key(action), now)
        game.update(now)
        view.draw(surface, now)
    view.handle_event(key(pygame.K_SPACE), 4.0)
    now = 4.0
    while game.phase is Phase.RUNNING:
        now += 0.1
        game.update(now)
    view.draw(surface, now)
    assert surface.get_at((350, 5))[:3] != (0, 0, 0)


# ---------------------------------------------------------------------------- set-up helpers


def test_play__default_opponent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(play, "ACKTR_MODEL", tmp_path / "acktr_tron.pt")
    assert play.default_opponent(5) == "minimax:level=5"  # 100 ms a move fits a 200 ms tick
    assert play.default_opponent(10) == "minimax:level=5,ms=75"
    assert play.default_opponent(30) == "minimax:level=5,ms=25"
    (tmp_path / "acktr_tron.pt").write_bytes(b"")
    assert play.default_opponent() == "acktr"


def test_play__pick_map_and_names() -> None:
    assert pick_map(None, None).name == "room15"
    assert pick_map(None, 4).n_players == 4
    assert pick_map("room16-4p", 3).name == "room16-4p"
    with pytest.raises(ValueError, match="for 2 players, not 3"):
        pick_map("room15", 3)
    names = display_names([HumanAgent(), Straight(), Straight(), Broken()])
    assert names == ["You", "straight 1", "straight 2", "broken"]


# ---------------------------------------------------------------------------- terminal


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"DISPLAY": ":0", "SDL_VIDEODRIVER": "dummy"}, "linux", False),
        ({"SDL_VIDEODRIVER": "offscreen"}, "darwin", False),
        ({"SDL_VIDEODRIVER": "kmsdrm"}, "linux", True),
        ({"SDL_VIDEODRIVER": "x11"}, "linux", False),
        ({}, "darwin", True),
    ],
)
def test_terminal__display_detection(
    environ: dict[str, str], platform: str, expected: bool
) -> None:
    assert has_display(environ, platform) is expected


class FakeScreen:
    """A curses window stand-in: keys scripted by turn, text kept in a grid."""

    def __init__(
        self, game: GameSession, keys: dict[int, list[int]], size: tuple[int, int]
    ) -> None:
        self.game = game
        self.keys = {t: list(k) for t, k in keys.items()}
        self.rows, self.cols = size
        self.grid = [[" "] * self.cols for _ in range(self.rows)]
        self.frames = 0

    def getch(self) -> int:
        self.frames += 1
        pending = self.keys.get(int(self.game.batch.turn[0]), [])
        return pending.pop(0) if pending else -1

    def getmaxyx(self) -> tuple[int, int]:
        return self.rows, self.cols

    def erase(self) -> None:
        self.grid = [[" "] * self.cols for _ in range(self.rows)]

    def addstr(self, y: int, x: int, text: str, attr: int = 0) -> None:
        assert x + len(text) < self.cols, "wrote into the last column"
        self.grid[y][x : x + len(text)] = list(text)

    def refresh(self) -> None:
        pass

    def text(self) -> str:
        return "\n".join("".join(row).rstrip() for row in self.grid)


def test_terminal__a_scripted_game_runs_to_its_end() -> None:
    game = GameSession(
        ROOM, [HumanAgent("You"), Straight()], speed=10, countdown=1, rounds=1, threaded=False
    )
    # Turn 0: go north; turn 2: go east along the top; the agent, heading west, runs into your
    # start square on turn 6.
    import curses

    screen = FakeScreen(game, {0: [curses.KEY_UP], 2: [ord("d")], 9: []}, (24, 80))
    times = iter(np.arange(0.0, 60.0, 1 / 30))
    finished: list[str] = []

    def clock() -> float:
        if game.phase is Phase.ROUND_OVER and not finished:
            finished.append(screen.text())
            screen.keys[int(game.batch.turn[0])] = [ord("q")]
        return float(next(times))

    run_terminal(game, screen, clock=clock)
    assert game.phase is Phase.FINISHED
    (replay,) = game.replays
    assert replay.moves[0] == "NNEEEE" and replay.winner == 0
    assert game.batch.cause[0, 1] == Cause.TRAIL
    assert "You win" in finished[0]
    # The last frame: "11" the live head of player 1 (as in the ansi text), "XX" the crash.
    assert "11" in screen.text() and "XX" in screen.text()


def test_terminal__too_small_a_terminal_says_so() -> None:
    game = session()
    screen = FakeScreen(game, {}, (3, 80))
    TerminalView(game, screen, Look()).draw(0.0)
    assert "terminal too small" in screen.text().replace("\n", "")


# ---------------------------------------------------------------------------- CLI


def test_cli__watch_plays_rounds_and_saves_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "watch.json"
    code = tron(
        [
            "watch",
            "greedy",
            "random:seed=1",
            "--map",
            "room10",
            "--rounds",
            "1",
            "--countdown",
            "0",
            "--speed",
            "500",
            "--ui",
            "window",
            "--save-replay",
            str(path),
        ]
    )
    assert code == 0
    (replay,) = load_replays(path)
    assert replay.agents == ("greedy", "random") and replay.map.name == "room10"
    replay_to_batch(replay)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["play", "--ui", "window", "--map", "nowhere"], "unknown map 'nowhere'"),
        (["play", "--ui", "window", "--players", "5"], "--players must be 2, 3 or 4"),
        (["play", "--ui", "window", "--speed", "0"], "--speed must be a positive"),
        (["play", "--ui", "window", "--opponent", "nonsense"], "unknown agent 'nonsense'"),
        (["watch", "greedy"], "watch needs 2 to 4 agents"),
        (["play", "--ui", "terminal"], "no terminal to play in"),
    ],
)
def test_cli__bad_input_is_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tron(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---------------------------------------------------------------------------- replay command


def played_replays(tmp_path: Path, rounds: int = 2) -> Path:
    """A file with ``rounds`` games of Straight vs Straight on ROOM (head-on draws, 3 turns)."""
    game = GameSession(
        ROOM,
        [Straight(E), Straight()],
        speed=10,
        countdown=0,
        rounds=rounds,
        auto_next=0,
        threaded=False,
    )
    game.start(0.0)
    now = 0.0
    while game.phase is not Phase.FINISHED:
        now += 0.1
        game.update(now)
    from tron.replay import save_replays

    path = tmp_path / "games.json"
    save_replays(path, game.replays)
    return path


def test_replay__viewer_steps_seeks_and_plays(tmp_path: Path) -> None:
    from arena.commands.replay import ReplayViewer

    replays = load_replays(played_replays(tmp_path))
    viewer = ReplayViewer(replays, speed=10)
    bar = pygame.Rect(10, 400, 300, 4)
    assert viewer.turn == 0 and viewer.playing and viewer.turns == 3
    viewer.update(0.0)
    viewer.update(0.101)
    assert viewer.turn == 1
    viewer.handle_event(key(pygame.K_RIGHT), 0.2, bar)
    assert viewer.turn == 2 and not viewer.playing
    viewer.handle_event(key(pygame.K_LEFT), 0.2, bar)
    viewer.handle_event(key(pygame.K_LEFT), 0.2, bar)
    viewer.handle_event(key(pygame.K_LEFT), 0.2, bar)
    assert viewer.turn == 0
    viewer.handle_event(key(pygame.K_PAGEUP), 0.2, bar)
    assert viewer.turn == 3
    frame = viewer.frame(0.2)
    assert frame.banner is not None and frame.banner.title == "Draw" and frame.progress == 1.0
    assert {s[0] for s in frame.crash_sites} == {0, 1}
    np.testing.assert_array_equal(frame.batch.cells, replay_to_batch(replays[0]).cells)
    viewer.handle_event(key(pygame.K_HOME), 0.2, bar)
    assert viewer.frame(0.2).banner is None and viewer.frame(0.2).crash_sites == ()
    click = pygame.event.Event(
        pygame.MOUSEBUTTONDOWN, button=1, pos=(bar.x + bar.width * 2 // 3, bar.y)
    )
    viewer.handle_event(click, 0.3, bar)
    assert viewer.turn == 2
    viewer.handle_event(key(pygame.K_n), 0.3, bar)
    assert viewer.game == 1 and viewer.turn == 0 and viewer.playing
    viewer.handle_event(key(pygame.K_ESCAPE), 0.3, bar)
    assert not viewer.running


def test_replay__export_gif_and_mp4_headless(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import imageio.v2 as imageio

    from tron.render import HEAD_COLOURS
    from tron.render.pygame_view import Layout, window_size

    path = played_replays(tmp_path, rounds=1)
    gif = tmp_path / "game.gif"
    assert tron(["replay", str(path), "--export", str(gif), "--cell", "10", "--speed", "5"]) == 0
    assert "wrote" in capsys.readouterr().out
    frames = imageio.mimread(gif)
    w, h = window_size((ROOM.width, ROOM.height), 10)
    assert frames[0].shape[:2] == (h + h % 2, w + w % 2)
    assert 4 <= len(frames) <= 4 + 10  # a frame a turn, the last held (GIF may merge repeats)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    png = tmp_path / "turn2.png"
    assert tron(["replay", str(path), "--export", str(png), "--turn", "2", "--cell", "10"]) == 0
    picture = imageio.imread(png)
    assert picture.shape[:2] == (h, w)
    layout = Layout.fit((ROOM.width, ROOM.height), (w, h))
    y, x = layout.board.y + 2 * 10 + 5, layout.board.x + 3 * 10 + 5  # player 1's head at (2, 3)
    assert tuple(picture[y, x][:3]) == HEAD_COLOURS[0]
    pytest.importorskip("imageio_ffmpeg")
    mp4 = tmp_path / "game.mp4"
    assert tron(["replay", str(path), "--export", str(mp4), "--cell", "10", "--speed", "5"]) == 0
    video = imageio.mimread(mp4)
    assert len(video) == 4 + 10 and video[0].shape[:2] == (h + h % 2, w + w % 2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--export", "out.avi"], "writes .gif, .mp4 or .png"),
        (["--export", "out.png", "--turn", "4"], "--turn must be 0..3"),
        (["--game", "3"], "--game must be 1..2"),
        (["--speed", "-1"], "--speed must be a positive"),
        ([], "no display to show the replay in"),
    ],
)
def test_replay__bad_input_is_one_line(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = played_replays(tmp_path)
    assert tron(["replay", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert tron(["replay", str(tmp_path / "nothing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
