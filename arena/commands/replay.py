"""``tron replay FILE``: play a replay back in a window, or export it to a GIF or an MP4.

In the window: space plays and pauses, the left and right arrows step a turn (Page Up/Down ten),
Home and End jump to the start and the end, a click on the bar at the bottom seeks, + and - change
the speed, N and P switch between the games of a file, Esc quits.

``--export out.gif`` (or ``.mp4``) draws every turn off-screen with the window's look and writes
the video with imageio; no display is needed. MP4 needs the ``imageio-ffmpeg`` package.
``--export out.png [--turn T]`` writes one frame (the README's screenshot is made this way).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.cli import CommandError

if TYPE_CHECKING:
    import pygame

    from tron.render.pygame_view import Frame
    from tron.replay import Replay
    from tron.rules import TronBatch

#: Seconds the last frame of an export is held, so the result can be read.
EXPORT_HOLD_S = 2.0
SPEEDS = (1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0)
HINT = "Space play/pause · ←/→ step · PgUp/PgDn ±10 · Home/End · click the bar to seek · N/P game"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="play back a replay file in a window, or export it to a GIF or MP4",
        description=(
            "Play back a replay written by --save-replay (play, watch, match). Space plays and "
            "pauses, arrows step, PgUp/PgDn jump 10 turns, Home/End, click the bar to seek, +/- "
            "speed, N/P switch games, Esc quits. --export renders it headless."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the replay file")
    p.add_argument("--game", type=int, default=1, help="which game of the file, from 1 (1)")
    p.add_argument(
        "--speed", type=float, default=10.0, metavar="TURNS_PER_S", help="turns per second (10)"
    )
    p.add_argument(
        "--export",
        metavar="OUT",
        help="write the game to OUT.gif or OUT.mp4 (or one frame to OUT.png) instead of showing it",
    )
    p.add_argument(
        "--turn", type=int, default=None, help="the turn a PNG export shows (default: the last)"
    )
    p.add_argument("--cell", type=int, default=16, help="pixels per square in an export (16)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tron.replay import ReplayError, load_replays

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        replays = load_replays(args.file)
    except ReplayError as e:
        raise CommandError(str(e)) from None
    if not 1 <= args.game <= len(replays):
        raise CommandError(f"--game must be 1..{len(replays)}: {args.file} holds {len(replays)}")
    if not args.speed > 0:
        raise CommandError(
            f"--speed must be a positive number of turns per second, got {args.speed}"
        )
    if args.export:
        if args.cell < 1:
            raise CommandError(f"--cell must be at least 1 pixel, got {args.cell}")
        replay = replays[args.game - 1]
        if args.export.lower().endswith(".png"):
            turn = replay.turns if args.turn is None else args.turn
            if not 0 <= turn <= replay.turns:
                raise CommandError(f"--turn must be 0..{replay.turns}, got {turn}")
            export_frame(replay, args.export, turn=turn, cell=args.cell)
            print(f"wrote {args.export} (turn {turn} of {replay.turns})")
            return 0
        frames = export_replay(replay, args.export, fps=args.speed, cell=args.cell)
        print(f"wrote {args.export} ({frames} frames)")
        return 0
    from arena.terminal import has_display

    if not has_display():
        raise CommandError(
            f"no display to show the replay in; export it instead: tron replay {args.file} "
            "--export out.gif"
        )
    run_replay_window(ReplayViewer(replays, game=args.game - 1, speed=args.speed))
    return 0


# ---------------------------------------------------------------------------- the timeline


@dataclass(frozen=True)
class Timeline:
    """A replay's game at every turn, for instant seeking.

    Attributes:
        batches: the one-game batch after ``t`` turns, ``t = 0..turns`` (snapshots).
        crash_sites: ``(seat, row, col)`` of every crash up to turn ``t``.
        last_moves: the moves of turn ``t`` (-1: none).
    """

    batches: list[TronBatch]
    crash_sites: list[tuple[tuple[int, float, float], ...]]
    last_moves: list[tuple[int, ...]]


def timeline(replay: Replay) -> Timeline:
    """Play a replay through the engine once, keeping every turn."""
    from arena.play import crash_site
    from tron.replay import iter_replay, replay_to_batch

    start = replay_to_batch(replay, 0)
    batches = [start]
    sites: list[tuple[tuple[int, float, float], ...]] = [()]
    moves: list[tuple[int, ...]] = [(-1,) * replay.n_players]
    for batch, actions in iter_replay(replay):
        crashed = batch.crash_turn[0] == batch.turn[0]
        new = tuple(
            (s.seat, s.row, s.col)
            for s in (crash_site(batch, 0, int(p), int(actions[p])) for p in crashed.nonzero()[0])
        )
        batches.append(copy.deepcopy(batch))
        sites.append(sites[-1] + new)
        moves.append(tuple(int(a) for a in actions))
    return Timeline(batches, sites, moves)


class ReplayViewer:
    """Plays back the games of a replay file; step it with ``handle_event``/``update``/``frame``."""

    def __init__(self, replays: list[Replay], *, game: int = 0, speed: float = 10.0) -> None:
        self.replays = replays
        self.speed = speed
        self.running = True
        self.playing = True
        self._next_at: float | None = None
        self._load(game)

    def _load(self, game: int) -> None:
        self.game = game % len(self.replays)
        self.replay = self.replays[self.game]
        self.timeline = timeline(self.replay)
        self.turn = 0
        self._next_at = None

    @property
    def turns(self) -> int:
        return self.replay.turns

    def seek(self, turn: int) -> None:
        """Show the position after ``turn`` turns (clamped to the game)."""
        self.turn = max(0, min(self.turns, turn))
        self._next_at = None

    def update(self, now: float) -> None:
        """Advance while playing: one turn every ``1 / speed`` seconds; stop at the end."""
        if not self.playing:
            return
        if self._next_at is None:
            self._next_at = now + 1.0 / self.speed
        while self.playing and now >= self._next_at:
            if self.turn >= self.turns:
                self.playing = False
                break
            self.turn += 1
            self._next_at += 1.0 / self.speed

    def handle_event(self, event: pygame.event.Event, now: float, bar: pygame.Rect) -> None:
        """React to a key or a click (``bar``: where the seek bar is on screen)."""
        import pygame

        if event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            if bar.inflate(0, 16).collidepoint(event.pos) and bar.width > 0:
                self.seek(round((event.pos[0] - bar.x) / bar.width * self.turns))
                self.playing = False
        elif event.type == pygame.KEYDOWN:
            steps = {
                pygame.K_RIGHT: 1,
                pygame.K_LEFT: -1,
                pygame.K_PAGEUP: 10,
                pygame.K_PAGEDOWN: -10,
                pygame.K_UP: 10,
                pygame.K_DOWN: -10,
            }
            k = event.key
            if k in (pygame.K_ESCAPE, pygame.K_q):
                self.running = False
            elif k == pygame.K_SPACE:
                if not self.playing and self.turn >= self.turns:
                    self.seek(0)
                self.playing = not self.playing
                self._next_at = None
            elif k in steps:
                self.playing = False
                self.seek(self.turn + steps[k])
            elif k == pygame.K_HOME:
                self.seek(0)
            elif k == pygame.K_END:
                self.seek(self.turns)
            elif k in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
                self.speed = next((s for s in SPEEDS if s > self.speed), self.speed)
            elif k in (pygame.K_MINUS, pygame.K_KP_MINUS):
                self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), self.speed)
            elif k in (pygame.K_n, pygame.K_p) and len(self.replays) > 1:
                self._load(self.game + (1 if k == pygame.K_n else -1))
                self.playing = True

    def frame(self, now: float, *, hint: str = HINT) -> Frame:
        """The frame for the current turn (the result banner at the end)."""
        from tron.render.pygame_view import Banner, Frame

        t, replay = self.turn, self.replay
        banner = None
        if t >= self.turns:
            w = replay.winner
            title = f"{replay.agents[w]} wins" if w >= 0 else "Draw"
            banner = Banner(title, f"after {self.turns} turns", seat=w)
        slide = 1.0
        if self.playing and self._next_at is not None:
            # The newest squares fill during the first 60% of a turn's time.
            into = 1.0 - (self._next_at - now) * self.speed
            slide = min(1.0, max(0.0, into / 0.6))
        of = f"game {self.game + 1}/{len(self.replays)}  ·  " if len(self.replays) > 1 else ""
        return Frame(
            batch=self.timeline.batches[t],
            names=replay.agents,
            crash_sites=self.timeline.crash_sites[t],
            headings=None,
            last_moves=self.timeline.last_moves[t],
            slide=slide,
            info=f"{of}turn {t}/{self.turns}  ·  {self.speed:g} turns/s  ·  {replay.map.name}",
            hint=hint,
            banner=banner,
            progress=t / self.turns,
            time=now,
        )


def run_replay_window(
    viewer: ReplayViewer, *, fps: int = 60, clock: Callable[[], float] = time.monotonic
) -> None:
    """Show a replay in a window until the viewer is closed."""
    import pygame

    from tron.render.pygame_view import (
        FOOTER_HEIGHT,
        MARGIN,
        FrameDrawer,
        cell_for_screen,
        window_size,
    )

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    pygame.display.init()
    try:
        info = pygame.display.Info()
        screen = (
            (info.current_w, info.current_h)
            if min(info.current_w, info.current_h) > 0
            else (1280, 900)
        )
        m = viewer.replay.map
        size = window_size((m.width, m.height), cell_for_screen((m.width, m.height), screen))
        window = pygame.display.set_mode(size, pygame.RESIZABLE)
        pygame.display.set_caption(f"Tron replay - {viewer.replay.map.name}")
        drawer = FrameDrawer()
        ticker = pygame.time.Clock()
        while viewer.running:
            now = clock()
            w, h = window.get_size()
            bar = pygame.Rect(MARGIN, h - FOOTER_HEIGHT + 2, w - 2 * MARGIN, 4)
            for event in pygame.event.get():
                viewer.handle_event(event, now, bar)
            viewer.update(now)
            drawer.draw(window, viewer.frame(now))
            pygame.display.flip()
            ticker.tick(fps)
    finally:
        pygame.display.quit()


# ---------------------------------------------------------------------------- export


def export_frame(replay: Replay, path: str | os.PathLike[str], *, turn: int, cell: int) -> None:
    """Draw the position after ``turn`` turns to a PNG, as the window shows it (no display needed).

    Raises:
        CommandError: the file cannot be written.
    """
    import pygame

    from tron.render.pygame_view import FrameDrawer, window_size

    m = replay.map
    surface = pygame.Surface(window_size((m.width, m.height), cell))
    viewer = ReplayViewer([replay])
    viewer.playing = False
    viewer.seek(turn)
    FrameDrawer().draw(surface, viewer.frame(turn / viewer.speed, hint=_versus(replay)))
    out = Path(path)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.png")
    try:
        pygame.image.save(surface, str(tmp))
        os.replace(tmp, out)
    except (OSError, pygame.error) as e:
        raise CommandError(f"cannot write {out}: {e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _versus(replay: Replay) -> str:
    return " vs ".join(replay.agents)


def export_replay(replay: Replay, path: str | os.PathLike[str], *, fps: float, cell: int) -> int:
    """Render a replay to a GIF or an MP4 (by the file's extension) without a display.

    One frame per turn at ``fps`` frames a second, then the final position held for
    ``EXPORT_HOLD_S``. The file is written to a temporary name and renamed into place.

    Returns:
        The number of frames written.

    Raises:
        CommandError: an unknown extension, a missing MP4 writer or a file that cannot be written.
    """
    import imageio.v2 as imageio
    import pygame

    from tron.render.pygame_view import FrameDrawer, surface_to_array, window_size

    out = Path(path)
    ext = out.suffix.lower()
    if ext not in (".gif", ".mp4"):
        raise CommandError(f"--export writes .gif, .mp4 or .png files, not {out.name!r}")
    if ext == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401 - imageio's MP4 writer; fail here with advice
        except ImportError:
            raise CommandError(
                "MP4 export needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                "--export out.gif works without it"
            ) from None
    m = replay.map
    w, h = window_size((m.width, m.height), cell)
    # H.264 in yuv420p wants even sides.
    surface = pygame.Surface((w + w % 2, h + h % 2))
    drawer = FrameDrawer()
    viewer = ReplayViewer([replay], speed=fps)
    viewer.playing = False
    hint = _versus(replay)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{ext}")
    if ext == ".gif":
        writer = imageio.get_writer(tmp, mode="I", duration=1000.0 / fps, loop=0)
    else:
        writer = imageio.get_writer(tmp, fps=fps, codec="libx264", quality=8, macro_block_size=1)
    frames = 0
    try:
        with writer:
            hold = max(1, round(EXPORT_HOLD_S * fps))
            for t in [*range(replay.turns + 1), *[replay.turns] * hold]:
                viewer.seek(t)
                drawer.draw(surface, viewer.frame(t / fps, hint=hint))
                writer.append_data(surface_to_array(surface))
                frames += 1
        os.replace(tmp, out)
    except OSError as e:
        raise CommandError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return frames
