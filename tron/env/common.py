"""Pieces shared by the environments: map rotations, per-game random draws, rewards, actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tron.maps import Map, load_map
from tron.rules import TronBatch

#: A map, a built-in map name or a map file path, or a list of them (a rotation).
MapSpec = str | Map | Sequence[str | Map]
#: How a new episode picks its map from the rotation.
Rotation = Literal["cycle", "random"]
#: A fixed seat for the learner, or "random" for a new random seat every episode.
SeatSpec = int | Literal["random"]

DEFAULT_MAP = "room15"

# Streams of the per-game draws: one independent random sequence per kind of choice.
_STREAM_MAP = 1
_STREAM_SEAT = 2
_STREAM_OFFSET = 3

_U64 = np.uint64


def resolve_maps(spec: MapSpec, n_players: int | None) -> tuple[list[Map], int]:
    """The rotation of maps and the number of players.

    Args:
        spec: a ``Map``, a built-in name or a map file path, or a non-empty list of them.
        n_players: players per game; default: the maps' number of start squares, which must then
            be the same for every map of the rotation.

    Raises:
        ValueError: an empty rotation, or maps with different numbers of starts and no
            ``n_players`` (``tron.maps.MapError``, a ``ValueError``, for unknown names and bad
            files).
    """
    items = [spec] if isinstance(spec, str | Map) else list(spec)
    if not items:
        raise ValueError("maps must name at least one map")
    maps = [m if isinstance(m, Map) else load_map(m) for m in items]
    if n_players is None:
        counts = sorted({m.n_players for m in maps})
        if len(counts) > 1:
            raise ValueError(
                f"the maps have {' and '.join(map(str, counts))} start squares: pass n_players "
                "to say how many play (each map needs at least that many starts)"
            )
        n_players = counts[0]
    return maps, n_players


def turn_limits(maps: Sequence[Map], max_turns: int | None) -> NDArray[np.int32]:
    """Turns after which an episode is truncated, per map: ``max_turns`` or the map's floor squares.

    With the default a game always ends first (at least two squares fill each turn), so episodes
    are only truncated when ``max_turns`` is set below that.
    """
    if max_turns is not None and max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    return np.array(
        [max_turns if max_turns is not None else int((~m.walls).sum()) for m in maps],
        dtype=np.int32,
    )


def check_seat(seat: SeatSpec, n_players: int) -> None:
    """Refuse a seat that is neither ``"random"`` nor ``0..n_players-1``."""
    if seat == "random":
        return
    if (
        isinstance(seat, bool)
        or not isinstance(seat, int | np.integer)
        or not 0 <= seat < n_players
    ):
        raise ValueError(f"seat must be 0..{n_players - 1} or 'random', got {seat!r}")


def check_rotation(rotation: str) -> None:
    """Refuse an unknown rotation."""
    if rotation not in ("cycle", "random"):
        raise ValueError(f"rotation must be 'cycle' or 'random', got {rotation!r}")


def map_option(maps: Sequence[Map], choice: object) -> int | None:
    """The rotation index of ``reset(options={"map": choice})``: a map name or an index.

    Raises:
        ValueError: ``choice`` names no map of the rotation.
    """
    if choice is None:
        return None
    names = [m.name for m in maps]
    if isinstance(choice, str) and choice in names:
        return names.index(choice)
    if (
        isinstance(choice, int | np.integer)
        and not isinstance(choice, bool)
        and 0 <= choice < len(maps)
    ):
        return int(choice)
    raise ValueError(
        f"options['map'] must be the name or index of a map of the rotation {names}, got {choice!r}"
    )


_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser: a bijective scramble of 64-bit integers (wrapping arithmetic)."""
    x = x + _U64(_GOLDEN)
    x = (x ^ (x >> _U64(30))) * _U64(_MUL1)
    x = (x ^ (x >> _U64(27))) * _U64(_MUL2)
    return x ^ (x >> _U64(31))


def _mix_int(x: int) -> int:
    """``_mix`` for one Python int (a single env draws without numpy's per-call overhead)."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * _MUL1) & _MASK64
    x = ((x ^ (x >> 27)) * _MUL2) & _MASK64
    return x ^ (x >> 31)


class EpisodeDraws:
    """Reproducible per-game choices (map, seat): a function of the game's seed and episode number.

    Game ``g`` with seed ``s`` draws the same sequence of maps and seats whatever the other games
    do, so ``TronVectorEnv(seed=s)``'s env ``i`` plays the maps and seats of a ``TronEnv`` seeded
    ``s + i`` (``GameDraws``, the same draws for one game). The draws are a counter-based hash
    (SplitMix64) of seed, stream and episode, vectorised over games.
    """

    def __init__(self, n_games: int) -> None:
        self.seeds = np.zeros(n_games, dtype=np.uint64)
        self.episode = np.zeros(n_games, dtype=np.uint64)

    def seed(self, seeds: NDArray[np.integer]) -> None:
        """Give every game its seed (reduced mod 2**64) and restart its episode count."""
        self.seeds[:] = np.asarray(seeds).astype(np.uint64)
        self.episode[:] = 0

    def draw(
        self, games: NDArray[np.int64], stream: int, n: int, *, per_game: bool = False
    ) -> NDArray[np.int64]:
        """A number in ``0..n-1`` for each game's current episode (or once per game)."""
        counter = np.zeros(games.size, dtype=np.uint64) if per_game else self.episode[games]
        key = _mix(_mix(self.seeds[games] ^ _U64(stream << 56)) ^ counter)
        return (key % _U64(n)).astype(np.int64)

    def next_episode(self, games: NDArray[np.int64]) -> None:
        """Move the games on to their next episode."""
        self.episode[games] += _U64(1)

    def maps(self, games: NDArray[np.int64], n_maps: int, rotation: Rotation) -> NDArray[np.int64]:
        """The map of each game's current episode: a random map, or the next one in the cycle
        (each game starting the cycle at its own random offset)."""
        if rotation == "random":
            return self.draw(games, _STREAM_MAP, n_maps)
        start = self.draw(games, _STREAM_OFFSET, n_maps, per_game=True)
        return (start + self.episode[games].astype(np.int64)) % n_maps

    def seats(self, games: NDArray[np.int64], n_players: int, seat: SeatSpec) -> NDArray[np.int64]:
        """The learner's seat in each game's current episode."""
        if seat == "random":
            return self.draw(games, _STREAM_SEAT, n_players)
        return np.full(games.size, int(seat), dtype=np.int64)


class GameDraws:
    """``EpisodeDraws`` for a single game, in Python ints (the same numbers, a tenth of the cost)."""

    def __init__(self) -> None:
        self.seed_value = 0
        self.episode = 0

    def seed(self, seed: int) -> None:
        """Set the seed (reduced mod 2**64) and restart the episode count."""
        self.seed_value = seed & _MASK64
        self.episode = 0

    def draw(self, stream: int, n: int, *, per_game: bool = False) -> int:
        """A number in ``0..n-1`` for the current episode (or once per game)."""
        counter = 0 if per_game else self.episode
        return (_mix_int(_mix_int(self.seed_value ^ (stream << 56)) ^ counter)) % n

    def next_episode(self) -> None:
        """Move on to the next episode."""
        self.episode += 1

    def map(self, n_maps: int, rotation: Rotation) -> int:
        """The map of the current episode (see ``EpisodeDraws.maps``)."""
        if rotation == "random":
            return self.draw(_STREAM_MAP, n_maps)
        return (self.draw(_STREAM_OFFSET, n_maps, per_game=True) + self.episode) % n_maps

    def seat(self, n_players: int, seat: SeatSpec) -> int:
        """The learner's seat in the current episode."""
        if seat == "random":
            return self.draw(_STREAM_SEAT, n_players)
        return int(seat)


def seat_rewards(
    batch: TronBatch, crashed: NDArray[np.bool_], ended: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """Rewards of one turn for every player: +1 win, -1 loss, 0 draw, 0 while undecided.

    A player is paid on the turn its fate is settled: the winner when the game ends, a player who
    crashes while someone else survives the turn at once (-1), and players who crash together on
    the last turn leaving no one (a draw among them, 0).

    Returns:
        (B, P) float32.
    """
    # Whole-row operations only: broadcasting along the 2-4 players is ~10x slower in numpy.
    p = batch.n_players
    draw = np.repeat(ended & (batch.winner < 0), p).reshape(-1, p)
    r = np.where(crashed & ~draw, np.float32(-1), np.float32(0))
    winners = np.flatnonzero(ended & (batch.winner >= 0))
    r[winners, batch.winner[winners]] = 1
    return r


def check_actions(actions: object, n: int) -> NDArray[np.int64]:
    """Actions as an (n,) int64 array of directions, or a ``ValueError`` that says what to pass."""
    a = np.asarray(actions)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"actions must be {n} integer Direction values 0..3 (N, E, S, W), one per env, "
            f"got {a.dtype} array of shape {a.shape}"
        )
    if a.size and (a.min() < 0 or a.max() > 3):
        i = int(np.flatnonzero((a < 0) | (a > 3))[0])
        raise ValueError(
            f"illegal action {int(a[i])} for env {i}: actions are Direction values 0..3 "
            "(N, E, S, W); for left/straight/right use tron.rules.relative_to_absolute"
        )
    return a.astype(np.int64, copy=False)
