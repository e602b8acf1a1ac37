"""Tron maps: the AI Challenge 2010 text format, the built-in set and a random map generator.

The text format (Google AI Challenge 2010)::

    W H            the size line: width and height, two positive integers
    #####          then H rows of exactly W characters each:
    #1  #            '#' wall, ' ' floor, '1'..'4' the start square of player 1..4
    #  2#          players must be numbered 1..n without gaps, 2 <= n <= 4
    #####

Squares off the board count as walls, so a map needs no border of ``#``. Reading is lenient about
line endings (``\\r\\n``), a missing or extra final newline and blank lines after the last row, and
strict about everything else. In particular a row shorter than ``W`` is refused, even though the
usual cause is harmless (an editor stripped trailing floor spaces): padding it silently would also
accept a row that really lost its walls. Every refusal is a ``MapError`` naming the line and column.

Player ``p`` of the engine (0-based) starts on the square marked ``p + 1``.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

MAX_PLAYERS = 4

#: The built-in maps, by name (their text lives in ``tron/mapdata/<name>.txt``).
BUILTIN_MAP_NAMES: tuple[str, ...] = (
    "room10",
    "room15",
    "room20",
    "room25",
    "room50",
    "pillars",
    "cross",
    "ring",
    "quadrants",
    "corridors",
    "maze",
    "oblong",
    "chambers",
    "room17-3p",
    "pillars21-3p",
    "room16-4p",
    "arena21-4p",
)

# Next to this module, not through importlib.resources: under setuptools' editable install that
# raises "MultiplexedPath only supports directories" once the finder's path hook is in __path__.
_MAPDATA = Path(__file__).with_name("mapdata")

_CHAR_HINT = "(use '#', ' ', '1'-'4')"


class MapError(ValueError):
    """A malformed map: the message says where (line and column for map text) and what is wrong."""


@dataclass(frozen=True, eq=False)
class Map:
    """A Tron map. Immutable: ``walls`` is a read-only copy, so maps can be shared and cached.

    Two maps are equal when their names, walls and starts are.

    Attributes:
        name: a short identifier (the built-in maps are looked up by it).
        walls: (H, W) bool, True where a square is a wall. Squares off the board count as walls.
        starts: the (row, col) start square of each player, player 0 first.

    Raises:
        MapError: ``walls`` is not a non-empty 2-D bool array, there are not 2 to 4 starts, or a
            start is off the board, on a wall or shared with another player.
    """

    name: str
    walls: NDArray[np.bool_]
    starts: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        walls = np.asarray(self.walls)
        if walls.dtype != np.bool_ or walls.ndim != 2 or walls.size == 0:
            raise MapError(
                f"map {self.name!r}: walls must be a non-empty 2-D bool array, "
                f"got {walls.dtype} with shape {walls.shape}"
            )
        walls = walls.copy()
        walls.flags.writeable = False
        object.__setattr__(self, "walls", walls)
        try:
            starts = tuple((int(r), int(c)) for r, c in self.starts)
        except (TypeError, ValueError):
            raise MapError(
                f"map {self.name!r}: starts must be (row, col) pairs of integers, got {self.starts!r}"
            ) from None
        object.__setattr__(self, "starts", starts)
        if not 2 <= len(starts) <= MAX_PLAYERS:
            raise MapError(
                f"map {self.name!r}: needs 2 to {MAX_PLAYERS} start squares, got {len(starts)}"
            )
        h, w = walls.shape
        for p, (r, c) in enumerate(starts):
            where = f"map {self.name!r}: player {p} starts at (row {r}, col {c})"
            if not (0 <= r < h and 0 <= c < w):
                raise MapError(f"{where}, off the {h}x{w} (rows x cols) board")
            if walls[r, c]:
                raise MapError(f"{where}, which is a wall")
            if starts.index((r, c)) != p:
                raise MapError(f"{where}, the start of player {starts.index((r, c))}")

    @property
    def height(self) -> int:
        return int(self.walls.shape[0])

    @property
    def width(self) -> int:
        return int(self.walls.shape[1])

    @property
    def n_players(self) -> int:
        return len(self.starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Map):
            return NotImplemented
        return (
            self.name == other.name
            and self.starts == other.starts
            and np.array_equal(self.walls, other.walls)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.walls.shape, self.walls.tobytes(), self.starts))

    def __repr__(self) -> str:
        return f"Map({self.name!r}, {self.width}x{self.height}, {self.n_players} players)"

    # Board symmetries. Each keeps the player order: player p starts on the image of its start.
    # Moves map along: left-right swaps E and W, up-down swaps N and S, a rotation by 180 degrees
    # turns each direction by two steps and a clockwise quarter turn by one (N -> E -> S -> W).

    def flipped_lr(self) -> Map:
        """The left-right mirror image (column ``c`` becomes ``W - 1 - c``)."""
        w = self.width
        return Map(
            f"{self.name}-lr", self.walls[:, ::-1], tuple((r, w - 1 - c) for r, c in self.starts)
        )

    def flipped_ud(self) -> Map:
        """The up-down mirror image (row ``r`` becomes ``H - 1 - r``)."""
        h = self.height
        return Map(
            f"{self.name}-ud", self.walls[::-1, :], tuple((h - 1 - r, c) for r, c in self.starts)
        )

    def rotated180(self) -> Map:
        """The map turned by 180 degrees (``(r, c)`` becomes ``(H - 1 - r, W - 1 - c)``)."""
        h, w = self.height, self.width
        return Map(
            f"{self.name}-rot180",
            self.walls[::-1, ::-1],
            tuple((h - 1 - r, w - 1 - c) for r, c in self.starts),
        )

    def rotated90(self) -> Map:
        """The map turned a quarter clockwise: ``(r, c)`` becomes ``(c, H - 1 - r)``, size W x H."""
        h = self.height
        return Map(
            f"{self.name}-rot90",
            np.rot90(self.walls, k=-1),
            tuple((c, h - 1 - r) for r, c in self.starts),
        )


# --------------------------------------------------------------------------- text format


def _error(line: int, column: int, what: str) -> MapError:
    return MapError(f"line {line}, column {column}: {what}")


def _parse_size(line: str) -> tuple[int, int]:
    tokens = [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", line)]
    expected = "expected the size line 'W H' (width and height, two positive integers)"
    if not tokens:
        raise _error(1, 1, f"{expected}, got an empty line")
    if len(tokens) == 1:
        raise _error(1, len(line) + 1, f"{expected}, the height is missing in {line!r}")
    if len(tokens) > 2:
        col, tok = tokens[2]
        raise _error(1, col, f"{expected}, got extra {tok!r} after the height")
    size = []
    for (col, tok), what in zip(tokens, ("width", "height"), strict=True):
        if not re.fullmatch(r"[0-9]+", tok) or int(tok) < 1:
            raise _error(1, col, f"the {what} must be a positive integer, got {tok!r}")
        size.append(int(tok))
    return size[0], size[1]


def parse_map(text: str, name: str = "custom") -> Map:
    """Read a map in the AI Challenge 2010 text format (see the module docstring).

    Args:
        text: the map text.
        name: the name the map gets.

    Returns:
        The map; player ``p`` starts on the square marked ``p + 1``.

    Raises:
        MapError: the text is malformed; the message names the line and column (1-based).
    """
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    width, height = _parse_size(lines[0])
    # Built row by row, so memory follows the text, not a size line that claims a huge board.
    walls: list[list[bool]] = []
    # digit -> (line, column, row, col) of its first occurrence
    found: dict[str, tuple[int, int, int, int]] = {}
    for r in range(height):
        ln = r + 2
        if ln > len(lines):
            raise _error(
                ln, 1, f"the map ends after {r} rows, but the size line says {height} rows"
            )
        row = lines[ln - 1]
        for c, ch in enumerate(row[:width]):
            if ch in "# ":
                continue
            if ch in "1234":
                if ch in found:
                    l0, c0, _, _ = found[ch]
                    raise _error(
                        ln, c + 1, f"second start {ch!r} (the first is at line {l0}, column {c0})"
                    )
                found[ch] = (ln, c + 1, r, c)
            else:
                extra = "; players are numbered 1 to 4" if ch.isdigit() else ""
                raise _error(ln, c + 1, f"unknown character {ch!r} {_CHAR_HINT}{extra}")
        if len(row) < width:
            raise _error(
                ln,
                len(row) + 1,
                f"the row has {len(row)} characters, the size line says {width}: every row must be "
                "exactly W characters (an editor may have stripped trailing spaces; put them back)",
            )
        if len(row) > width:
            raise _error(
                ln, width + 1, f"the row has {len(row)} characters, the size line says {width}"
            )
        walls.append([ch == "#" for ch in row])
    for ln in range(height + 2, len(lines) + 1):
        if lines[ln - 1].strip():
            raise _error(ln, 1, f"text after the last row (the size line says {height} rows)")
    if not found:
        raise _error(2, 1, "no start squares: mark 2 to 4 players' starts with '1'..'4'")
    digits = sorted(found)
    if len(digits) == 1:
        ln, col, _, _ = found[digits[0]]
        raise _error(ln, col, f"only one start ({digits[0]!r}): a map needs 2 to 4 players")
    for i, d in enumerate(digits):
        if d != str(i + 1):
            ln, col, _, _ = found[d]
            raise _error(
                ln,
                col,
                f"start {d!r} but no start {str(i + 1)!r}: number the players 1..n without gaps",
            )
    starts = tuple((found[d][2], found[d][3]) for d in digits)
    return Map(name, np.array(walls, dtype=bool), starts)


def format_map(m: Map) -> str:
    """Write a map in the AI Challenge 2010 text format; ``parse_map`` reads it back unchanged."""
    grid = np.where(m.walls, "#", " ")
    for p, (r, c) in enumerate(m.starts):
        grid[r, c] = str(p + 1)
    rows = "".join("".join(row) + "\n" for row in grid)
    return f"{m.width} {m.height}\n{rows}"


# --------------------------------------------------------------------------- built-in maps


def _builtin_list() -> str:
    return ", ".join(BUILTIN_MAP_NAMES)


@functools.cache
def get_map(name: str) -> Map:
    """A built-in map by name (see ``BUILTIN_MAP_NAMES``).

    Raises:
        MapError: no built-in map has that name.
    """
    if name not in BUILTIN_MAP_NAMES:
        raise MapError(f"unknown map {name!r}; built-in maps: {_builtin_list()}")
    text = (_MAPDATA / f"{name}.txt").read_text("utf-8")
    return parse_map(text, name)


def builtin_maps(n_players: int | None = None) -> list[Map]:
    """The built-in maps in ``BUILTIN_MAP_NAMES`` order, all or those for ``n_players`` players."""
    if n_players is not None and not 2 <= n_players <= MAX_PLAYERS:
        raise ValueError(f"n_players must be 2..{MAX_PLAYERS}, got {n_players}")
    maps = [get_map(name) for name in BUILTIN_MAP_NAMES]
    return [m for m in maps if n_players is None or m.n_players == n_players]


def load_map(spec: str) -> Map:
    """A built-in map by name, or a map file by path (the map is named after the file's stem).

    A built-in name wins over a file of the same name in the working directory; write a path such
    as ``./room15`` to read the file.

    Raises:
        MapError: ``spec`` is neither a built-in name nor a readable map file (the message lists
            the built-in maps), or the file is malformed (the message starts with the path).
    """
    if spec in BUILTIN_MAP_NAMES:
        return get_map(spec)
    if not spec.strip():
        raise MapError(f"empty map name; built-in maps: {_builtin_list()}")
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MapError(
            f"unknown map {spec!r}: not a built-in map and no such file; "
            f"built-in maps: {_builtin_list()}"
        ) from None
    except UnicodeDecodeError:
        raise MapError(
            f"cannot read map file {spec!r}: not UTF-8 text; built-in maps: {_builtin_list()}"
        ) from None
    except OSError as e:
        raise MapError(
            f"cannot read map file {spec!r}: {e.strerror or e}; built-in maps: {_builtin_list()}"
        ) from None
    try:
        return parse_map(text, name=path.stem)
    except MapError as e:
        raise MapError(f"{spec}: {e}") from None


# --------------------------------------------------------------------------- random maps

_Idx = NDArray[np.int64]
# A symmetry of the board: maps (rows, cols) index arrays onto their images.
_Symmetry = Callable[[_Idx, _Idx], tuple[_Idx, _Idx]]


def _symmetries(height: int, width: int, n_players: int) -> list[_Symmetry]:
    """The board symmetries a random map keeps, the identity first.

    The starts are the images of one square under them, in this order (for 3 players these are
    players 2 and 3; player 1 is placed on the mirror axis).
    """
    h1, w1 = height - 1, width - 1

    def ident(r: _Idx, c: _Idx) -> tuple[_Idx, _Idx]:
        return r, c

    def lr(r: _Idx, c: _Idx) -> tuple[_Idx, _Idx]:
        return r, w1 - c

    def ud(r: _Idx, c: _Idx) -> tuple[_Idx, _Idx]:
        return h1 - r, c

    def rot180(r: _Idx, c: _Idx) -> tuple[_Idx, _Idx]:
        return h1 - r, w1 - c

    def rot90(r: _Idx, c: _Idx) -> tuple[_Idx, _Idx]:
        return c, h1 - r

    def rot270(r: _Idx, c: _Idx) -> tuple[_Idx, _Idx]:
        return w1 - c, r

    if n_players == 2:
        return [ident, rot180]
    if n_players == 3:
        return [ident, lr]
    if height == width:
        return [ident, rot90, rot180, rot270]  # clockwise around the board
    return [ident, lr, rot180, ud]  # top-left, top-right, bottom-right, bottom-left


def _region(walls: NDArray[np.bool_], start: tuple[int, int]) -> NDArray[np.bool_]:
    """The open squares reachable from ``start`` through 4-neighbour moves."""
    h, w = walls.shape
    seen = np.zeros_like(walls)
    seen[start] = True
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and not walls[rr, cc] and not seen[rr, cc]:
                seen[rr, cc] = True
                queue.append((rr, cc))
    return seen


def _open_neighbours(walls: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(H, W) count of open 4-neighbours of every square (off the board counts as wall)."""
    padded = np.pad(~walls, 1, constant_values=False).astype(np.int64)
    return padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]


def _random_walls(
    rng: np.random.Generator, height: int, width: int, density: float, syms: Sequence[_Symmetry]
) -> NDArray[np.bool_]:
    """Straight wall segments, each painted with all its symmetric images, up to ``density``."""
    walls = np.zeros((height, width), dtype=bool)
    target = round(density * height * width)
    max_len = max(2, min(height, width) // 4)
    while walls.sum() < target:
        r0, c0 = int(rng.integers(height)), int(rng.integers(width))
        length = int(rng.integers(1, max_len + 1))
        steps = np.arange(length)
        if rng.random() < 0.5:
            r, c = np.full(length, r0), np.minimum(c0 + steps, width - 1)
        else:
            r, c = np.minimum(r0 + steps, height - 1), np.full(length, c0)
        for sym in syms:
            walls[sym(r, c)] = True
    return walls


def _random_starts(
    rng: np.random.Generator, walls: NDArray[np.bool_], n_players: int, syms: Sequence[_Symmetry]
) -> tuple[tuple[int, int], ...] | None:
    """Fair starts on open squares with two or more open neighbours, far enough apart; or None."""
    h, w = walls.shape
    min_dist = max(2, min(h, w) // 2)
    ok = ~walls & (_open_neighbours(walls) >= 2)
    rr, cc = np.nonzero(ok)
    images = [sym(rr, cc) for sym in syms]
    # Manhattan distance between every pair of a candidate's images: all players far apart.
    dist = np.full(rr.shape, h + w)
    for i, (ri, ci) in enumerate(images):
        for rj, cj in images[i + 1 :]:
            dist = np.minimum(dist, np.abs(ri - rj) + np.abs(ci - cj))
    candidates = np.nonzero(dist >= min_dist)[0]
    if n_players == 3:
        # Players 2 and 3 are mirror images left of and right of the axis; player 1 goes on the
        # axis (the column right of it when the width is even), at the square whose distance to
        # both comes closest to their distance to each other.
        candidates = candidates[cc[candidates] < (w - 1) / 2]
    if candidates.size == 0:
        return None
    k = int(rng.choice(candidates))
    starts = [(int(r[k]), int(c[k])) for r, c in images]
    if n_players == 3:
        (r2, c2), (r3, c3) = starts
        axis = w // 2
        rows = np.nonzero(ok[:, axis])[0]
        d12 = np.abs(rows - r2) + abs(axis - c2)
        d13 = np.abs(rows - r3) + abs(axis - c3)
        usable = np.minimum(d12, d13) >= min_dist
        if not usable.any():
            return None
        mismatch = np.where(usable, np.abs(d12 - abs(c3 - c2)), np.iinfo(np.int64).max)
        starts.insert(0, (int(rows[np.argmin(mismatch)]), axis))
    return tuple(starts)


def random_map(
    height: int,
    width: int,
    *,
    n_players: int = 2,
    density: float = 0.1,
    seed: int | None = None,
    name: str | None = None,
) -> Map:
    """A random map with symmetric obstacles and fair starts; the same arguments give the same map.

    Obstacles are straight wall segments painted with all their symmetric images, so every player
    sees the same board from its start:

    - 2 players: point symmetry (a 180-degree turn maps the board onto itself and start 1 onto 2).
    - 4 players: on a square board, 4-fold rotational symmetry, starts 1..4 clockwise (each a
      quarter turn of the previous); otherwise mirror symmetry left-right and up-down, starts
      top-left, top-right, bottom-right, bottom-left.
    - 3 players: no symmetry of a square grid maps three starts onto each other, so this is only
      nearly fair: left-right mirror symmetry, players 2 and 3 mirror images of each other, player 1
      on the axis (one column right of it when the width is even) where its distance to each of the
      others comes closest to theirs to each other.

    Starts have at least two open neighbours and are at least ``max(2, min(H, W) // 2)``
    squares apart (Manhattan; more can be impossible, as mirror images on a long thin board are at
    most ``min(H, W) - 1`` apart). All starts lie in one connected open region holding at least half
    of the open squares; open squares outside it (unreachable pockets) are filled with wall. A draw
    that misses these rules is thrown away and drawn again, the density lowered by a fifth every ten
    failures, so the call always ends (an empty board meets them).

    Args:
        height: rows, at least 5.
        width: columns, at least 5.
        n_players: 2 to 4.
        density: target fraction of wall squares, 0 to 0.5 (before pockets are filled).
        seed: seed of the generator; None draws one (it is kept in the map's name).
        name: the map's name; default ``random-{W}x{H}-{n}p-d{density}-s{seed}``.

    Raises:
        ValueError: an argument is out of range.
    """
    if height < 5 or width < 5:
        raise ValueError(f"a random map needs at least 5x5 squares, got {height}x{width} (HxW)")
    if not 2 <= n_players <= MAX_PLAYERS:
        raise ValueError(f"n_players must be 2..{MAX_PLAYERS}, got {n_players}")
    if not 0.0 <= density <= 0.5:
        raise ValueError(f"density must be in [0, 0.5], got {density}")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    syms = _symmetries(height, width, n_players)
    attempt = 0
    while True:
        walls = _random_walls(rng, height, width, density * 0.8 ** (attempt // 10), syms)
        attempt += 1
        starts = _random_starts(rng, walls, n_players, syms)
        if starts is None:
            continue
        region = _region(walls, starts[0])
        if all(region[s] for s in starts) and region.sum() * 2 >= (~walls).sum():
            break
    if name is None:
        name = f"random-{width}x{height}-{n_players}p-d{density:g}-s{seed}"
    return Map(name, ~region, starts)
