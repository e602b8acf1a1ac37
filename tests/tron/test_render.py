"""Renderers: the text of a known position, the colours of the image, the human-mode lookup."""

from __future__ import annotations

import numpy as np
import pytest

import tron.render
from tron.env import TronEnv
from tron.maps import parse_map
from tron.render import CRASH, FLOOR, HEAD_COLOURS, TRAIL_COLOURS, WALL, make_viewer
from tron.render.image import ImageViewer, crash_mask, render_rgb
from tron.render.text import TextViewer, render_text
from tron.rules import Direction, TronBatch

N, E, S, W = Direction.N, Direction.E, Direction.S, Direction.W
SMALL = parse_map("6 4\n#    #\n 1  2 \n      \n  ##  \n", "small")


def played(moves: list[tuple[int, int]]) -> TronBatch:
    batch = TronBatch([SMALL], 1)
    for a in moves:
        batch.step(np.array([a]))
    return batch


def test_text__start_and_after_a_crash() -> None:
    assert render_text(played([]), 0) == (
        "#....#\n.1..2.\n......\n..##..\nturn 0  1: alive  2: alive\n"
    )
    assert render_text(played([(S, S)]), 0) == (
        "#....#\n.a..b.\n.1..2.\n..##..\nturn 1  1: alive  2: alive\n"
    )
    # Player 1 turns west; player 2 reverses into its own trail and crashes where it stands.
    assert render_text(played([(S, S), (W, N)]), 0) == (
        "#....#\n.a..b.\n1a..X.\n..##..\nturn 2  1: alive  2: crashed (trail)  player 1 wins\n"
    )


def test_text__draw() -> None:
    # Both move towards each other twice and meet head-on in the middle square: a draw.
    batch = TronBatch([parse_map("5 1\n1   2\n", "line")], 1)
    for _ in range(2):
        batch.step(np.array([[E, W]]))
    assert render_text(batch, 0) == (
        "aX.Xb\nturn 2  1: crashed (head_on)  2: crashed (head_on)  draw\n"
    )


def test_image__colours_at_the_expected_cells() -> None:
    cs = 4
    frame = render_rgb(played([(S, S), (W, N)]), 0, cell_size=cs)
    assert frame.shape == (4 * cs, 6 * cs, 3) and frame.dtype == np.uint8

    def cell(r: int, c: int) -> np.ndarray:
        return frame[r * cs : (r + 1) * cs, c * cs : (c + 1) * cs]

    assert (cell(0, 0) == WALL).all() and (cell(3, 3) == WALL).all()
    assert (cell(0, 1) == FLOOR).all()
    assert (cell(1, 1) == TRAIL_COLOURS[0]).all() and (cell(2, 1) == TRAIL_COLOURS[0]).all()
    assert (cell(1, 4) == TRAIL_COLOURS[1]).all()
    assert (cell(2, 0) == HEAD_COLOURS[0]).all()
    # Player 2 crashed on (2, 4): its head colour crossed by an X in the crash colour.
    crashed = cell(2, 4)
    mark = crash_mask(cs)
    assert (crashed[mark] == CRASH).all() and (crashed[~mark] == HEAD_COLOURS[1]).all()
    assert (crashed[cs // 2, cs // 2] == CRASH).all() and (crashed[0, 1] == HEAD_COLOURS[1]).all()


def test_image__palette_is_distinct() -> None:
    colours = [FLOOR, WALL, CRASH, *TRAIL_COLOURS, *HEAD_COLOURS]
    assert len(set(colours)) == len(colours) == 11
    for trail, head in zip(TRAIL_COLOURS, HEAD_COLOURS, strict=True):
        assert sum(head) > sum(trail)  # heads brighter than trails


def test_image__cell_size() -> None:
    batch = played([])
    assert render_rgb(batch, 0, cell_size=1).shape == (4, 6, 3)
    assert ImageViewer(cell_size=3).render(batch, 0).shape == (12, 18, 3)
    with pytest.raises(ValueError, match="cell_size"):
        render_rgb(batch, 0, cell_size=0)


def test_viewers__for_each_mode() -> None:
    assert isinstance(make_viewer("ansi"), TextViewer)
    assert isinstance(make_viewer("rgb_array", cell_size=5), ImageViewer)
    with pytest.raises(ValueError, match="render_mode must be None or one of"):
        make_viewer("video")


def test_human_mode__clear_error_without_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tron.render, "human_available", lambda: False)
    with pytest.raises(ValueError, match=r"needs the pygame window \(tron.render.pygame_view\)"):
        make_viewer("human")
    with pytest.raises(ValueError, match="use render_mode='rgb_array'"):
        TronEnv(render_mode="human")


def test_env_render_modes() -> None:
    env = TronEnv(SMALL, seat=0, render_mode="ansi")
    env.reset(seed=0)
    assert env.render() == render_text(env.batch, 0)
    env = TronEnv(SMALL, seat=0, render_mode="rgb_array")
    env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), render_rgb(env.batch, 0))


def test_env_uses_an_injected_viewer() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[int] = []
            self.closed = False

        def render(self, batch: TronBatch, game: int) -> str:
            self.calls.append(int(batch.turn[game]))
            return "frame"

        def close(self) -> None:
            self.closed = True

    viewer = Recorder()
    env = TronEnv(SMALL, seat=0, render_mode="ansi", viewer=viewer)
    env.reset(seed=0)
    env.step(S)
    assert env.render() == "frame" and viewer.calls == [1]
    env.close()
    assert viewer.closed
