"""``TronEnv``: one learning player against opponent policies, a gymnasium ``Env``."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from tron.env.common import (
    DEFAULT_MAP,
    GameDraws,
    MapSpec,
    Rotation,
    SeatSpec,
    check_rotation,
    check_seat,
    map_option,
    resolve_maps,
    turn_limits,
)
from tron.env.policy import OpponentSpec, opponent_list, reset_policy, seed_policy, unique
from tron.observe import N_CATEGORIES, Encoder
from tron.render import Viewer, available_render_modes, check_render_mode, make_viewer
from tron.rules import Direction, TronBatch


class TronEnv(gym.Env[NDArray[np.uint8], np.int64]):
    """Tron (light cycles, Google AI Challenge 2010 rules): one learner against opponent policies.

    ## Description
    Players ride light cycles that leave a wall behind them; a player who moves into a wall, any
    trail (its own included) or off the board crashes, and the last one riding wins. All players
    move at once each turn; players moving onto the same square all crash, and when the last
    players crash together the game is a draw. The learner plays one seat; the other seats are
    played by the opponents given at construction (default: ``RandomPolicy``, random moves onto
    empty squares). Maps come from ``tron.maps`` (built-in names, files or ``Map`` objects); a
    list of maps is a rotation, one map per episode.

    ## Action Space
    ``Discrete(4)``: the absolute direction to move, a ``tron.rules.Direction``.

    | Num | Direction |
    |-----|-----------|
    | 0   | North (up, row - 1) |
    | 1   | East (right, col + 1) |
    | 2   | South (down, row + 1) |
    | 3   | West (left, col - 1) |

    Reversing onto your own trail is a legal action that crashes. The env offers no relative
    action space; for a left/straight/right view (``tron.rules.Relative``: 0 LEFT, 1 STRAIGHT,
    2 RIGHT), map relative actions with ``tron.rules.relative_to_absolute(heading, action)``, the
    heading being ``env.unwrapped.batch.last_move[0, env.unwrapped.seat]`` (-1 before the first
    move, which has no heading: choose it as an absolute direction). Any other action value raises
    ``ValueError``.

    ## Observation Space
    ``Box(0, 5, (S_h, S_w), uint8)``: one category per square from the learner's point of view;
    ``S_h, S_w`` is ``obs_size``, by default the largest map of the rotation. The map sits in the
    top-left corner, padded with walls (see ``tron.observe``).

    | Value | Square |
    |-------|--------|
    | 0 | empty floor |
    | 1 | wall, or outside the map |
    | 2 | the learner's trail |
    | 3 | an opponent's trail |
    | 4 | the learner's head |
    | 5 | a live opponent's head |

    Expand to one-hot planes inside the network (``tron.observe.planes``).

    ## Rewards
    +1 for a win (every opponent crashed and the learner did not), -1 for a loss (the learner
    crashed while someone else survived that turn), 0 for a draw (the learner crashed together
    with the last opponents) and 0 on every other step. The return of an episode is its result.

    ## Starting State
    Every player on its start square of the map, with nothing but the map's walls on the board.
    The map follows the rotation (``rotation="cycle"``: the next map, starting from a random
    one; ``"random"``: a random map); the learner's seat is ``seat`` or, with ``seat="random"``, a
    random seat each episode. Both are drawn from the reset seed.

    ## Episode End
    Terminated when the learner crashes or is the last player left. Truncated after ``max_turns``
    turns (default: the map's number of floor squares, which a game never reaches, since at least
    two squares fill every turn).

    ## Arguments
    ``gymnasium.make("Tron-v0", maps="room15", n_players=None, seat="random", opponents=None,
    obs_size=None, max_turns=None, rotation="cycle", render_mode=None)``; see ``__init__``.
    ``reset(options={"map": name_or_index, "seat": s})`` fixes the next episode's map (one of the
    rotation) and seat.

    ## Info
    ``seat`` (the learner's seat), ``map`` (the map's name), ``turn``; at the end of an episode
    also ``winner`` (the winning seat, -1 for a draw or a game not decided).

    ## Rendering
    ``"ansi"`` (text, ``tron.render.text``), ``"rgb_array"`` (``tron.render.image``) and
    ``"human"`` (a pygame window, ``tron.render.pygame_view``, loaded only when asked for).

    ## Version History
    * v0: initial version.
    """

    # A plain class attribute, as gymnasium declares it (a ClassVar would not type-check).
    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": available_render_modes(),
        "render_fps": 10,
    }

    def __init__(
        self,
        maps: MapSpec = DEFAULT_MAP,
        *,
        n_players: int | None = None,
        seat: SeatSpec = "random",
        opponents: OpponentSpec = None,
        obs_size: int | tuple[int, int] | None = None,
        max_turns: int | None = None,
        rotation: Rotation = "cycle",
        render_mode: str | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        """Create the environment.

        Args:
            maps: a map (``Map``, built-in name or file path) or a list of them to rotate through.
            n_players: players per game, 2..4 (default: the maps' number of start squares).
            seat: the learner's seat, 0..n_players-1, or ``"random"`` (new each episode).
            opponents: a policy for every opponent seat, or a list of one per opponent seat (in
                seat order, skipping the learner's). A policy has ``act(batch, seat, games)`` (an
                ``agents`` ``Agent`` does) or is a function ``f(batch, seat, games)``. Default: a
                ``RandomPolicy``.
            obs_size: the observation size (``tron.observe.obs_shape``); default: the largest map.
            max_turns: truncate episodes after this many turns (default: never needed).
            rotation: ``"cycle"`` or ``"random"``, how each episode picks its map.
            render_mode: ``None``, ``"ansi"``, ``"rgb_array"`` or ``"human"``.
            viewer: a ``tron.render.Viewer`` to render with, instead of the render mode's own.
        """
        self.maps, n = resolve_maps(maps, n_players)
        check_seat(seat, n)
        check_rotation(rotation)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.batch = TronBatch(self.maps, 1, n_players=n)
        self.encoder = Encoder(self.batch, obs_size)
        self.opponents = opponent_list(opponents, n - 1)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, N_CATEGORIES - 1, self.encoder.shape, np.uint8)
        self.action_space = spaces.Discrete(4)
        self._seat_spec = seat
        self._rotation: Rotation = rotation
        self._limits = turn_limits(self.maps, max_turns)
        self._viewer = viewer
        self._draws = GameDraws()
        self._game = np.zeros(1, dtype=np.intp)
        self._actions = np.zeros((1, n), dtype=np.int8)
        self.seat = 0
        self._over = True
        self._seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        """Start an episode; see the class docstring for ``options``."""
        super().reset(seed=seed)
        game = self._game
        if seed is not None:
            self._draws.seed(seed)
            for policy in unique(self.opponents):
                seed_policy(policy, int(self.np_random.integers(2**63)))
        elif not self._seeded:
            self._draws.seed(int(self.np_random.integers(2**63)))
        self._seeded = True
        options = options or {}
        map_index = map_option(self.maps, options.get("map"))
        if map_index is None:
            map_index = self._draws.map(len(self.maps), self._rotation)
        seat = options.get("seat")
        if seat is None:
            seat = self._draws.seat(self.batch.n_players, self._seat_spec)
        else:
            check_seat(seat, self.batch.n_players)
        self._draws.next_episode()
        self.seat = int(seat)
        self.batch.reset(game, map_index)
        for policy in unique(self.opponents):
            reset_policy(policy, game)
        self._over = False
        if self.render_mode == "human":
            self.render()
        return self._obs(), self._info()

    def step(
        self, action: np.int64 | int
    ) -> tuple[NDArray[np.uint8], SupportsFloat, bool, bool, dict[str, Any]]:
        """Play one turn: the learner's ``action`` and the opponents' moves, all at once."""
        if self._over:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        a = self._check_action(action)
        b, game, seat = self.batch, self._game, self.seat
        acts = self._actions
        acts[0, seat] = a
        slot = 0
        for q in range(b.n_players):
            if q == seat:
                continue
            if b.alive[0, q]:
                acts[0, q] = self.opponents[slot].act(b, q, game)[0]
            slot += 1
        result = b.step(acts)
        terminated = bool(result.ended[0] or result.crashed[0, seat])
        reward = self._reward() if terminated else 0.0
        truncated = not terminated and bool(b.turn[0] >= self._limits[b.map_index[0]])
        self._over = terminated or truncated
        info = self._info()
        if self._over:
            info["winner"] = int(b.winner[0])
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> Any:
        """The frame of the current position in the render mode (``None`` for ``"human"``)."""
        if self.render_mode is None:
            gym.logger.warn(
                "TronEnv.render() was called without a render mode: pass render_mode='ansi', "
                "'rgb_array' or 'human' to gymnasium.make('Tron-v0', ...) or TronEnv(...)"
            )
            return None
        if self._viewer is None:
            self._viewer = make_viewer(self.render_mode, fps=self.metadata["render_fps"])
        return self._viewer.render(self.batch, 0)

    def close(self) -> None:
        """Close the viewer (a window, if one is open)."""
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    # ------------------------------------------------------------------ inside

    def _obs(self) -> NDArray[np.uint8]:
        return self.encoder.encode(self.seat)[0]

    def _reward(self) -> float:
        """The learner's result, +1 win, -1 loss, 0 draw, once its episode has terminated.

        The engine's ``outcome`` (1 win, 0.5 draw, 0 loss) decides a finished game; a learner
        that crashed while the game goes on (3-4 players) has lost.
        """
        if not self.batch.done[0]:
            return -1.0
        return 2.0 * self.batch.outcome(0)[self.seat] - 1.0

    def _info(self) -> dict[str, Any]:
        b = self.batch
        return {"seat": self.seat, "map": b.map_of(0).name, "turn": int(b.turn[0])}

    def _check_action(self, action: object) -> int:
        if (
            isinstance(action, int | np.integer)
            and not isinstance(action, bool)
            and 0 <= action <= 3
        ):
            return int(action)
        a = np.asarray(action)
        if a.shape == () and np.issubdtype(a.dtype, np.integer) and 0 <= a <= 3:
            return int(a)
        raise ValueError(
            f"illegal action {action!r}: TronEnv takes one integer Direction 0..3 "
            f"({', '.join(f'{d.value}={d.name}' for d in Direction)}); for left/straight/right "
            "actions convert with tron.rules.relative_to_absolute(heading, action)"
        )
