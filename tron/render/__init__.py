"""Drawing Tron games: the ``Viewer`` interface, the shared palette and the viewer for a mode.

Dynamics and drawing are separate: environments hold a ``Viewer`` (injected, or made on first use
by ``make_viewer`` from the render mode) and hand it the batch and the game to draw.

Render modes:

- ``"ansi"``: ``tron.render.text.TextViewer``, the board as characters.
- ``"rgb_array"``: ``tron.render.image.ImageViewer``, an ``(H * cell, W * cell, 3)`` uint8 frame.
- ``"human"``: a window, ``PygameViewer`` in the module ``tron.render.pygame_view``, imported only
  when this mode is asked for (pygame is never imported otherwise). That class is built as
  ``PygameViewer(cell_size=..., fps=...)``, implements ``Viewer`` (``render`` shows the frame and
  returns ``None``) and reuses ``tron.render.image`` for its pixels: one palette, one layout.

Palette and layout (shared by every graphical viewer): square ``(row, col)`` of the map covers
pixels ``[row * cell, (row + 1) * cell) x [col * cell, (col + 1) * cell)``, no grid lines; floor
``FLOOR``, walls ``WALL`` (grey), player ``p``'s trail ``TRAIL_COLOURS[p]`` and its head the brighter
``HEAD_COLOURS[p]``; a crashed player's last square (its head) is crossed by an X in ``CRASH``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from typing import Any, Protocol

from tron.rules import TronBatch

Colour = tuple[int, int, int]

FLOOR: Colour = (16, 18, 28)
WALL: Colour = (128, 128, 128)
CRASH: Colour = (255, 255, 255)
#: Trail colours of players 0..3: blue, orange, green, magenta.
TRAIL_COLOURS: tuple[Colour, ...] = ((30, 110, 210), (210, 100, 20), (40, 160, 60), (170, 50, 170))
#: Head colours, brighter versions of the trail colours.
HEAD_COLOURS: tuple[Colour, ...] = (
    (120, 200, 255),
    (255, 190, 90),
    (130, 240, 140),
    (250, 130, 250),
)

#: Every render mode the environments know.
RENDER_MODES = ("ansi", "rgb_array", "human")
#: The module that provides the window for ``"human"``.
HUMAN_VIEWER_MODULE = "tron.render.pygame_view"


class Viewer(Protocol):
    """Draws one game of a batch."""

    def render(self, batch: TronBatch, game: int) -> Any:
        """Draw game ``game`` of ``batch``; return the frame (a ``str``, an array or ``None``)."""
        ...

    def close(self) -> None:
        """Release what the viewer holds (a window)."""
        ...


def human_available() -> bool:
    """Whether the window viewer for ``render_mode="human"`` is part of this build."""
    return importlib.util.find_spec(HUMAN_VIEWER_MODULE) is not None


def available_render_modes() -> list[str]:
    """The render modes of this build: ``"human"`` only once its window module exists."""
    return [m for m in RENDER_MODES if m != "human" or human_available()]


def check_render_mode(render_mode: str | None, modes: Sequence[str]) -> None:
    """Refuse a render mode the environment does not offer, or ``"human"`` without its window.

    Raises:
        ValueError: with the modes that are available.
    """
    if render_mode is None:
        return
    if render_mode == "human" and not human_available():
        raise ValueError(
            f"render_mode='human' needs the pygame window ({HUMAN_VIEWER_MODULE}), which this "
            "build does not have yet; use render_mode='rgb_array' (frames) or 'ansi' (text)"
        )
    if render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {list(modes)}, got {render_mode!r}")


def make_viewer(render_mode: str, *, cell_size: int = 16, fps: int = 10) -> Viewer:
    """The viewer of a render mode.

    Args:
        render_mode: ``"ansi"``, ``"rgb_array"`` or ``"human"``.
        cell_size: pixels per square (graphical modes).
        fps: frames per second of the window (``"human"``).
    """
    if render_mode == "ansi":
        from tron.render.text import TextViewer

        return TextViewer()
    if render_mode == "rgb_array":
        from tron.render.image import ImageViewer

        return ImageViewer(cell_size=cell_size)
    check_render_mode(render_mode, RENDER_MODES)
    module = importlib.import_module(HUMAN_VIEWER_MODULE)
    viewer: Viewer = module.PygameViewer(cell_size=cell_size, fps=fps)
    return viewer


__all__ = [
    "CRASH",
    "FLOOR",
    "HEAD_COLOURS",
    "RENDER_MODES",
    "TRAIL_COLOURS",
    "WALL",
    "Viewer",
    "available_render_modes",
    "check_render_mode",
    "human_available",
    "make_viewer",
]
