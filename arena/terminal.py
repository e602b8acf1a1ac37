"""Tron in a terminal (curses): what ``tron play`` and ``tron watch`` fall back to without a display.

Over ssh, or on a machine with no graphical session, there is no window to open; the same
``GameSession`` runs here with the board drawn in characters, two columns a square where the
terminal is wide enough. Keys: arrows or WASD steer (two humans: WASD and arrows), space pauses
(and starts the next round), R restarts the round, + and - change the speed, Esc or Q quits.

``has_display`` decides which front end to use. ``run_terminal`` drives a session against any
object with the few curses window methods it uses (``Screen``), so a test scripts the keys and
reads the screen without a terminal.
"""

from __future__ import annotations

import curses
import locale
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from arena.play import GameSession, Phase
from tron.rules import WALL, Direction

N, E, S, W = Direction


def has_display(environ: Mapping[str, str] | None = None, platform: str = sys.platform) -> bool:
    """Whether a pygame window can be shown.

    Yes on Windows and macOS; elsewhere only with an X11 (``DISPLAY``) or Wayland
    (``WAYLAND_DISPLAY``) session, or an ``SDL_VIDEODRIVER`` that draws somewhere (``kmsdrm``
    on a console, say). SDL's ``dummy`` and ``offscreen`` drivers draw nowhere a person can see.
    """
    env = os.environ if environ is None else environ
    driver = env.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver in ("dummy", "offscreen"):
        return False
    if driver == "x11":
        return bool(env.get("DISPLAY"))
    if driver == "wayland":
        return bool(env.get("WAYLAND_DISPLAY"))
    if driver:
        return True
    if platform in ("win32", "darwin"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


class Screen(Protocol):
    """The part of a curses window ``run_terminal`` uses."""

    def getch(self) -> int: ...

    def getmaxyx(self) -> tuple[int, int]: ...

    def erase(self) -> None: ...

    def addstr(self, y: int, x: int, text: str, attr: int = 0) -> None: ...

    def refresh(self) -> None: ...


@dataclass(frozen=True)
class Look:
    """How squares are drawn: characters (two per square) and curses attributes.

    Attributes:
        floor, wall, trail, head, crash: the two characters of each kind of square.
        wall_attr: attribute of walls and the border.
        player_attrs: attribute (colour) of each player's trail and name.
        head_attrs: attribute of each player's head.
        dim_attr: attribute of secondary text.
        coloured: whether players are told apart by colour (else by letter: ``a``-``d`` trails,
            ``1``-``4`` heads, as ``render_mode="ansi"`` does).
    """

    floor: str = "  "
    wall: str = "##"
    trail: str = "██"
    head: str = "██"
    crash: str = "XX"
    wall_attr: int = 0
    player_attrs: tuple[int, ...] = (0, 0, 0, 0)
    head_attrs: tuple[int, ...] = (0, 0, 0, 0)
    dim_attr: int = 0
    coloured: bool = False


class TerminalView:
    """Keys in, characters out, for one ``GameSession``."""

    def __init__(self, game: GameSession, screen: Screen, look: Look | None = None) -> None:
        self.game = game
        self.screen = screen
        self.look = look or Look()
        humans = sorted(game.humans)
        arrows = {curses.KEY_UP: N, curses.KEY_RIGHT: E, curses.KEY_DOWN: S, curses.KEY_LEFT: W}
        wasd = {ord("w"): N, ord("d"): E, ord("s"): S, ord("a"): W}
        wasd |= {ord(k.upper()): d for k, d in (("w", N), ("d", E), ("s", S), ("a", W))}
        self.bindings: dict[int, tuple[int, Direction]] = {}
        if len(humans) == 1:
            self.bindings = {k: (humans[0], d) for k, d in (arrows | wasd).items()}
        elif len(humans) == 2:
            self.bindings = {k: (humans[0], d) for k, d in wasd.items()}
            self.bindings |= {k: (humans[1], d) for k, d in arrows.items()}

    def handle_key(self, key: int, now: float) -> None:
        """React to one key code from ``getch``."""
        game = self.game
        if key in self.bindings:
            seat, direction = self.bindings[key]
            game.press(seat, direction)
        elif key in (27, ord("q"), ord("Q")):
            game.quit()
        elif key == ord(" "):
            if game.phase is Phase.ROUND_OVER:
                game.next_round(now)
            else:
                game.toggle_pause(now)
        elif key in (10, 13, curses.KEY_ENTER):
            game.next_round(now)
        elif key in (ord("r"), ord("R")):
            game.restart(now)
        elif key in (ord("+"), ord("=")):
            game.change_speed(+1)
        elif key == ord("-"):
            game.change_speed(-1)

    def draw(self, now: float) -> None:
        """Draw the whole screen for time ``now``."""
        scr, look, game = self.screen, self.look, self.game
        batch = game.batch
        board = batch.board(0)
        height, width = board.shape
        rows, cols = scr.getmaxyx()
        scr.erase()
        # Two columns a square keeps squares square; one column if the terminal is too narrow.
        sq = 2 if 2 * width + 2 <= cols else 1
        need_rows, need_cols = height + 7, sq * width + 2
        if rows < need_rows or cols < need_cols:
            self._put(
                0, 0, f"terminal too small: {cols}x{rows}, the map needs {need_cols}x{need_rows}"
            )
            scr.refresh()
            return

        x = 0
        for seat, name in enumerate(game.names):
            text = f"{name} {game.scores[seat]:g}"
            if not batch.alive[0, seat]:
                text += " (out)"
            self._put(0, x, text, look.player_attrs[seat])
            x += len(text) + 3
        top = 1
        self._put(top, 0, "+" + "-" * (sq * width) + "+", look.wall_attr)
        heads = batch.head_positions()[0]
        head_at = {(int(r), int(c)): p for p, (r, c) in enumerate(heads)}
        for r in range(height):
            y = top + 1 + r
            self._put(y, 0, "|", look.wall_attr)
            self._put(y, 1 + sq * width, "|", look.wall_attr)
            for c in range(width):
                cell = int(board[r, c])
                text, attr = self._square(cell, head_at.get((r, c)))
                if cell != 0:
                    self._put(y, 1 + sq * c, text[:sq], attr)
        self._put(top + height + 1, 0, "+" + "-" * (sq * width) + "+", look.wall_attr)

        # Under the board, not over it: a small board would lose its middle row to the banner.
        frame = game.frame(now)
        banner = frame.banner
        if banner is not None:
            line = banner.title + (f"  -  {banner.subtitle}" if banner.subtitle else "")
            attr = look.player_attrs[banner.seat] if banner.seat >= 0 else 0
            self._put(top + height + 2, 1, line, attr | curses.A_BOLD)
        footer = frame.info + (f"   {frame.status}" if frame.status else "")
        self._put(top + height + 3, 0, footer, look.dim_attr)
        keys = "arrows/WASD steer, space pause, r restart, +/- speed, q quit"
        self._put(top + height + 4, 0, keys, look.dim_attr)
        scr.refresh()

    def _square(self, cell: int, head_of: int | None) -> tuple[str, int]:
        look = self.look
        if cell == WALL:
            return look.wall, look.wall_attr
        p = cell - 1
        if head_of is not None and head_of == p:
            if not self.game.batch.alive[0, p]:
                return look.crash, look.head_attrs[p]
            return (look.head if look.coloured else str(p + 1) * 2), look.head_attrs[p]
        return (look.trail if look.coloured else "abcd"[p] * 2), look.player_attrs[p]

    def _put(self, y: int, x: int, text: str, attr: int = 0) -> None:
        rows, cols = self.screen.getmaxyx()
        if 0 <= y < rows and 0 <= x < cols:
            # curses refuses to write the bottom-right cell; stop one short of the last column.
            self.screen.addstr(y, x, text[: max(0, cols - 1 - x)], attr)


def run_terminal(
    game: GameSession,
    screen: Screen,
    *,
    look: Look | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``game`` on ``screen`` until it finishes (the caller closes the game).

    The screen's ``getch`` must not block for long (curses: ``timeout``); each call is a frame.
    """
    view = TerminalView(game, screen, look)
    game.start(clock())
    while game.phase is not Phase.FINISHED:
        key = screen.getch()
        now = clock()
        if key != -1:
            view.handle_key(key, now)
        game.update(now)
        view.draw(now)


def play_in_terminal(game: GameSession) -> None:
    """Run ``game`` full-screen in this terminal with curses (the caller closes the game)."""
    locale.setlocale(locale.LC_ALL, "")
    unicode = "utf" in (locale.getpreferredencoding(False) or "").lower()

    def main(stdscr: curses.window) -> None:
        curses.curs_set(0)
        curses.set_escdelay(25)
        stdscr.keypad(True)
        stdscr.timeout(15)
        run_terminal(game, stdscr, look=_curses_look(unicode))

    curses.wrapper(main)


def _curses_look(unicode: bool) -> Look:
    """Colours for the terminal, close to the window's palette (blue, orange, green, magenta)."""
    block = "██" if unicode else "[]"
    if not curses.has_colors():
        return Look(trail=block, head=block)
    curses.start_color()
    curses.use_default_colors()
    colours = (curses.COLOR_BLUE, curses.COLOR_YELLOW, curses.COLOR_GREEN, curses.COLOR_MAGENTA)
    player_attrs, head_attrs = [], []
    for p, colour in enumerate(colours):
        curses.init_pair(p + 1, colour, -1)
        player_attrs.append(curses.color_pair(p + 1))
        head_attrs.append(curses.color_pair(p + 1) | curses.A_BOLD)
    curses.init_pair(5, curses.COLOR_WHITE, -1)
    return Look(
        wall="▒▒" if unicode else "##",
        trail=block,
        head="◆◆" if unicode else "@@",
        wall_attr=curses.color_pair(5) | curses.A_DIM,
        player_attrs=tuple(player_attrs),
        head_attrs=tuple(head_attrs),
        dim_attr=curses.A_DIM,
        coloured=True,
    )


__all__ = ["Look", "Screen", "TerminalView", "has_display", "play_in_terminal", "run_terminal"]
