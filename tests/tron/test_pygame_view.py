"""The pygame window: colours at known squares, the slide between turns, layout, the env viewer."""

from __future__ import annotations

import os

# Headless even when run without `make test`: never look for a real display.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pygame
import pytest

from tron.env import TronEnv
from tron.maps import get_map, parse_map
from tron.render import CRASH, FLOOR, HEAD_COLOURS, TRAIL_COLOURS, WALL
from tron.render.pygame_view import (
    FOOTER_HEIGHT,
    HUD_HEIGHT,
    MAX_CELL,
    Banner,
    Frame,
    FrameDrawer,
    Layout,
    cell_for_screen,
    surface_to_array,
    window_size,
)
from tron.rules import Direction, TronBatch

N, E, S, W = Direction
SMALL = parse_map("6 4\n#    #\n 1  2 \n      \n  ##  \n", "small")
# 14 wide: the far right stays dark floor while the players play on the left.
WIDE = parse_map("14 4\n#             \n 1  2         \n              \n  ##          \n", "wide")


def played(game_map: object, moves: list[tuple[int, int]]) -> TronBatch:
    batch = TronBatch([game_map], 1)  # type: ignore[list-item]
    for a in moves:
        batch.step(np.array([a]))
    return batch


def draw(frame: Frame, size: tuple[int, int] | None = None) -> tuple[np.ndarray, Layout]:
    m = frame.batch.map_of(frame.game)
    surface = pygame.Surface(size or window_size((m.width, m.height), 12))
    layout = FrameDrawer().draw(surface, frame)
    return surface_to_array(surface), layout


def centre(pixels: np.ndarray, layout: Layout, r: int, c: int) -> tuple[int, ...]:
    cell = layout.cell
    y = layout.board.y + r * cell + cell // 2
    x = layout.board.x + c * cell + cell // 2
    return tuple(int(v) for v in pixels[y, x])


def test_pygame_view__colours_at_the_expected_squares() -> None:
    # Player 1 turns west; player 2 reverses into its own trail and crashes (as in test_render).
    batch = played(WIDE, [(S, S), (W, N)])
    pixels, layout = draw(Frame(batch, names=("a", "b"), scores=(0.0, 1.0), time=0.25))
    assert layout.cell == 12
    assert centre(pixels, layout, 0, 0) == WALL and centre(pixels, layout, 3, 3) == WALL
    assert centre(pixels, layout, 1, 1) == TRAIL_COLOURS[0]
    assert centre(pixels, layout, 2, 1) == TRAIL_COLOURS[0]
    assert centre(pixels, layout, 1, 4) == TRAIL_COLOURS[1]
    assert centre(pixels, layout, 2, 0) == HEAD_COLOURS[0]  # the live head, brighter
    assert centre(pixels, layout, 2, 4) == CRASH  # the X over the crashed player's square
    # Light only falls on the floor near the bikes; far away the floor is the palette's.
    assert centre(pixels, layout, 1, 12) == FLOOR and centre(pixels, layout, 3, 13) == FLOOR
    near = centre(pixels, layout, 0, 1)  # just above a trail: lit in its colour
    assert near != FLOOR and near[2] > FLOOR[2]


def test_pygame_view__same_squares_as_the_rgb_array_frame() -> None:
    from tron.render.image import render_rgb

    batch = played(SMALL, [(S, S)])
    pixels, layout = draw(Frame(batch))
    image = render_rgb(batch, 0, cell_size=1)
    for r in range(SMALL.height):
        for c in range(SMALL.width):
            if batch.board(0)[r, c] != 0:  # the floor is lit around trails in the window
                assert centre(pixels, layout, r, c) == tuple(int(v) for v in image[r, c])


def test_pygame_view__heads_slide_into_their_newest_square() -> None:
    batch = played(WIDE, [(E, E)])  # player 1 moved east into (1, 2)
    frame = Frame(batch, last_moves=(int(E), int(E)), slide=0.25)
    pixels, layout = draw(frame)
    cell = layout.cell
    y = layout.board.y + 1 * cell + cell // 2
    x0 = layout.board.x + 2 * cell
    assert tuple(pixels[y, x0 + 1]) == HEAD_COLOURS[0]  # the part the bike has reached
    ahead = tuple(int(v) for v in pixels[y, x0 + cell - 2])  # the part it has not: lit floor
    assert ahead not in (HEAD_COLOURS[0], TRAIL_COLOURS[0]) and ahead[2] > FLOOR[2]
    full, _ = draw(Frame(batch, last_moves=(int(E), int(E)), slide=1.0))
    assert tuple(full[y, x0 + cell - 2]) == HEAD_COLOURS[0]


def test_pygame_view__hud_colours_and_banner() -> None:
    batch = played(SMALL, [(S, S), (W, N)])
    plain, layout = draw(Frame(batch, names=("You", "bot")))
    bar_x = 14 + 2  # inside the first player's colour bar
    assert tuple(plain[HUD_HEIGHT // 2, bar_x]) == HEAD_COLOURS[0]  # alive: bright
    second = 14 + (layout.size[0] - 14) // 2 + 2
    assert tuple(plain[HUD_HEIGHT // 2, second]) == TRAIL_COLOURS[1]  # out: dimmed
    banner, _ = draw(Frame(batch, names=("You", "bot"), banner=Banner("You win", "Space", seat=0)))
    cy, cx = layout.board.center[1], layout.board.center[0]
    assert not np.array_equal(
        banner[cy - 20 : cy + 20, cx - 40 : cx + 40], plain[cy - 20 : cy + 20, cx - 40 : cx + 40]
    )


@pytest.mark.parametrize("map_size", [(15, 15), (50, 50), (200, 3), (3, 120), (1, 1)])
def test_pygame_view__layout_fits_any_map(map_size: tuple[int, int]) -> None:
    for size in [(600, 500), (1280, 900), (320, 240)]:
        layout = Layout.fit(map_size, size)
        assert layout.cell >= 1
        if layout.cell > 1:
            assert layout.board.top >= HUD_HEIGHT and layout.board.bottom <= size[1] - FOOTER_HEIGHT
            assert layout.board.left >= 0 and layout.board.right <= size[0]
    cell = cell_for_screen(map_size, (1920, 1080))
    assert 2 <= cell <= MAX_CELL
    assert Layout.fit(map_size, window_size(map_size, cell)).cell == cell


def test_pygame_view__big_map_draws() -> None:
    batch = played(get_map("room50"), [(E, W)] * 5)
    pixels, layout = draw(Frame(batch, time=1.0), size=(700, 600))
    assert layout.cell == 9
    assert (
        centre(pixels, layout, *(int(v) for v in batch.head_positions()[0, 0])) == HEAD_COLOURS[0]
    )


def test_pygame_view__env_human_mode_opens_a_window() -> None:
    env = TronEnv(maps="room10", seat=0, render_mode="human")
    try:
        env.reset(seed=0)
        for _ in range(3):
            assert not env.step(int(E))[2]
        assert env.render() is None
        window = pygame.display.get_surface()
        assert window is not None and window.get_size() == window_size((10, 10), 16)
        pixels = surface_to_array(window)
        layout = Layout.fit((10, 10), window.get_size())
        r, c = (int(v) for v in env.batch.head_positions()[0, env.seat])
        assert centre(pixels, layout, r, c) == HEAD_COLOURS[env.seat]
    finally:
        env.close()
    assert pygame.display.get_surface() is None
