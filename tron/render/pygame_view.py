"""The pygame window: one look for ``tron play``, ``tron watch``, replays and ``render_mode="human"``.

This module imports pygame at the top; nothing imports it until a window (or a video export) is
asked for (``tron.render.make_viewer``, ``arena.play``, ``arena.commands.replay``).

A window frame has three bands: the HUD on top (each player's colour, name, state and score), the
board, and a footer (round, turn and speed on the left; notes and key hints on the right; a seek
bar for replays). The board keeps the shared layout and palette of ``tron.render`` exactly, square
``(row, col)`` covering pixels ``[row * cell, (row + 1) * cell)`` of the board rectangle, and adds
light only on the floor around them: trails glow, live heads pulse, a crash flashes where it
happened. So the centre pixel of every square has the same colour as in the ``rgb_array`` frame.

What a frame shows is described by a ``Frame`` (data only: the batch, names, scores, banner...),
built by whoever runs the game; ``FrameDrawer.draw`` paints one onto any surface, a window or an
off-screen surface for a GIF or MP4 export.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

# Before pygame's first import: no greeting printed on stdout.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from tron.render import CRASH, FLOOR, HEAD_COLOURS, TRAIL_COLOURS, Colour
from tron.render.image import square_colours
from tron.rules import DELTAS, Cause, TronBatch

#: Behind the board: a shade darker than the floor.
BACKGROUND: Colour = (8, 9, 15)
#: Faint lines between floor squares (a light grid, as on the Tron game grid).
GRID: Colour = (26, 30, 46)
#: The frame around the board.
BORDER: Colour = (52, 62, 98)
TEXT: Colour = (225, 230, 240)
DIM_TEXT: Colour = (120, 128, 150)
MARGIN = 14
HUD_HEIGHT = 64
FOOTER_HEIGHT = 36
#: Narrowest window: four players' names must fit in the HUD.
MIN_WIDTH = 600
#: Largest square when a small map is blown up to fill the window.
MAX_CELL = 40
# The trail glow is computed at this many pixels per square, over this many extra squares a side.
_GLOW_RES = 4
_GLOW_PAD = 2
_GLOW_BLUR = 3  # box radius in glow pixels; two passes each way: about 0.7 square of spread
# A colour that no palette entry uses: floor squares of the crisp board layer are transparent.
_KEY: Colour = (255, 0, 255)


@dataclass(frozen=True)
class Banner:
    """Big text over the board: a countdown digit, "Paused", the winner.

    Attributes:
        title: the big line.
        subtitle: a smaller line below it.
        seat: the player whose colour the title takes (-1: white).
    """

    title: str
    subtitle: str = ""
    seat: int = -1


@dataclass(frozen=True)
class Frame:
    """Everything one window frame shows.

    Attributes:
        batch: the games; game ``game`` is drawn.
        game: which game of the batch.
        names: each seat's display name (default "Player 1", ...).
        scores: points across rounds, shown in the HUD (``None``: no scores).
        crash_sites: ``(seat, row, col)`` impact points in map coordinates (fractions allowed);
            empty: a crash flashes on the crashed player's square.
        headings: each seat's start direction, drawn as an arrow (``None``: no arrows).
        last_moves: the direction of each seat's last move (-1: none), for ``slide``.
        slide: how far (0..1) live heads have moved into their newest square; below 1 the newest
            square is drawn partly filled, so bikes glide between turns instead of jumping.
        info: footer text on the left (round, turn, speed).
        status: a note in the footer (an agent being waited for).
        hint: key hints, right of the footer.
        banner: big text over the board.
        progress: position of a replay (0..1), drawn as a seek bar.
        time: seconds on any clock: drives the pulsing of heads and crash sites.
    """

    batch: TronBatch
    game: int = 0
    names: tuple[str, ...] = ()
    scores: tuple[float, ...] | None = None
    crash_sites: tuple[tuple[int, float, float], ...] = ()
    headings: tuple[int, ...] | None = None
    last_moves: tuple[int, ...] | None = None
    slide: float = 1.0
    info: str = ""
    status: str = ""
    hint: str = ""
    banner: Banner | None = None
    progress: float | None = None
    time: float = 0.0


@dataclass(frozen=True)
class Layout:
    """Where the bands of a window of ``size`` go, for a map of ``map_size`` (width, height)."""

    size: tuple[int, int]
    cell: int
    board: pygame.Rect
    hud: pygame.Rect
    footer: pygame.Rect

    @staticmethod
    def fit(map_size: tuple[int, int], size: tuple[int, int], max_cell: int = MAX_CELL) -> Layout:
        """The largest whole-pixel squares that fit the map into a window of ``size``."""
        map_w, map_h = map_size
        w, h = size
        cell = max(
            1,
            min(
                max_cell,
                (w - 2 * MARGIN) // map_w,
                (h - HUD_HEIGHT - FOOTER_HEIGHT - 2 * MARGIN) // map_h,
            ),
        )
        area_top = HUD_HEIGHT + MARGIN
        area_h = h - HUD_HEIGHT - FOOTER_HEIGHT - 2 * MARGIN
        board = pygame.Rect(0, 0, map_w * cell, map_h * cell)
        board.center = (w // 2, area_top + area_h // 2)
        return Layout(
            size=(w, h),
            cell=cell,
            board=board,
            hud=pygame.Rect(0, 0, w, HUD_HEIGHT),
            footer=pygame.Rect(0, h - FOOTER_HEIGHT, w, FOOTER_HEIGHT),
        )


def window_size(map_size: tuple[int, int], cell: int) -> tuple[int, int]:
    """The window size that shows a map with squares of ``cell`` pixels."""
    map_w, map_h = map_size
    return (
        max(MIN_WIDTH, map_w * cell + 2 * MARGIN),
        HUD_HEIGHT + FOOTER_HEIGHT + map_h * cell + 2 * MARGIN,
    )


def cell_for_screen(map_size: tuple[int, int], screen: tuple[int, int]) -> int:
    """The square size that makes a map's window fill most of a screen (never above MAX_CELL)."""
    map_w, map_h = map_size
    avail_w = int(screen[0] * 0.9) - 2 * MARGIN
    avail_h = int(screen[1] * 0.85) - HUD_HEIGHT - FOOTER_HEIGHT - 2 * MARGIN
    return max(2, min(MAX_CELL, avail_w // map_w, avail_h // map_h))


def surface_to_array(surface: pygame.Surface) -> NDArray[np.uint8]:
    """A surface's pixels as an (H, W, 3) uint8 array."""
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


def _array_to_surface(rgb: NDArray[np.uint8]) -> pygame.Surface:
    return pygame.surfarray.make_surface(np.ascontiguousarray(rgb.transpose(1, 0, 2)))


def _box_blur(a: NDArray[np.float32], radius: int, axis: int) -> NDArray[np.float32]:
    """Mean over a window of ``2 * radius + 1`` along ``axis``, same shape (zeros beyond edges)."""
    widths = [(0, 0)] * a.ndim
    widths[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, widths), axis=axis, dtype=np.float32)
    n = a.shape[axis]
    hi = np.take(c, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return (hi - lo) / np.float32(2 * radius + 1)


@lru_cache(maxsize=64)
def _halo(colour: Colour, radius: int) -> pygame.Surface:
    """A soft round light of ``colour`` (for additive blending), bright in the middle."""
    size = 2 * radius + 1
    y, x = np.mgrid[0:size, 0:size]
    d = np.hypot(x - radius, y - radius) / max(radius, 1)
    intensity = np.clip(1.0 - d, 0.0, 1.0) ** 2
    rgb = (intensity[..., None] * np.array(colour, dtype=np.float64)).astype(np.uint8)
    return _array_to_surface(rgb)


class FrameDrawer:
    """Paints ``Frame``s; holds the fonts, which pygame can only make after ``pygame.font.init``."""

    def __init__(self) -> None:
        pygame.font.init()
        self._fonts: dict[int, pygame.font.Font] = {}
        self._glow_cache: tuple[object, pygame.Surface] | None = None

    def font(self, size: int) -> pygame.font.Font:
        """pygame's bundled font at ``size`` pixels (the same on every machine)."""
        if size not in self._fonts:
            self._fonts[size] = pygame.font.Font(None, size)
        return self._fonts[size]

    def draw(self, surface: pygame.Surface, frame: Frame) -> Layout:
        """Paint ``frame`` over the whole of ``surface``; returns the layout used."""
        m = frame.batch.map_of(frame.game)
        layout = Layout.fit((m.width, m.height), surface.get_size())
        surface.fill(BACKGROUND)
        pygame.draw.rect(surface, BORDER, layout.board.inflate(6, 6), 2, border_radius=3)
        self._draw_board(surface.subsurface(layout.board), frame, layout.cell)
        self._draw_hud(surface, layout.hud, frame)
        self._draw_footer(surface, layout.footer, frame)
        if frame.banner is not None:
            self._draw_banner(surface, layout.board, frame.banner)
        return layout

    # ------------------------------------------------------------------ board

    def _draw_board(self, board: pygame.Surface, frame: Frame, cell: int) -> None:
        batch, g = frame.batch, frame.game
        n = batch.n_players
        colours = square_colours(batch, g)
        cells = batch.board(g)
        height, width = cells.shape
        heads = batch.head_positions()[g]
        alive = batch.alive[g]

        board.fill(FLOOR)
        if cell >= 8:
            for c in range(1, width):
                pygame.draw.line(board, GRID, (c * cell, 0), (c * cell, height * cell - 1))
            for r in range(1, height):
                pygame.draw.line(board, GRID, (0, r * cell), (width * cell - 1, r * cell))

        board.blit(
            self._glow(colours, cells > 0, cell),
            (-_GLOW_PAD * cell, -_GLOW_PAD * cell),
            special_flags=pygame.BLEND_RGB_ADD,
        )

        pulse = 0.5 + 0.5 * math.sin(frame.time * 2 * math.pi * 1.5)
        for p in np.flatnonzero(alive):
            r, c = (int(v) for v in heads[p])
            radius = max(3, int(cell * (1.6 + 0.4 * pulse)))
            halo = _halo(HEAD_COLOURS[p], radius)
            centre = (c * cell + cell // 2, r * cell + cell // 2)
            board.blit(halo, halo.get_rect(center=centre), special_flags=pygame.BLEND_RGB_ADD)

        dead = np.flatnonzero(~alive)
        sites = frame.crash_sites or tuple(
            (int(p), float(heads[p][0]), float(heads[p][1])) for p in dead
        )
        self._light_crashes(board, sites, cell, pulse)

        # The lit floor, to put back where a sliding head has not arrived yet.
        sliding = frame.slide < 1.0 and frame.last_moves is not None
        floor = board.copy() if sliding else None

        crisp = colours.copy()
        crisp[cells == 0] = _KEY
        layer = pygame.transform.scale(_array_to_surface(crisp), (width * cell, height * cell))
        layer.set_colorkey(_KEY)
        board.blit(layer, (0, 0))

        if floor is not None:
            self._unfill_newest(board, floor, frame, heads, cell)
        self._mark_crashes(board, heads[dead], sites, cell)
        if frame.headings is not None:
            for seat in range(n):
                if alive[seat] and frame.headings[seat] >= 0:
                    self._draw_arrow(
                        board, heads[seat], frame.headings[seat], cell, HEAD_COLOURS[seat]
                    )

    def _glow(
        self, colours: NDArray[np.uint8], trails: NDArray[np.bool_], cell: int
    ) -> pygame.Surface:
        """The light around the trails, a board of ``_GLOW_PAD`` extra squares on every side.

        The trails are blurred at ``_GLOW_RES`` pixels a square (two box blurs, close to a
        Gaussian) and scaled to the board: a soft halo about a square wide. It changes only when
        a turn is played, so the last one is kept.
        """
        key = (colours.tobytes(), trails.tobytes(), trails.shape, cell)
        if self._glow_cache is not None and self._glow_cache[0] == key:
            return self._glow_cache[1]
        height, width = trails.shape
        k, pad = _GLOW_RES, _GLOW_PAD
        light = np.zeros((height + 2 * pad, width + 2 * pad, 3), dtype=np.float32)
        light[pad : pad + height, pad : pad + width][trails] = colours[trails] * 0.8
        light = np.repeat(np.repeat(light, k, axis=0), k, axis=1)
        for axis in (0, 1, 0, 1):
            light = _box_blur(light, _GLOW_BLUR, axis)
        light = np.clip(light * 1.2, 0, 255).astype(np.uint8)
        surface = pygame.transform.smoothscale(
            _array_to_surface(light), ((width + 2 * pad) * cell, (height + 2 * pad) * cell)
        )
        self._glow_cache = (key, surface)
        return surface

    def _unfill_newest(
        self,
        board: pygame.Surface,
        floor: pygame.Surface,
        frame: Frame,
        heads: NDArray[np.int64],
        cell: int,
    ) -> None:
        """Show the floor again on the part of each live head's square not reached yet."""
        assert frame.last_moves is not None
        todo = round(cell * (1.0 - max(0.0, frame.slide)))
        if todo <= 0:
            return
        for p, move in enumerate(frame.last_moves):
            if move < 0 or not frame.batch.alive[frame.game, p]:
                continue
            r, c = (int(v) for v in heads[p])
            x, y = c * cell, r * cell
            dr, dc = (int(v) for v in DELTAS[move])
            # The bike enters from the side opposite its move; the far side is still empty.
            if dc > 0:
                rect = pygame.Rect(x + cell - todo, y, todo, cell)
            elif dc < 0:
                rect = pygame.Rect(x, y, todo, cell)
            elif dr > 0:
                rect = pygame.Rect(x, y + cell - todo, cell, todo)
            else:
                rect = pygame.Rect(x, y, cell, todo)
            board.blit(floor, rect, area=rect)

    def _light_crashes(
        self,
        board: pygame.Surface,
        sites: tuple[tuple[int, float, float], ...],
        cell: int,
        pulse: float,
    ) -> None:
        """A pulsing flash in the player's colour around each impact point (on the floor)."""
        radius = max(4, int(cell * (1.4 + 0.5 * pulse)))
        for seat, row, col in sites:
            centre = (int((col + 0.5) * cell), int((row + 0.5) * cell))
            flash = _halo((255, 255, 255), max(3, int(radius * 0.6)))
            for light in (_halo(HEAD_COLOURS[seat], radius * 2), flash):
                board.blit(light, light.get_rect(center=centre), special_flags=pygame.BLEND_RGB_ADD)

    def _mark_crashes(
        self,
        board: pygame.Surface,
        dead_heads: NDArray[np.int64],
        sites: tuple[tuple[int, float, float], ...],
        cell: int,
    ) -> None:
        """The X over each crashed player's square (as in the rgb_array frame), a ring at impact."""
        width = max(2, cell // 6)
        inset = max(1, cell // 8)
        for r, c in dead_heads:
            x, y = int(c) * cell, int(r) * cell
            a, b = inset, cell - 1 - inset
            pygame.draw.line(board, CRASH, (x + a, y + a), (x + b, y + b), width)
            pygame.draw.line(board, CRASH, (x + a, y + b), (x + b, y + a), width)
        for _, row, col in sites:
            centre = (int((col + 0.5) * cell), int((row + 0.5) * cell))
            pygame.draw.circle(board, CRASH, centre, max(3, int(cell * 0.9)), max(1, cell // 10))

    def _draw_arrow(
        self, board: pygame.Surface, head: NDArray[np.int64], move: int, cell: int, colour: Colour
    ) -> None:
        r, c = (int(v) for v in head)
        dr, dc = (float(v) for v in DELTAS[move])
        cx, cy = (c + 0.5) * cell, (r + 0.5) * cell
        # A chevron one and a half squares ahead of the bike.
        tip = (cx + dc * cell * 2.0, cy + dr * cell * 2.0)
        base = (cx + dc * cell * 1.1, cy + dr * cell * 1.1)
        side = (-dr * cell * 0.55, dc * cell * 0.55)
        points = [
            tip,
            (base[0] + side[0], base[1] + side[1]),
            (base[0] - side[0], base[1] - side[1]),
        ]
        pygame.draw.polygon(board, colour, points)

    # ------------------------------------------------------------------ bands

    def _draw_hud(self, surface: pygame.Surface, rect: pygame.Rect, frame: Frame) -> None:
        batch, g = frame.batch, frame.game
        n = batch.n_players
        names = frame.names or tuple(f"Player {p + 1}" for p in range(n))
        card_w = (rect.width - MARGIN) // n
        name_font, small_font, score_font = self.font(26), self.font(19), self.font(40)
        for p in range(n):
            x = rect.x + MARGIN + p * card_w
            alive = bool(batch.alive[g, p])
            # The colour bar glows like a trail.
            bar = pygame.Rect(x, rect.y + 12, 6, rect.height - 24)
            halo = _halo(TRAIL_COLOURS[p], 14)
            surface.blit(
                pygame.transform.smoothscale(halo, (22, bar.height + 16)),
                (bar.x - 8, bar.y - 8),
                special_flags=pygame.BLEND_RGB_ADD,
            )
            surface.fill(HEAD_COLOURS[p] if alive else TRAIL_COLOURS[p], bar)

            score_w = 0
            if frame.scores is not None:
                score = _format_score(frame.scores[p])
                img = score_font.render(score, True, TEXT)
                score_w = img.get_width() + 10
                surface.blit(img, img.get_rect(midright=(x + card_w - 14, rect.centery)))
            name = _fit_text(name_font, names[p], card_w - 30 - score_w)
            surface.blit(name_font.render(name, True, HEAD_COLOURS[p]), (x + 16, rect.y + 12))
            if alive:
                state = "winner" if batch.done[g] else "alive"
            else:
                state = _CAUSE_TEXT.get(Cause(int(batch.cause[g, p])), "crashed")
            colour = TEXT if state == "winner" else DIM_TEXT
            surface.blit(small_font.render(state, True, colour), (x + 16, rect.y + 38))
        pygame.draw.line(surface, GRID, (0, rect.bottom - 1), (rect.right, rect.bottom - 1))

    def _draw_footer(self, surface: pygame.Surface, rect: pygame.Rect, frame: Frame) -> None:
        font = self.font(20)
        y = rect.centery
        if frame.progress is not None:
            bar = pygame.Rect(MARGIN, rect.y + 2, rect.width - 2 * MARGIN, 4)
            surface.fill(GRID, bar)
            done = bar.copy()
            done.width = int(bar.width * min(1.0, max(0.0, frame.progress)))
            surface.fill(TEXT, done)
            y += 3
        left = font.render(frame.info, True, DIM_TEXT)
        surface.blit(left, left.get_rect(midleft=(MARGIN, y)))
        right_text = frame.status or frame.hint
        if right_text:
            colour = (255, 210, 120) if frame.status else DIM_TEXT
            avail = rect.width - left.get_width() - 3 * MARGIN
            right = font.render(_fit_text(font, right_text, avail), True, colour)
            surface.blit(right, right.get_rect(midright=(rect.width - MARGIN, y)))

    def _draw_banner(self, surface: pygame.Surface, board: pygame.Rect, banner: Banner) -> None:
        colour = HEAD_COLOURS[banner.seat] if banner.seat >= 0 else TEXT
        # As big as fits: about a third of the board's height, never wider than the window.
        avail = surface.get_width() - 2 * MARGIN - 60
        size = max(24, min(104, board.height // 3, surface.get_width() // 6))
        width = self.font(size).size(banner.title)[0]
        if width > avail:
            size = max(24, int(size * avail / width))
        title_font = self.font(size)
        title = title_font.render(_fit_text(title_font, banner.title, avail), True, colour)
        sub_font = self.font(max(20, min(30, size // 3)))
        sub = sub_font.render(banner.subtitle, True, TEXT) if banner.subtitle else None
        height = title.get_height() + (sub.get_height() + 10 if sub else 0)
        panel = pygame.Rect(
            0, 0, max(title.get_width(), sub.get_width() if sub else 0) + 60, height + 36
        )
        panel.center = board.center
        shade = pygame.Surface(panel.size, pygame.SRCALPHA)
        pygame.draw.rect(shade, (6, 7, 12, 200), shade.get_rect(), border_radius=14)
        pygame.draw.rect(shade, (*colour, 160), shade.get_rect(), width=2, border_radius=14)
        surface.blit(shade, panel)
        title_rect = title.get_rect(midtop=(panel.centerx, panel.y + 18))
        # A blurred copy behind the title makes it glow (drawn on black: black adds no light).
        w, h = title.get_size()
        on_black = pygame.Surface((w, h))
        on_black.blit(title, (0, 0))
        blur = pygame.transform.smoothscale(
            pygame.transform.smoothscale(on_black, (max(1, w // 6), max(1, h // 6))), (w, h)
        )
        surface.blit(blur, title_rect, special_flags=pygame.BLEND_RGB_ADD)
        surface.blit(title, title_rect)
        if sub is not None:
            surface.blit(sub, sub.get_rect(midtop=(panel.centerx, title_rect.bottom + 10)))


_CAUSE_TEXT = {
    Cause.WALL: "hit a wall",
    Cause.TRAIL: "hit a trail",
    Cause.HEAD_ON: "head-on",
    Cause.FORFEIT: "forfeit",
}


def _format_score(score: float) -> str:
    return f"{score:g}" if score != int(score) else str(int(score))


def _fit_text(font: pygame.font.Font, text: str, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits in ``width`` pixels."""
    if font.size(text)[0] <= width:
        return text
    while text and font.size(text + "…")[0] > width:
        text = text[:-1]
    return text + "…"


class PygameViewer:
    """The ``render_mode="human"`` viewer of the environments: a window that shows each frame.

    ``render`` opens the window on first use (sized for the map at ``cell_size`` pixels a square),
    draws the game, keeps the window responsive (events are pumped; closing it closes the viewer)
    and holds the frame rate at ``fps``.
    """

    def __init__(self, cell_size: int = 16, fps: int = 10) -> None:
        if cell_size < 1:
            raise ValueError(f"cell_size must be >= 1, got {cell_size}")
        if fps < 1:
            raise ValueError(f"fps must be >= 1, got {fps}")
        self.cell_size = cell_size
        self.fps = fps
        self._window: pygame.Surface | None = None
        self._clock: pygame.time.Clock | None = None
        self._drawer: FrameDrawer | None = None

    def render(self, batch: TronBatch, game: int) -> None:
        m = batch.map_of(game)
        if self._window is None:
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            pygame.display.init()
            self._window = pygame.display.set_mode(
                window_size((m.width, m.height), self.cell_size), pygame.RESIZABLE
            )
            pygame.display.set_caption("Tron")
            self._clock = pygame.time.Clock()
            self._drawer = FrameDrawer()
        assert self._drawer is not None and self._clock is not None
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.close()
                return
        banner = None
        if batch.done[game]:
            w = int(batch.winner[game])
            banner = Banner(f"Player {w + 1} wins" if w >= 0 else "Draw", seat=w)
        frame = Frame(
            batch=batch,
            game=game,
            info=f"turn {int(batch.turn[game])}  ·  map {m.name}",
            banner=banner,
            time=pygame.time.get_ticks() / 1000.0,
        )
        self._drawer.draw(pygame.display.get_surface(), frame)
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        """Close the window (a later ``render`` opens a new one)."""
        if self._window is not None:
            pygame.display.quit()
            self._window = None
