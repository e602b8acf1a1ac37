"""Environments: gymnasium and PettingZoo API checks, rewards against the engine, seeding,
autoreset, map rotation and the all-players mode."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from numpy.typing import NDArray

import tron
from tron.env import RandomPolicy, TronEnv, TronParallelEnv, TronVectorEnv, as_policy
from tron.maps import MapError, parse_map
from tron.observe import Category
from tron.rules import Direction, TronBatch

N, E, S, W = Direction.N, Direction.E, Direction.S, Direction.W
# 6 wide, 4 high; player 1 at (1, 1), player 2 at (1, 4).
SMALL = parse_map("6 4\n#    #\n 1  2 \n      \n  ##  \n", "small")
# A corridor: both players meet head-on in the middle after two moves each (a draw).
LINE = parse_map("5 1\n1   2\n", "line")


def always(direction: int) -> Any:
    """A policy function that always plays ``direction``."""

    def play(batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        return np.full(len(games), direction, dtype=np.int8)

    return play


class Recorder:
    """A policy that records its calls and always moves north."""

    def __init__(self) -> None:
        self.acts: list[tuple[int, list[int]]] = []
        self.resets: list[list[int]] = []
        self.seeds: list[int] = []

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        self.acts.append((seat, [int(g) for g in games]))
        return np.full(len(games), N, dtype=np.int8)

    def reset(self, games: NDArray[np.intp]) -> None:
        self.resets.append([int(g) for g in games])

    def seed(self, seed: int) -> None:
        self.seeds.append(seed)


# --------------------------------------------------------------------------- TronEnv


def test_import__light() -> None:
    # A fresh interpreter: the test session itself may have imported pygame or pettingzoo.
    code = (
        "import sys, gymnasium, tron\n"
        "gymnasium.make('Tron-v0', render_mode='rgb_array').reset(seed=0)\n"
        "from tron.env import TronParallelEnv, TronVectorEnv\n"
        "heavy = {'pygame', 'torch', 'agents', 'arena', 'pettingzoo', 'numba'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tron_env__passes_check_env() -> None:
    check_env(gym.make("Tron-v0", render_mode="rgb_array").unwrapped, skip_render_check=False)
    check_env(gym.make("Tron-v0", maps=["room16-4p", "arena21-4p"], obs_size=21).unwrapped)


def test_tron_env__registered_and_made_by_gymnasium() -> None:
    env = gym.make("Tron-v0", maps="room10", seat=1)
    obs, info = env.reset(seed=0)
    assert obs.shape == (10, 10) and info["seat"] == 1 and info["map"] == "room10"
    assert env.observation_space.contains(obs)
    assert env.action_space == gym.spaces.Discrete(4)
    vec = gym.make_vec("Tron-v0", num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 15, 15)
    assert "Tron-v0" in gym.registry and tron.TronBatch is TronBatch


def test_tron_env__win_loss_draw_rewards() -> None:
    # The opponent (seat 1) goes north twice: off the top of the board on its second move.
    env = TronEnv(SMALL, seat=0, opponents=always(N))
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step(S)
    assert (r, term, trunc) == (0.0, False, False) and "winner" not in info
    obs, r, term, trunc, info = env.step(S)
    assert (r, term, trunc, info["winner"], info["turn"]) == (1.0, True, False, 0, 2)
    assert obs[3, 1] == Category.OWN_HEAD and obs[0, 4] == Category.OPPONENT_TRAIL
    # The learner reverses into its own trail while the opponent survives: a loss.
    env = TronEnv(SMALL, seat=0, opponents=always(S))
    env.reset(seed=0)
    env.step(S)
    _, r, term, _, info = env.step(N)
    assert (r, term, info["winner"]) == (-1.0, True, 1)
    # Head-on in the middle of the corridor: a draw.
    env = TronEnv(LINE, seat=1, opponents=always(E))
    env.reset(seed=0)
    assert env.step(W)[1:3] == (0.0, False)
    _, r, term, _, info = env.step(W)
    assert (r, term, info["winner"]) == (0.0, True, -1)


def test_tron_env__rewards_agree_with_the_engine() -> None:
    for maps, n in (("room10", None), ("room17-3p", None), ("room16-4p", 4)):
        env = TronEnv(maps, n_players=n, seat="random")
        rng = np.random.default_rng(3)
        env.reset(seed=5)
        for _ in range(200):
            _, r, term, trunc, _ = env.step(int(rng.integers(4)))
            b, seat = env.batch, env.seat
            if term:
                if b.done[0]:
                    assert r == 2 * b.outcome(0)[seat] - 1
                else:  # crashed while two or more others ride on
                    assert r == -1 and not b.alive[0, seat] and b.alive[0].sum() >= 2
                env.reset()
            else:
                assert r == 0 and b.alive[0, seat] and not trunc


def test_tron_env__same_seed_same_rollout() -> None:
    def rollout(seed: int) -> list[Any]:
        env = TronEnv(["room10", "cross", "oblong"], rotation="random", obs_size=17)
        out: list[Any] = []
        obs, info = env.reset(seed=seed)
        actions = np.random.default_rng(0).integers(0, 4, 150)
        for a in actions:
            obs, r, term, trunc, info = env.step(int(a))
            out.append((obs.tobytes(), r, term, trunc, sorted(info.items())))
            if term or trunc:
                obs, info = env.reset()
                out.append((obs.tobytes(), sorted(info.items())))
        return out

    assert rollout(11) == rollout(11)
    assert rollout(11) != rollout(12)


def test_tron_env__illegal_actions_fail_loudly() -> None:
    env = TronEnv()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    bad_actions: list[Any] = [4, -1, 1.5, "N", True, np.array([1, 2])]
    for bad in bad_actions:
        with pytest.raises(ValueError, match=r"Direction 0..3 \(0=N, 1=E, 2=S, 3=W\).*relative"):
            env.step(bad)
    env.step(np.int64(1))
    zero_d: Any = np.array(2)
    env.step(zero_d)


def test_tron_env__options_seat_map_and_truncation() -> None:
    env = TronEnv(["room10", "room15"], seat="random", max_turns=3, opponents=always(E))
    _, info = env.reset(seed=0, options={"map": 0})
    assert info["map"] == "room10"
    _, info = env.reset(options={"map": "room15", "seat": 1})
    assert (info["map"], info["seat"]) == ("room15", 1)
    for _ in range(2):
        assert env.step(W)[2:4] == (False, False)
    _, r, term, trunc, info = env.step(N)
    assert (r, term, trunc, info["winner"]) == (0.0, False, True, -1)
    with pytest.raises(ValueError, match="options\\['map'\\]"):
        env.reset(options={"map": "maze"})


def test_tron_env__bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"seat must be 0\.\.1 or 'random'"):
        TronEnv(seat=2)
    with pytest.raises(ValueError, match="pass n_players"):
        TronEnv(["room15", "room16-4p"])
    with pytest.raises(MapError, match="unknown map 'nowhere'"):
        TronEnv("nowhere")
    with pytest.raises(ValueError, match="2 opponents for 1 opponent seats"):
        TronEnv(opponents=[always(N), always(N)])
    with pytest.raises(TypeError, match="act\\(batch, seat, games\\)"):
        TronEnv(opponents=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="render_mode"):
        TronEnv(render_mode="video")


def test_tron_env__opponents_per_seat_and_hooks() -> None:
    first, second = Recorder(), Recorder()
    env = TronEnv("room17-3p", seat=1, opponents=[first, second])
    env.reset(seed=4)
    env.step(S)
    assert first.acts == [(0, [0])] and second.acts == [(2, [0])]
    assert first.resets == [[0]] and len(first.seeds) == 1 and first.seeds != second.seeds
    assert isinstance(as_policy(always(N)).act(env.batch, 0, np.array([0])), np.ndarray)


# --------------------------------------------------------------------------- TronParallelEnv


# Importing pettingzoo.test warns about PettingZoo's own old creation API (not ours).
@pytest.mark.filterwarnings("ignore:The old environment creation API:DeprecationWarning")
def test_parallel_env__passes_parallel_api_test() -> None:
    from pettingzoo.test import parallel_api_test

    parallel_api_test(TronParallelEnv("room10"), num_cycles=200)
    parallel_api_test(TronParallelEnv("room16-4p", rotation="random"), num_cycles=200)


def test_parallel_env__a_scripted_game() -> None:
    env = TronParallelEnv("room17-3p")
    obs, infos = env.reset(seed=0)
    assert env.agents == ["player_0", "player_1", "player_2"] and set(obs) == set(infos)
    # player_0 (row 11) goes south until it leaves the 17-row board on the 6th move; the others
    # (row 4) go south too.
    for turn in range(1, 7):
        obs, rew, term, _, _ = env.step({"player_0": S, "player_1": S, "player_2": S})
        if turn < 6:
            assert not any(term.values()) and set(rew.values()) == {0.0}
    assert term == {"player_0": True, "player_1": False, "player_2": False}
    assert rew == {"player_0": -1.0, "player_1": 0.0, "player_2": 0.0}
    assert env.agents == ["player_1", "player_2"]
    with pytest.raises(ValueError, match=r"missing \['player_2'\], not playing \['player_0'\]"):
        env.step({"player_0": N, "player_1": N})
    with pytest.raises(ValueError, match="illegal action 7 for player_1"):
        env.step({"player_1": 7, "player_2": N})


def test_parallel_env__same_seed_same_maps() -> None:
    def maps(seed: int) -> list[str]:
        env = TronParallelEnv(["room10", "cross", "maze"], rotation="random", obs_size=19)
        return [env.reset(seed=seed if i == 0 else None)[1]["player_0"]["map"] for i in range(8)]

    assert maps(1) == maps(1)


# --------------------------------------------------------------------------- TronVectorEnv


def run(env: TronVectorEnv, actions: list[NDArray[np.int64]]) -> list[tuple[Any, ...]]:
    return [env.step(a) for a in actions]


def test_vector_env__next_step_autoreset() -> None:
    # Env 0's learner (seat 0) leaves the board going north on its second move; in env 1 the
    # opponent (going south, as everywhere) leaves the board on its third.
    env = TronVectorEnv(2, SMALL, seat=0, opponents=always(S))
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs0, _ = env.reset(seed=0)
    (_, r1, t1, _, _), (o2, r2, t2, _, i2) = run(env, [np.array([N, S]), np.array([N, E])])
    assert r1.tolist() == [0.0, 0.0] and t1.tolist() == [False, False]
    assert r2.tolist() == [-1.0, 0.0] and t2.tolist() == [True, False]
    assert i2["_episode"].tolist() == [True, False] and i2["episode"]["r"][0] == -1.0
    assert (
        i2["episode"]["l"][0] == 2
        and i2["winner"][0] == 1
        and i2["_winner"].tolist() == [True, False]
    )
    # The final observation shows the crash: the learner's head is no longer marked.
    assert (o2[0] == Category.OWN_HEAD).sum() == 0
    # Next step: env 0 is reset (its action ignored), reward 0, flags False, first observation.
    o3, r3, t3, tr3, i3 = env.step(np.array([E, E]))
    assert r3.tolist() == [0.0, 1.0] and t3.tolist() == [False, True] and not tr3[0]
    assert i3["_episode"].tolist() == [False, True]
    np.testing.assert_array_equal(o3[0], obs0[0])
    assert env.batch.turn.tolist() == [0, 3]


def test_vector_env__same_step_autoreset_with_final_obs() -> None:
    env = TronVectorEnv(2, SMALL, seat=0, opponents=always(S), autoreset_mode="SameStep")
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs0, _ = env.reset(seed=0)
    env.step(np.array([N, S]))
    o2, r2, t2, _, info = env.step(np.array([N, E]))
    assert r2.tolist() == [-1.0, 0.0] and t2.tolist() == [True, False]
    assert info["_final_obs"].tolist() == [True, False] and info["final_obs"][1] is None
    assert (info["final_obs"][0] == Category.OWN_HEAD).sum() == 0
    np.testing.assert_array_equal(o2[0], obs0[0])  # already the next episode
    assert info["episode"]["l"][0] == 2 and env.batch.turn.tolist() == [0, 2]


def test_vector_env__per_env_seeding_matches_single_envs() -> None:
    maps = ["room10", "cross", "oblong", "room15"]

    def starts_vector(num_envs: int, seed: int) -> list[list[tuple[int, int]]]:
        env = TronVectorEnv(num_envs, maps, rotation="random", opponents=always(N), obs_size=17)
        _, info = env.reset(seed=seed)
        seen = [[(int(env.batch.map_index[i]), int(info["seat"][i]))] for i in range(num_envs)]
        for _ in range(40):  # everyone rides north into the wall: short episodes
            _, _, term, trunc, info = env.step(np.full(num_envs, N))
            for i in np.flatnonzero(term | trunc).tolist():
                seen[i].append((-1, -1))  # an end; the next step starts the next episode
            for i in range(num_envs):
                if seen[i][-1] == (-1, -1) and env.batch.turn[i] == 0:
                    seen[i][-1] = (int(env.batch.map_index[i]), int(info["seat"][i]))
        return [s[:4] for s in seen]

    def starts_single(seed: int) -> list[tuple[int, int]]:
        env = TronEnv(maps, rotation="random", opponents=always(N), obs_size=17)
        out = []
        for k in range(4):
            _, info = env.reset(seed=seed if k == 0 else None)
            out.append(([m.name for m in env.maps].index(info["map"]), info["seat"]))
        return out

    three = starts_vector(3, 100)
    assert three == [starts_single(100 + i) for i in range(3)]
    assert starts_vector(2, 100) == three[:2]  # env i does not depend on the others
    assert len({tuple(s) for s in three}) == 3


def test_vector_env__same_seed_same_rollout() -> None:
    def rollout() -> list[Any]:
        env = TronVectorEnv(4, ["room10", "room15"], rotation="random", obs_size=15)
        out: list[Any] = [env.reset(seed=9)[0].tobytes()]
        rng = np.random.default_rng(1)
        for _ in range(60):
            o, r, t, tr, info = env.step(rng.integers(0, 4, 4))
            out.append((o.tobytes(), r.tolist(), t.tolist(), tr.tolist(), info["seat"].tolist()))
        return out

    assert rollout() == rollout()


def test_vector_env__rotation_across_map_sizes_with_fixed_obs_size() -> None:
    maps = ["room10", "oblong", "room15"]
    env = TronVectorEnv(3, maps, obs_size=20, opponents=always(N), seat=0)
    assert env.single_observation_space.shape == (20, 20)
    assert env.observation_space.shape == (3, 20, 20)
    obs, _ = env.reset(seed=0)
    visited: list[set[str]] = [set() for _ in range(3)]
    for _ in range(60):
        for i in range(3):
            m = env.batch.map_of(i)
            visited[i].add(m.name)
            assert (obs[i, m.height :, :] == Category.WALL).all()
            assert (obs[i, :, m.width :] == Category.WALL).all()
            assert (obs[i, : m.height, : m.width] == Category.WALL).sum() == m.walls.sum()
        obs, *_ = env.step(np.full(3, N))
    assert all(v == set(maps) for v in visited)  # "cycle" visits every map in turn


def test_vector_env__all_players_mode() -> None:
    env = TronVectorEnv(4, LINE, all_players=True)
    assert env.num_envs == 4 and env.batch.batch_size == 2
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 1, 5) and info["alive"].tolist() == [True] * 4
    # env 2*g is seat 0 of game g, env 2*g+1 seat 1: each sees itself as the own head.
    assert obs[0, 0].tolist() == [4, 0, 0, 0, 5] and obs[1, 0].tolist() == [5, 0, 0, 0, 4]
    # Game 0 meets head-on (a draw); in game 1 seat 0 reverses into its trail and loses.
    env.step(np.array([E, W, E, W]))
    _, r, term, trunc, info = env.step(np.array([E, W, W, W]))
    assert r.tolist() == [0.0, 0.0, -1.0, 1.0] and term.all() and not trunc.any()
    assert info["winner"].tolist() == [-1, -1, 1, 1] and info["episode"]["r"].tolist() == r.tolist()
    with pytest.raises(ValueError, match="multiple of n_players=2"):
        TronVectorEnv(3, all_players=True)
    with pytest.raises(ValueError, match="no opponents and no seat"):
        TronVectorEnv(4, all_players=True, seat=0)


def test_vector_env__all_players_three_players_pay_at_the_crash() -> None:
    env = TronVectorEnv(3, "room17-3p", all_players=True)
    env.reset(seed=0)
    # As in the parallel env: seat 0 leaves the board on the 6th move; the game goes on.
    for _ in range(6):
        _, r, term, _, info = env.step(np.array([S, S, S]))
    assert r.tolist() == [-1.0, 0.0, 0.0] and not term.any()
    assert info["alive"].tolist() == [False, True, True]
    # Seat 2 (now on row 10) leaves the board on its 7th move south; seat 1 turns east and wins.
    total = r.copy()
    for _ in range(6):
        _, r, term, _, info = env.step(np.array([N, E, S]))
        total += r
        assert not term.any()
    _, r, term, _, info = env.step(np.array([N, E, S]))
    assert r.tolist() == [0.0, 1.0, -1.0] and term.all()
    assert info["winner"].tolist() == [1, 1, 1]
    np.testing.assert_array_equal(info["episode"]["r"], total + r)


def test_vector_env__rewards_agree_with_the_engine() -> None:
    env = TronVectorEnv(16, ["room10", "room15"], obs_size=15)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(80):
        seats = env.seat.copy()
        _, r, term, trunc, _ = env.step(rng.integers(0, 4, 16))
        for i in np.flatnonzero(term):
            ends += 1
            assert r[i] == 2 * env.batch.outcome(int(i))[seats[i]] - 1
        assert (r[~term] == 0).all() and not trunc.any()
    assert ends > 16


def test_vector_env__record_episode_statistics_compatible() -> None:
    def episodes(stats: bool) -> list[tuple[float, int]]:
        env: Any = TronVectorEnv(4, "room10", episode_stats=stats)
        if not stats:
            env = RecordEpisodeStatistics(env)
        env.reset(seed=2)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(50):
            *_, info = env.step(rng.integers(0, 4, 4))
            if "episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    out.append((float(info["episode"]["r"][i]), int(info["episode"]["l"][i])))
        return out

    built_in = episodes(True)
    assert built_in == episodes(False) and len(built_in) > 8


def test_vector_env__opponents_act_in_batch_and_reset_on_restarts() -> None:
    recorder = Recorder()
    env = TronVectorEnv(3, SMALL, seat=0, opponents=recorder)
    env.reset(seed=0)
    assert recorder.resets == [[0, 1, 2]] and len(recorder.seeds) == 1
    env.step(np.array([N, S, S]))
    assert recorder.acts == [(1, [0, 1, 2])]
    env.step(np.array([N, S, S]))  # env 0 leaves the board; opponents crash off the top too
    recorder.acts.clear()
    env.step(np.array([N, S, S]))  # every game is reset in this step: nobody acts
    assert recorder.acts == [] and recorder.resets[-1] == [0, 1, 2]


def test_vector_env__reset_mask_and_action_checks() -> None:
    env = TronVectorEnv(4, "room10", all_players=True)
    env.reset(seed=0)
    env.step(np.array([E, W, E, W]))
    env.reset(options={"reset_mask": np.array([False, False, True, True])})
    assert env.batch.turn.tolist() == [1, 0]
    with pytest.raises(ValueError, match="all seats of a game together"):
        env.reset(options={"reset_mask": np.array([True, False, False, False])})
    with pytest.raises(ValueError, match="illegal action 4 for env 1"):
        env.step(np.array([0, 4, 0, 0]))
    with pytest.raises(ValueError, match="4 integer Direction values"):
        env.step(np.array([0.0, 1.0, 2.0, 3.0]))


def test_vector_env__render() -> None:
    env = TronVectorEnv(2, SMALL, render_mode="ansi")
    env.reset(seed=0)
    frames = env.render()
    assert frames is not None and len(frames) == 2 and frames[0].startswith("#....#\n")
    assert RandomPolicy(0).act(env.batch, 0, np.array([0, 1])).dtype == np.int8
    env.close()
