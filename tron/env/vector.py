"""``TronVectorEnv``: many Tron games as one gymnasium ``VectorEnv``, stepped by one ``TronBatch``."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from tron.env.common import (
    DEFAULT_MAP,
    EpisodeDraws,
    MapSpec,
    Rotation,
    SeatSpec,
    check_actions,
    check_rotation,
    check_seat,
    resolve_maps,
    seat_rewards,
    turn_limits,
)
from tron.env.policy import OpponentSpec, opponent_list, reset_policy, seed_policy, unique
from tron.observe import N_CATEGORIES, Encoder
from tron.render import Viewer, check_render_mode, make_viewer
from tron.rules import TronBatch


class TronVectorEnv(VectorEnv[NDArray[np.uint8], NDArray[np.int64], NDArray[Any]]):
    """``num_envs`` Tron envs over one batched engine: learner-vs-opponents or all players.

    Modes:

    - learner vs opponents (default): env ``i`` is game ``i``; its learner plays ``seat`` (or a
      random seat each episode) and the other seats are played by ``opponents``, whose moves are
      computed for all games at once (one ``act`` call per policy and seat per step). Each
      sub-env is a ``TronEnv``: same spaces, rewards and episode end.
    - all players (``all_players=True``, for self-play where every side learns): every seat of
      every game is an env. With ``P`` players, env ``i`` is seat ``i % P`` of game ``i // P``
      (``num_envs`` must be a multiple of ``P``), so observations are ``(num_envs, S_h, S_w)``
      with games and seats flattened game-major; reshape to ``(num_envs // P, P, ...)`` to get
      them per game. All seats of a game end together when the game ends (``terminated``) or is
      truncated; each seat is paid on the turn its result is settled, like ``TronEnv``'s learner
      (so in 3-4 player games a crashed seat gets -1 at once, then rewards 0 until the game ends;
      ``info["alive"]`` marks the seats still riding, whose actions count).

    Spaces: ``single_observation_space`` ``Box(0, 5, (S_h, S_w), uint8)`` (``tron.observe``),
    ``single_action_space`` ``Discrete(4)``; ``observation_space`` and ``action_space`` are their
    batched versions (a ``Box`` and a ``MultiDiscrete``).

    Autoreset (``metadata["autoreset_mode"]``), gymnasium 1.x semantics:

    - ``AutoresetMode.NEXT_STEP`` (default): the step on which an episode ends returns its final
      observation with ``terminated``/``truncated``; the next step resets that env, ignores its
      action and returns the first observation of the new episode with reward 0 and both flags
      False (mask that step out of learning).
    - ``AutoresetMode.SAME_STEP``: an ending env is reset within the step; the step returns the
      new episode's first observation, and the final one in ``info["final_obs"]`` (an object
      array, set where ``info["_final_obs"]``).

    Seeding: ``reset(seed=s)`` gives env ``i`` the seed ``s + i`` (in all-players mode a game takes
    the seed of its first env): its sequence of maps and learner seats is then that of a
    ``TronEnv`` reset with seed ``s + i``, whatever the other envs do. Opponents with a
    ``seed(int)`` method (``RandomPolicy``) are reseeded from ``s``, so a whole seeded run repeats.
    ``reset(options={"reset_mask": mask})`` restarts only the envs where the (num_envs,) bool mask
    is set (all seats of a game together).

    Info (arrays over envs): ``seat`` (learner mode: the learner's seat in the current episode) or
    ``alive`` (all-players mode). When an episode ends: ``episode`` = ``{"r": return, "l": length}``
    and ``winner`` (the winning seat; -1 for a draw, a truncated game, or a learner that crashed
    while two or more opponents ride on), set where
    ``_episode``/``_winner``, as gymnasium's ``RecordEpisodeStatistics`` reports them; pass
    ``episode_stats=False`` to leave them to that wrapper instead.
    """

    # A plain class attribute, as gymnasium declares it (a ClassVar would not type-check).
    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 10,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        maps: MapSpec = DEFAULT_MAP,
        *,
        n_players: int | None = None,
        all_players: bool = False,
        opponents: OpponentSpec = None,
        seat: SeatSpec | None = None,
        obs_size: int | tuple[int, int] | None = None,
        max_turns: int | None = None,
        rotation: Rotation = "cycle",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        episode_stats: bool = True,
        copy: bool = True,
        render_mode: str | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        """Create the vector env.

        Args:
            num_envs: number of envs (games; in all-players mode games times players).
            maps: a map or a list of maps to rotate through, as for ``TronEnv``.
            n_players: players per game (default: the maps' number of start squares).
            all_players: every seat is an env (self-play) instead of one learner per game.
            opponents: learner mode only: one policy for every opponent seat or one per opponent
                seat, as for ``TronEnv`` (default: ``RandomPolicy``).
            seat: learner mode only: the learner's seat, or ``"random"`` (the default).
            obs_size: the observation size (``tron.observe.obs_shape``); default: largest map.
            max_turns: truncate episodes after this many turns (default: never needed).
            rotation: ``"cycle"`` or ``"random"``, how each episode picks its map.
            autoreset_mode: ``NEXT_STEP`` (default) or ``SAME_STEP`` (see the class docstring).
            episode_stats: report ``info["episode"]`` (turn off to use ``RecordEpisodeStatistics``).
            copy: return a fresh observation array from each step, not the env's own buffer
                (which the next step overwrites).
            render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``: ``render()`` returns a tuple with
                one frame per game.
            viewer: a ``tron.render.Viewer`` to render with instead of the render mode's own.
        """
        maps_, n = resolve_maps(maps, n_players)
        check_rotation(rotation)
        check_render_mode(render_mode, self.metadata["render_modes"])
        mode = AutoresetMode(autoreset_mode)
        if mode == AutoresetMode.DISABLED:
            raise ValueError(
                "autoreset_mode must be NEXT_STEP or SAME_STEP (DISABLED is not offered)"
            )
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if all_players:
            if opponents is not None or seat is not None:
                raise ValueError(
                    "all_players=True makes every seat an env: it takes no opponents and no seat"
                )
            if num_envs % n:
                raise ValueError(
                    f"all_players=True needs num_envs to be a multiple of n_players={n} "
                    f"(one env per seat of each game), got {num_envs}"
                )
            n_games = num_envs // n
        else:
            seat = "random" if seat is None else seat
            check_seat(seat, n)
            n_games = num_envs
        self.maps = maps_
        self.num_envs = num_envs
        self.all_players = all_players
        self.batch = TronBatch(maps_, n_games, n_players=n)
        self.encoder = Encoder(self.batch, obs_size)
        self.opponents = [] if all_players else opponent_list(opponents, n - 1)
        self.render_mode = render_mode
        self.copy = copy
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.single_observation_space = spaces.Box(
            0, N_CATEGORIES - 1, self.encoder.shape, np.uint8
        )
        self.single_action_space = spaces.Discrete(4)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

        self._mode = mode
        self._seat_spec: SeatSpec = "random" if seat is None else seat
        self._rotation: Rotation = rotation
        self._limits = turn_limits(maps_, max_turns)
        self._episode_stats = episode_stats
        self._viewer = viewer
        self._draws = EpisodeDraws(n_games)
        self._seeded = False
        self._rows = np.arange(n_games)
        # The seat each game's learner plays (all-players mode: unused, every seat is observed).
        self.seat = np.zeros(n_games, dtype=np.int64)
        self._actions = np.zeros((n_games, n), dtype=np.int8)
        self._obs = np.zeros((num_envs, *self.encoder.shape), dtype=np.uint8)
        self._pending = np.zeros(n_games, dtype=bool)
        self._returns = np.zeros(num_envs, dtype=np.float32)
        self._lengths = np.zeros(num_envs, dtype=np.int32)

    # ------------------------------------------------------------------ API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        """Start new episodes in every env (or those of ``options["reset_mask"]``)."""
        super().reset(seed=seed)
        first_env = self._rows * (self.batch.n_players if self.all_players else 1)
        if seed is not None:
            self._draws.seed(seed + first_env)
            for policy in unique(self.opponents):
                seed_policy(policy, int(self.np_random.integers(2**63)))
        elif not self._seeded:
            self._draws.seed(int(self.np_random.integers(2**62)) + first_env)
        self._seeded = True
        mask = (options or {}).get("reset_mask")
        games = self._rows if mask is None else self._games_of_mask(mask)
        self._restart(games)
        self._pending[games] = False
        return self._observe(), self._info()

    def step(
        self, actions: NDArray[np.integer]
    ) -> tuple[
        NDArray[np.uint8], NDArray[np.float32], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]
    ]:
        """Play one turn in every env (see the class docstring for autoreset)."""
        a = check_actions(actions, self.num_envs)
        b = self.batch
        pending = self._pending
        acts = self._actions
        if self.all_players:
            acts[:] = a.reshape(acts.shape)
        else:
            acts[self._rows, self.seat] = a
            self._opponents_act(~b.done & ~pending)
        result = b.step(acts)
        r = seat_rewards(b, result.crashed, result.ended)
        over_time = b.turn >= self._limits[b.map_index]
        if self.all_players:
            p = b.n_players
            game_term = result.ended & ~pending
            game_trunc = over_time & ~result.ended & ~pending
            reward = r.reshape(-1)
            terminated = np.repeat(game_term, p)
            truncated = np.repeat(game_trunc, p)
            counted = np.repeat(~pending, p)
            game_over = game_term | game_trunc
        else:
            reward = r[self._rows, self.seat]
            terminated = (result.ended | result.crashed[self._rows, self.seat]) & ~pending
            truncated = over_time & ~terminated & ~pending
            counted = ~pending
            game_over = terminated | truncated
        reward[pending.repeat(len(reward) // len(pending))] = 0
        self._returns += reward
        self._lengths += counted
        over = terminated | truncated
        infos: dict[str, Any] = {}
        if np.count_nonzero(over):
            self._report_ends(infos, over)
        if self._mode == AutoresetMode.SAME_STEP:
            ended = np.flatnonzero(game_over)
            if ended.size:
                infos["final_obs"] = self._final_obs(over)
                infos["_final_obs"] = over
                self._restart(ended)
        else:
            restart = np.flatnonzero(pending)
            if restart.size:
                self._restart(restart)
            self._pending = game_over
        infos.update(self._info())
        return self._observe(), reward, terminated, truncated, infos

    def render(self) -> tuple[Any, ...] | None:
        """One frame per game in the render mode (``None`` without a render mode)."""
        if self.render_mode is None:
            return None
        if self._viewer is None:
            self._viewer = make_viewer(self.render_mode, fps=self.metadata["render_fps"])
        return tuple(self._viewer.render(self.batch, g) for g in range(self.batch.batch_size))

    def close_extras(self, **kwargs: Any) -> None:
        """Close the viewer."""
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    # ------------------------------------------------------------------ inside

    def _opponents_act(self, running: NDArray[np.bool_]) -> None:
        """Fill the opponents' moves: one ``act`` per policy and seat over all its games."""
        b, acts = self.batch, self._actions
        for slot, policy in enumerate(self.opponents):
            # Slot j plays the j-th seat that is not the learner's.
            seat_of_slot = slot + (slot >= self.seat)
            for s in range(b.n_players):
                games = np.flatnonzero(running & (seat_of_slot == s) & b.alive[:, s])
                if games.size:
                    acts[games, s] = policy.act(b, s, games)

    def _restart(self, games: NDArray[np.int64]) -> None:
        """Start the next episode of ``games``: draw map and seat, reset engine, stats, policies."""
        b = self.batch
        map_index = self._draws.maps(games, len(self.maps), self._rotation)
        if not self.all_players:
            self.seat[games] = self._draws.seats(games, b.n_players, self._seat_spec)
        self._draws.next_episode(games)
        b.reset(games, map_index)
        per_game = self.num_envs // b.batch_size
        self._returns.reshape(-1, per_game)[games] = 0
        self._lengths.reshape(-1, per_game)[games] = 0
        for policy in unique(self.opponents):
            reset_policy(policy, games)

    def _observe(self) -> NDArray[np.uint8]:
        if self.all_players:
            p = self.batch.n_players
            self.encoder.encode_all(out=self._obs.reshape(-1, p, *self.encoder.shape))
        else:
            self.encoder.encode(self.seat, out=self._obs)
        return self._obs.copy() if self.copy else self._obs

    def _final_obs(self, over: NDArray[np.bool_]) -> NDArray[np.object_]:
        """The final observations of the envs in ``over``, as gymnasium's object array."""
        obs = self._observe()
        final = np.full(self.num_envs, None, dtype=object)
        for i in np.flatnonzero(over):
            final[i] = obs[i].copy()
        return final

    def _report_ends(self, infos: dict[str, Any], over: NDArray[np.bool_]) -> None:
        b = self.batch
        per_game = self.num_envs // b.batch_size
        winner = np.repeat(b.winner.astype(np.int64), per_game)
        infos["winner"] = np.where(over, winner, -1)
        infos["_winner"] = over
        if self._episode_stats:
            infos["episode"] = {
                "r": np.where(over, self._returns, 0).astype(np.float32),
                "l": np.where(over, self._lengths, 0).astype(np.int32),
            }
            infos["_episode"] = over

    def _info(self) -> dict[str, Any]:
        if self.all_players:
            return {"alive": self.batch.alive.reshape(-1).copy()}
        return {"seat": self.seat.copy()}

    def _games_of_mask(self, mask: object) -> NDArray[np.int64]:
        m = np.asarray(mask)
        if m.shape != (self.num_envs,) or m.dtype != np.bool_:
            raise ValueError(
                f"options['reset_mask'] must be a ({self.num_envs},) bool array, got {m.dtype} {m.shape}"
            )
        per_game = m.reshape(self.batch.batch_size, -1)
        if (per_game.any(axis=1) != per_game.all(axis=1)).any():
            raise ValueError(
                "options['reset_mask'] must reset all seats of a game together "
                "(all_players mode: envs g*P .. g*P+P-1 are one game)"
            )
        return np.flatnonzero(per_game[:, 0])
