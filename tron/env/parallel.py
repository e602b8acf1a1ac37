"""``TronParallelEnv``: every player is an agent, PettingZoo's parallel API.

The class follows ``pettingzoo.ParallelEnv`` by duck typing, so ``import tron`` needs no
pettingzoo; with pettingzoo installed it passes ``pettingzoo.test.parallel_api_test`` and works
with PettingZoo's converters (``pettingzoo.utils.parallel_to_aec``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from tron.env.common import (
    DEFAULT_MAP,
    GameDraws,
    MapSpec,
    Rotation,
    check_rotation,
    map_option,
    resolve_maps,
    seat_rewards,
    turn_limits,
)
from tron.observe import N_CATEGORIES, Encoder
from tron.render import Viewer, available_render_modes, check_render_mode, make_viewer
from tron.rules import TronBatch


class TronParallelEnv:
    """All players of one Tron game as PettingZoo parallel agents ``player_0`` .. ``player_{P-1}``.

    Agent ``player_p`` plays seat ``p``. Spaces, observations and rewards are those of
    ``TronEnv`` for each agent (its own point of view; +1 win, -1 loss, 0 draw, paid on the turn
    the agent's result is settled). An agent that crashes is terminated and leaves ``agents`` on
    that step; the winner is terminated when the game ends; every agent still playing is truncated
    after ``max_turns`` turns. Each ``reset`` picks the map of the rotation (``"cycle"`` or
    ``"random"``, from the reset seed).

    ``step`` needs an action for every agent in ``agents`` and no other: a missing action or one
    for an agent that is not playing raises ``ValueError``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "tron_v0",
        "render_modes": available_render_modes(),
        "render_fps": 10,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        maps: MapSpec = DEFAULT_MAP,
        *,
        n_players: int | None = None,
        obs_size: int | tuple[int, int] | None = None,
        max_turns: int | None = None,
        rotation: Rotation = "cycle",
        render_mode: str | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        """Create the environment (arguments as ``TronEnv``'s)."""
        self.maps, n = resolve_maps(maps, n_players)
        check_rotation(rotation)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.batch = TronBatch(self.maps, 1, n_players=n)
        self.encoder = Encoder(self.batch, obs_size)
        self.render_mode = render_mode
        self.possible_agents = [f"player_{p}" for p in range(n)]
        self.agents: list[str] = []
        obs_space = spaces.Box(0, N_CATEGORIES - 1, self.encoder.shape, np.uint8)
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(4) for a in self.possible_agents}
        self._seat = {a: p for p, a in enumerate(self.possible_agents)}
        self._rotation: Rotation = rotation
        self._limits = turn_limits(self.maps, max_turns)
        self._viewer = viewer
        self._draws = GameDraws()
        self._game = np.zeros(1, dtype=np.intp)
        self._actions = np.zeros((1, n), dtype=np.int8)
        self._seeded = False

    def observation_space(self, agent: str) -> gym.Space[Any]:
        """The observation space of ``agent`` (the same object every call)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gym.Space[Any]:
        """The action space of ``agent`` (the same object every call)."""
        return self.action_spaces[agent]

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    @property
    def unwrapped(self) -> TronParallelEnv:
        return self

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.uint8]], dict[str, dict[str, Any]]]:
        """Start a game; ``options={"map": name_or_index}`` picks the map from the rotation."""
        game = self._game
        if seed is not None:
            self._draws.seed(seed)
        elif not self._seeded:
            self._draws.seed(int(np.random.default_rng().integers(2**63)))
        self._seeded = True
        map_index = map_option(self.maps, (options or {}).get("map"))
        if map_index is None:
            map_index = self._draws.map(len(self.maps), self._rotation)
        self._draws.next_episode()
        self.batch.reset(game, map_index)
        self.agents = list(self.possible_agents)
        obs = self._observations(self.agents)
        if self.render_mode == "human":
            self.render()
        return obs, {a: self._info() for a in self.agents}

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, NDArray[np.uint8]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Play one turn with the actions of every playing agent."""
        if not self.agents:
            raise RuntimeError("the game is over (or never started): call reset() first")
        extra = sorted(set(actions) - set(self.agents))
        missing = [a for a in self.agents if a not in actions]
        if extra or missing:
            raise ValueError(
                f"step needs one action for each agent in env.agents {self.agents}: "
                f"missing {missing}, not playing {extra}"
            )
        for agent, action in actions.items():
            a = np.asarray(action)
            if a.shape != () or not np.issubdtype(a.dtype, np.integer) or not 0 <= a <= 3:
                raise ValueError(
                    f"illegal action {action!r} for {agent}: use an integer Direction 0..3 "
                    "(N, E, S, W)"
                )
            self._actions[0, self._seat[agent]] = int(a)
        b = self.batch
        result = b.step(self._actions)
        r = seat_rewards(b, result.crashed, result.ended)[0]
        ended = bool(result.ended[0])
        truncated = not ended and bool(b.turn[0] >= self._limits[b.map_index[0]])
        playing = self.agents
        obs = self._observations(playing)
        rewards = {a: float(r[self._seat[a]]) for a in playing}
        terminations = {a: ended or bool(result.crashed[0, self._seat[a]]) for a in playing}
        truncations = {a: truncated for a in playing}
        infos = {a: self._info() for a in playing}
        if ended or truncated:
            for info in infos.values():
                info["winner"] = int(b.winner[0])
        self.agents = [a for a in playing if not (terminations[a] or truncations[a])]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def render(self) -> Any:
        """The frame of the current position in the render mode (``None`` for ``"human"``)."""
        if self.render_mode is None:
            gym.logger.warn(
                "TronParallelEnv.render() was called without a render mode: pass "
                "render_mode='ansi', 'rgb_array' or 'human'"
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

    def _observations(self, agents: list[str]) -> dict[str, NDArray[np.uint8]]:
        views = self.encoder.encode_all(self._game)[0]
        return {a: views[self._seat[a]] for a in agents}

    def _info(self) -> dict[str, Any]:
        b = self.batch
        return {"map": b.map_of(0).name, "turn": int(b.turn[0])}
