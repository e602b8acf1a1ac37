"""Maps: the text format, the built-in set, the random generator and the board symmetries."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tron.maps
from tron.maps import (
    BUILTIN_MAP_NAMES,
    Map,
    MapError,
    builtin_maps,
    format_map,
    get_map,
    load_map,
    parse_map,
    random_map,
)

SMALL = "5 3\n#1  #\n  # 2\n#####\n"


def region(walls: np.ndarray, start: tuple[int, int]) -> set[tuple[int, int]]:
    """Open squares reachable from ``start`` (an independent BFS, not the module's)."""
    h, w = walls.shape
    seen = {start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for nb in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nb[0] < h and 0 <= nb[1] < w and not walls[nb] and nb not in seen:
                seen.add(nb)
                queue.append(nb)
    return seen


def is_fair(m: Map) -> bool:
    """The symmetry each player count promises (see ``random_map``)."""
    same = np.array_equal
    if m.n_players == 2:
        r = m.rotated180()
        return same(r.walls, m.walls) and r.starts == (m.starts[1], m.starts[0])
    if m.n_players == 3:
        f = m.flipped_lr()
        (_, c1), s2, s3 = m.starts
        on_axis = c1 == m.width // 2
        return same(f.walls, m.walls) and f.starts[1:] == (s3, s2) and on_axis
    if m.height == m.width:
        r = m.rotated90()
        return same(r.walls, m.walls) and r.starts == m.starts[1:] + m.starts[:1]
    lr, ud = m.flipped_lr(), m.flipped_ud()
    s = m.starts
    return (
        same(lr.walls, m.walls)
        and same(ud.walls, m.walls)
        and lr.starts == (s[1], s[0], s[3], s[2])
        and ud.starts == (s[3], s[2], s[1], s[0])
    )


# ------------------------------------------------------------------ parsing and writing


def test_parse_map__exact_walls_and_starts() -> None:
    m = parse_map(SMALL, "small")
    assert m.name == "small"
    assert (m.width, m.height, m.n_players) == (5, 3, 2)
    assert m.starts == ((0, 1), (1, 4))
    expected = [[1, 0, 0, 0, 1], [0, 0, 1, 0, 0], [1, 1, 1, 1, 1]]
    np.testing.assert_array_equal(m.walls, np.array(expected, dtype=bool))


def test_parse_map__default_name() -> None:
    assert parse_map(SMALL).name == "custom"


@pytest.mark.parametrize(
    "text",
    [
        SMALL.replace("\n", "\r\n"),  # Windows line endings
        SMALL.rstrip("\n"),  # no final newline
        SMALL + "\n\n  \n",  # blank lines after the last row
        " 5  3 \n" + SMALL.split("\n", 1)[1],  # spaces around the size numbers
    ],
    ids=["crlf", "no-final-newline", "trailing-blank-lines", "spaced-size-line"],
)
def test_parse_map__lenient_about_line_endings(text: str) -> None:
    assert parse_map(text, "small") == parse_map(SMALL, "small")


def test_parse_map__players_three_and_four() -> None:
    m = parse_map("4 2\n1 3 \n 4 2\n")
    assert m.starts == ((0, 0), (1, 3), (0, 2), (1, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1, column 1: expected the size line 'W H'"),
        ("\n#1 2\n", "line 1, column 1: expected the size line 'W H' (width and height, two"),
        ("4\n 1 2\n", "line 1, column 2: expected the size line 'W H'"),
        (
            "4 1 1\n 1 2\n",
            "line 1, column 5: expected the size line 'W H' (width and height, two "
            "positive integers), got extra '1' after the height",
        ),
        ("four 1\n 1 2\n", "line 1, column 1: the width must be a positive integer, got 'four'"),
        ("4 x\n 1 2\n", "line 1, column 3: the height must be a positive integer, got 'x'"),
        ("0 1\n\n", "line 1, column 1: the width must be a positive integer, got '0'"),
        ("4 -1\n 1 2\n", "line 1, column 3: the height must be a positive integer, got '-1'"),
        ("4 1.5\n 1 2\n", "line 1, column 3: the height must be a positive integer"),
        (
            "4 3\n 1 2\n####\n",
            "line 4, column 1: the map ends after 2 rows, but the size line says 3",
        ),
        (
            "4 1\n 1 2\n####\n",
            "line 3, column 1: text after the last row (the size line says 1 rows)",
        ),
        (
            "4 2\n 1 2\n##\n",
            "line 3, column 3: the row has 2 characters, the size line says 4: every "
            "row must be exactly W characters (an editor may have stripped trailing spaces",
        ),
        ("4 2\n 1 2\n\n", "line 3, column 1: the row has 0 characters, the size line says 4"),
        (
            "99999 99999\n 1 2\n",
            "line 2, column 5: the row has 4 characters, the size line says 99999",
        ),
        ("4 2\n 1 2 #\n####\n", "line 2, column 5: the row has 6 characters, the size line says 4"),
        ("4 2\n 1 2\n#x##\n", "line 3, column 2: unknown character 'x' (use '#', ' ', '1'-'4')"),
        ("4 1\n1\t 2\n", "line 2, column 2: unknown character '\\t' (use '#', ' ', '1'-'4')"),
        ("4 1\n1.2 \n", "line 2, column 2: unknown character '.'"),
        (
            "6 1\n1 2 5 \n",
            "line 2, column 5: unknown character '5' (use '#', ' ', '1'-'4'); "
            "players are numbered 1 to 4",
        ),
        ("4 1\n0 12\n", "line 2, column 1: unknown character '0'"),
        (
            "4 2\n 1 2\n 1  \n",
            "line 3, column 2: second start '1' (the first is at line 2, column 2)",
        ),
        ("4 2\n    \n ## \n", "line 2, column 1: no start squares"),
        ("4 2\n  1 \n ## \n", "line 2, column 3: only one start ('1'): a map needs 2 to 4 players"),
        ("4 2\n  2 \n ## \n", "line 2, column 3: only one start ('2')"),
        (
            "4 2\n 1 3\n ## \n",
            "line 2, column 4: start '3' but no start '2': number the players 1..n",
        ),
        ("4 2\n 2 3\n ## \n", "line 2, column 2: start '2' but no start '1'"),
        ("4 2\n 1 2\n 4##\n", "line 3, column 2: start '4' but no start '3'"),
    ],
    ids=[
        "empty",
        "empty-size-line",
        "no-height",
        "three-numbers",
        "width-not-a-number",
        "height-not-a-number",
        "zero-width",
        "negative-height",
        "fractional-height",
        "too-few-rows",
        "too-many-rows",
        "short-row-stripped-spaces",
        "empty-row",
        "huge-size-line",
        "long-row",
        "unknown-character",
        "tab",
        "dot",
        "fifth-player",
        "player-zero",
        "duplicate-start",
        "no-start",
        "one-start",
        "only-start-two",
        "gap-in-players",
        "missing-start-one",
        "missing-start-three",
    ],
)
def test_parse_map__malformed_names_line_and_column(text: str, message: str) -> None:
    with pytest.raises(MapError) as info:
        parse_map(text)
    assert str(info.value).startswith(message)


def test_map_error_is_a_value_error() -> None:
    assert issubclass(MapError, ValueError)


def test_format_map__exact_text() -> None:
    assert format_map(parse_map(SMALL)) == SMALL


@pytest.mark.parametrize("name", BUILTIN_MAP_NAMES)
def test_format_parse_round_trip__builtin(name: str) -> None:
    m = get_map(name)
    assert parse_map(format_map(m), name) == m


@settings(max_examples=25, deadline=None)
@given(
    st.integers(5, 20),
    st.integers(5, 20),
    st.integers(2, 4),
    st.floats(0, 0.5),
    st.integers(0, 999),
)
def test_format_parse_round_trip__random(h: int, w: int, n: int, density: float, seed: int) -> None:
    m = random_map(h, w, n_players=n, density=density, seed=seed)
    assert parse_map(format_map(m), m.name) == m


# ------------------------------------------------------------------ the Map type


def open_board(h: int = 3, w: int = 4) -> np.ndarray:
    return np.zeros((h, w), dtype=bool)


@pytest.mark.parametrize(
    ("walls", "starts", "message"),
    [
        (
            np.array([[True, False, False]]),
            ((0, 0), (0, 2)),
            "player 0 starts at (row 0, col 0), which is a wall",
        ),
        (
            open_board(),
            ((0, 0), (3, 1)),
            "player 1 starts at (row 3, col 1), off the 3x4 (rows x cols) board",
        ),
        (open_board(), ((0, -1), (1, 1)), "player 0 starts at (row 0, col -1), off the 3x4"),
        (open_board(), ((0, 4), (1, 1)), "player 0 starts at (row 0, col 4), off the"),
        (
            open_board(),
            ((1, 1), (2, 2), (1, 1)),
            "player 2 starts at (row 1, col 1), the start of player 0",
        ),
        (open_board(), ((1, 1),), "needs 2 to 4 start squares, got 1"),
        (
            open_board(),
            ((0, 0), (0, 1), (0, 2), (0, 3), (1, 0)),
            "needs 2 to 4 start squares, got 5",
        ),
        (
            np.zeros((3, 4), dtype=np.int8),
            ((0, 0), (1, 1)),
            "walls must be a non-empty 2-D bool array, got int8",
        ),
        (np.zeros(4, dtype=bool), ((0, 0), (0, 1)), "walls must be a non-empty 2-D bool array"),
        (
            np.zeros((0, 4), dtype=bool),
            ((0, 0), (0, 1)),
            "walls must be a non-empty 2-D bool array",
        ),
        (open_board(), ((0, 0, 1), (1, 1)), "starts must be (row, col) pairs of integers"),
        (open_board(), (("a", 0), (1, 1)), "starts must be (row, col) pairs of integers"),
    ],
    ids=[
        "start-on-wall",
        "start-below",
        "start-left",
        "start-right",
        "shared-start",
        "one-player",
        "five-players",
        "int-walls",
        "1d-walls",
        "empty-walls",
        "triple-start",
        "text-start",
    ],
)
def test_map__refuses_bad_maps_built_in_python(
    walls: np.ndarray, starts: tuple[tuple[int, int], ...], message: str
) -> None:
    with pytest.raises(MapError, match=r"^map 'bad': ") as info:
        Map("bad", walls, starts)
    assert message in str(info.value)


def test_map__walls_are_a_read_only_copy() -> None:
    walls = open_board()
    m = Map("m", walls, ((0, 0), (2, 3)))
    walls[1, 1] = True
    assert not m.walls[1, 1]
    with pytest.raises(ValueError, match="read-only"):
        m.walls[1, 1] = True


def test_map__starts_become_plain_int_tuples() -> None:
    m = Map("m", open_board(), [np.array([0, 1]), [2, 3]])  # type: ignore[arg-type]
    assert m.starts == ((0, 1), (2, 3))
    assert all(type(x) is int for s in m.starts for x in s)


def test_map__equality_and_hash_by_value() -> None:
    a = parse_map(SMALL, "a")
    b = parse_map(SMALL, "a")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != parse_map(SMALL, "b")
    assert a != parse_map(SMALL.replace("1", " ", 1).replace("  # 2", "1 # 2"), "a")


def test_map__symmetries_exact() -> None:
    m = parse_map(SMALL, "s")  # 5 wide, 3 high; starts (0, 1) and (1, 4)
    assert format_map(m.flipped_lr()) == "5 3\n#  1#\n2 #  \n#####\n"
    assert format_map(m.flipped_ud()) == "5 3\n#####\n  # 2\n#1  #\n"
    assert format_map(m.rotated180()) == "5 3\n#####\n2 #  \n#  1#\n"
    assert format_map(m.rotated90()) == "3 5\n# #\n# 1\n## \n#  \n#2#\n"
    assert m.flipped_lr().name == "s-lr" and m.rotated90().name == "s-rot90"


@pytest.mark.parametrize("name", BUILTIN_MAP_NAMES)
def test_map__symmetries_compose(name: str) -> None:
    m = get_map(name)

    def layout(x: Map) -> tuple[bytes, tuple[int, ...], tuple[tuple[int, int], ...]]:
        return x.walls.tobytes(), x.walls.shape, x.starts

    assert layout(m.flipped_lr().flipped_lr()) == layout(m)
    assert layout(m.flipped_lr().flipped_ud()) == layout(m.rotated180())
    assert layout(m.rotated90().rotated90()) == layout(m.rotated180())
    assert layout(m.rotated90().rotated90().rotated90().rotated90()) == layout(m)


# ------------------------------------------------------------------ built-in maps


def test_builtin_maps__names_files_and_count() -> None:
    names = [m.name for m in builtin_maps()]
    assert names == list(BUILTIN_MAP_NAMES)
    assert len(set(names)) == len(names) >= 12
    files = sorted(p.name for p in (Path(tron.maps.__file__).parent / "mapdata").glob("*.txt"))
    assert files == sorted(f"{n}.txt" for n in BUILTIN_MAP_NAMES)


def test_builtin_maps__filter_by_players() -> None:
    for n in (2, 3, 4):
        maps = builtin_maps(n)
        assert maps and all(m.n_players == n for m in maps)
    assert len(builtin_maps(2)) + len(builtin_maps(3)) + len(builtin_maps(4)) == len(
        BUILTIN_MAP_NAMES
    )
    with pytest.raises(ValueError, match=r"n_players must be 2\.\.4, got 5"):
        builtin_maps(5)


@pytest.mark.parametrize("n", [10, 15, 20, 25, 50])
def test_builtin_maps__rooms_are_open_squares_without_border(n: int) -> None:
    m = get_map(f"room{n}")
    assert (m.height, m.width, m.n_players) == (n, n, 2)
    assert not m.walls.any()


def test_builtin_maps__variety() -> None:
    maps = builtin_maps()
    assert any(m.height != m.width for m in maps)  # an oblong board
    assert any(m.height % 2 and m.width % 2 for m in maps)  # odd sizes
    assert any(m.height * m.width >= 30 * 30 for m in maps)  # a large one
    assert get_map("room15").starts == ((7, 3), (7, 11))


@pytest.mark.parametrize("name", BUILTIN_MAP_NAMES)
def test_builtin_maps__fair_and_connected(name: str) -> None:
    m = get_map(name)
    assert is_fair(m), f"{name} lacks the symmetry of a {m.n_players}-player map"
    reach = region(m.walls, m.starts[0])
    assert all(s in reach for s in m.starts)
    assert len(reach) == (~m.walls).sum(), f"{name} has unreachable floor"


def test_get_map__cached_and_unknown() -> None:
    assert get_map("maze") is get_map("maze")
    with pytest.raises(MapError, match=r"^unknown map 'nope'; built-in maps: room10, room15, "):
        get_map("nope")


# ------------------------------------------------------------------ load_map


def test_load_map__builtin_and_file(tmp_path: Path) -> None:
    assert load_map("cross") is get_map("cross")
    path = tmp_path / "tiny.txt"
    path.write_text(SMALL)
    assert load_map(str(path)) == parse_map(SMALL, "tiny")


def test_load_map__builtin_name_wins_over_a_file_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("room10").write_text(SMALL)
    assert load_map("room10") is get_map("room10")
    assert load_map("./room10") == parse_map(SMALL, "room10")


@pytest.mark.parametrize("spec", ["nope", "", "  ", "maps/none.txt"])
def test_load_map__unknown_lists_builtins(spec: str) -> None:
    with pytest.raises(MapError) as info:
        load_map(spec)
    message = str(info.value)
    assert "built-in maps: " + ", ".join(BUILTIN_MAP_NAMES) in message
    assert "\n" not in message


def test_load_map__unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(
        MapError, match=r"^cannot read map file .*: Is a directory; built-in maps: room10"
    ):
        load_map(str(tmp_path))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MapError, match=r"^cannot read map file .*: not UTF-8 text; built-in maps"):
        load_map(str(binary))


def test_load_map__malformed_file_names_path_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("5 3\n#1  #\n  # 2\n##x##\n")
    with pytest.raises(MapError) as info:
        load_map(str(path))
    assert (
        str(info.value)
        == f"{path}: line 4, column 3: unknown character 'x' (use '#', ' ', '1'-'4')"
    )


# ------------------------------------------------------------------ random maps

random_args = st.tuples(
    st.integers(5, 24),  # height
    st.integers(5, 24),  # width
    st.integers(2, 4),  # players
    st.floats(0.0, 0.5),  # density
    st.integers(0, 2**31 - 1),  # seed
)


@settings(max_examples=80, deadline=None)
@given(random_args)
def test_random_map__fair_connected_spacious(args: tuple[int, int, int, float, int]) -> None:
    h, w, n, density, seed = args
    m = random_map(h, w, n_players=n, density=density, seed=seed)
    assert (m.height, m.width, m.n_players) == (h, w, n)
    assert is_fair(m)
    reach = region(m.walls, m.starts[0])
    # Pockets are filled, so the starts' region is all the floor; at least half of it survived.
    assert all(s in reach for s in m.starts) and len(reach) == (~m.walls).sum()
    min_dist = max(2, min(h, w) // 2)
    for i, (r1, c1) in enumerate(m.starts):
        for r2, c2 in m.starts[i + 1 :]:
            assert abs(r1 - r2) + abs(c1 - c2) >= min_dist
    padded = np.pad(~m.walls, 1).astype(int)
    for r, c in m.starts:
        open_nb = padded[r, c + 1] + padded[r + 2, c + 1] + padded[r + 1, c] + padded[r + 1, c + 2]
        assert open_nb >= 2


@settings(max_examples=20, deadline=None)
@given(random_args)
def test_random_map__same_seed_same_map(args: tuple[int, int, int, float, int]) -> None:
    h, w, n, density, seed = args
    assert random_map(h, w, n_players=n, density=density, seed=seed) == random_map(
        h, w, n_players=n, density=density, seed=seed
    )


def test_random_map__seeds_differ_and_names() -> None:
    maps = [random_map(15, 15, density=0.2, seed=s) for s in range(10)]
    assert len({(m.walls.tobytes(), m.starts) for m in maps}) == 10
    assert maps[3].name == "random-15x15-2p-d0.2-s3"
    assert random_map(6, 9, n_players=3, seed=1, name="mine").name == "mine"


def test_random_map__unseeded_names_its_seed() -> None:
    m = random_map(12, 10)
    seed = int(m.name.rsplit("-s", 1)[1])
    assert random_map(12, 10, seed=seed) == m


def test_random_map__density() -> None:
    assert not random_map(15, 15, density=0.0, seed=1).walls.any()
    # Pocket filling only adds walls; the target is met before it (segments may overshoot a bit).
    fractions = [random_map(20, 20, density=0.2, seed=s).walls.mean() for s in range(10)]
    assert all(0.2 <= f < 0.45 for f in fractions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 4, "width": 10}, "at least 5x5 squares, got 4x10"),
        ({"height": 10, "width": 4}, "at least 5x5 squares"),
        ({"height": 10, "width": 10, "n_players": 1}, "n_players must be 2..4, got 1"),
        ({"height": 10, "width": 10, "n_players": 5}, "n_players must be 2..4, got 5"),
        ({"height": 10, "width": 10, "density": 0.6}, r"density must be in \[0, 0.5\], got 0.6"),
        ({"height": 10, "width": 10, "density": -0.1}, "density must be in"),
    ],
)
def test_random_map__refuses_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        random_map(**kwargs)  # type: ignore[arg-type]
