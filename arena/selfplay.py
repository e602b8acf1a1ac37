"""Self-play training on Tron: a league of opponents, the ``tron`` env, and the training driver.

The learner (ACKTR or A2C, ``acktr``) trains on ``TronVectorEnv`` in learner-vs-opponents mode; the
opponent seat of every game is played by a ``LeaguePolicy``, which gives each game an opponent from
the ``League`` when the game starts and then moves all games of one opponent in one batched call.

The league:

- **fixed** members: the scripted bots and minimax at low fixed depths (``LeagueConfig.fixed``),
  deterministic and fast enough to play every turn of thousands of games;
- **snapshots**: frozen copies of the learner's network (``NeuralAgent``, sampled moves), one added
  every ``snapshot_every`` updates (the first at the start), the oldest dropped beyond
  ``max_snapshots``.

The sampling rule (each game, at its start):

- with probability ``p_latest`` (0.5) the latest snapshot;
- with probability ``p_older`` (0.25) an older snapshot;
- otherwise (0.25) a fixed member;

and within "older" and "fixed", prioritised fictitious self-play (PFSP, AlphaStar's ``f_hard``):
member ``i`` is drawn with weight ``(1 - s_i) ** pfsp_power + pfsp_floor``, where ``s_i`` is the
learner's running score against it (win 1, draw 0.5, loss 0; an exponential average, 0.5 before
the first game). A share whose pool is empty falls to the fixed members. Why it does not collapse
into mutual draws: a quarter of the games at least are against fixed opponents that never adapt,
and draws score 0.5, so an opponent the learner only draws with keeps a weight of 0.25 (plus the
floor), far above one it beats, which draws the games to where the learner does not yet win.

Every ``gauntlet_every`` steps the greedy learner plays the minimax ladder
(``LeagueConfig.gauntlet``) with ``arena.match.play_match``; the scores go into ``progress.csv``
and TensorBoard as ``gauntlet/<spec>`` with the league's ``league/...`` metrics, and to the log.

Data-parallel training (``tron train ... --nprocs N`` or torchrun; ``acktr.distributed``): every
rank plays its own games against its own copy of the league, and the copies are kept one league.
Snapshots are taken at the same update on every rank from the same parameters, so every copy holds
the same members; after each update the ranks' changes to the running scores and game counts are
summed (``League.synchronize``), so PFSP weighs the opponents by the games of all ranks, and the
league rank 0 saves is the whole run's. Only the opponent draws differ: each rank has its own
random stream, so the ranks' games together follow the sampling rule like one process's. The
gauntlet's opponents are shared out among the ranks and the scores gathered.

Env ids: ``tron`` (the default rotation ``DEFAULT_MAPS``) or ``tron:MAP[,MAP...]`` (built-in names
or map files). ``register_env_factory("tron", ...)`` runs on import, so ``acktr.envs.make_vec_env``
and every learner's ``for_env`` build the league env from the id (``dqn`` and ``a3c`` get the
fixed members; snapshots and gauntlets need ``train_selfplay``, which drives ACKTR and A2C).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import tempfile
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from gymnasium.vector import VectorEnv, VectorWrapper
from numpy.typing import NDArray

from acktr.acktr import ActorCriticConfig, ActorCriticLearner, Preset, register_preset
from acktr.distributed import World, rank_seed
from acktr.envs import ensure_episode_statistics, register_env_factory
from acktr.training import (
    CHECKPOINT_NAME,
    Callback,
    CheckpointError,
    Learner,
    apply_overrides,
    config_from_dict,
    learner_class,
    read_checkpoint,
    train,
)
from agents.base import Agent
from agents.neural import NeuralAgent, TronNet, tron_policy
from agents.registry import make_agent
from arena.match import play_match
from tron.env.vector import TronVectorEnv
from tron.maps import Map, load_map
from tron.rules import TronBatch

log = logging.getLogger(__name__)

#: The maps of ``--env tron``: the built-in 2-player maps up to 17x17.
DEFAULT_MAPS = ("room15", "cross", "ring", "pillars", "oblong", "corridors", "room10")
#: The league's state beside the learner's checkpoint in a run directory.
LEAGUE_NAME = "league.pt"
LEAGUE_FORMAT = "tron-lab/league"


@dataclass(frozen=True)
class LeagueConfig:
    """The league's members, sampling rule and gauntlet (see the module docstring)."""

    fixed: tuple[str, ...] = (
        "random",
        "greedy",
        "wallhugger",
        "chaser",
        "minimax:level=1",
        "minimax:level=2",
        "minimax:level=4,depth=2",
        "minimax:level=4,depth=3",
    )
    """Agent specs of the fixed members (fast, deterministic opponents)."""
    p_latest: float = 0.5
    """Share of games against the latest snapshot."""
    p_older: float = 0.25
    """Share of games against older snapshots (PFSP-weighted); the rest goes to fixed members."""
    pfsp_power: float = 2.0
    """PFSP exponent: weight ``(1 - score) ** power``."""
    pfsp_floor: float = 0.05
    """Added to every PFSP weight, so that beaten opponents still come back now and then."""
    score_decay: float = 0.02
    """Step of the running score per finished game (exponential average)."""
    snapshot_every: int = 50
    """Updates between snapshots."""
    max_snapshots: int = 16
    """Snapshots kept (oldest dropped)."""
    gauntlet: tuple[str, ...] = (
        "greedy",
        "minimax:level=1",
        "minimax:level=2",
        "minimax:level=4,depth=3",
    )
    """The ladder the greedy learner plays every ``gauntlet_every`` steps."""
    gauntlet_every: int = 100_000
    """Environment steps between gauntlets (0: never)."""
    gauntlet_games: int = 20
    """Games per gauntlet opponent (seats alternate, maps rotate)."""
    gauntlet_maps: tuple[str, ...] = ("room15", "cross", "pillars", "oblong")
    """Maps of the gauntlet."""


@dataclass(frozen=True)
class NetConfig:
    """The Tron network a new self-play run trains (``--set net.FIELD=VALUE``; ``TronNet``)."""

    features: Literal["board", "voronoi"] = "voronoi"
    """Input features: ``board`` (six one-hot planes, the first shipped agent's) or ``voronoi``
    (plus breadth-first distances from both heads and the Voronoi partition)."""
    mask: bool = True
    """Mask the moves that crash at once (walls, trails, heads) in training and in play."""


@dataclass
class Member:
    """One opponent of the league.

    Attributes:
        name: agent spec (fixed) or ``snapshot@STEPS``.
        agent: plays the opponent seat.
        fixed: a fixed member (else a snapshot).
        score: the learner's running score against it (1 win, 0.5 draw, 0 loss).
        games: finished games against it.
        weights: a snapshot's frozen network weights (saved with the league); None when fixed.
    """

    name: str
    agent: Agent
    fixed: bool
    score: float = 0.5
    games: int = 0
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)


class League:
    """The opponents and the sampling rule (see the module docstring).

    Args:
        config: members and rule.
        seed: seeds the draws and the snapshots' sampling.
    """

    def __init__(self, config: LeagueConfig, seed: int = 0) -> None:
        shares = (config.p_latest, config.p_older)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError("p_latest and p_older must be >= 0 and sum to at most 1")
        if not config.fixed:
            raise ValueError("the league needs at least one fixed member")
        self.config = config
        self.rng = np.random.default_rng(seed)
        self._seed = seed
        self.members: list[Member] = [
            Member(spec, make_agent(spec, seed=seed + k), fixed=True)
            for k, spec in enumerate(config.fixed)
        ]
        # (score, games) of each member when the ranks last agreed; a member missing here is new
        # (a snapshot) and started from Member's defaults on every rank.
        self._agreed: dict[str, tuple[float, int]] = {}

    @property
    def snapshots(self) -> list[Member]:
        """The snapshot members, oldest first."""
        return [m for m in self.members if not m.fixed]

    def add_snapshot(self, name: str, weights: Mapping[str, torch.Tensor]) -> Member:
        """Freeze ``weights`` (a ``TronNet`` state dict) as the newest member."""
        frozen = {k: v.detach().clone().cpu() for k, v in weights.items()}
        net = TronNet.from_state_dict(frozen)
        agent = NeuralAgent(net, greedy=False, seed=self._seed + len(self.members), name=name)
        member = Member(name, agent, fixed=False, weights=frozen)
        self.members.append(member)
        snapshots = self.snapshots
        if len(snapshots) > self.config.max_snapshots:
            self.members.remove(snapshots[0])
        return member

    def _pfsp(self, pool: list[Member]) -> NDArray[np.float64]:
        c = self.config
        w = np.array([(1.0 - m.score) ** c.pfsp_power + c.pfsp_floor for m in pool])
        return w / w.sum()

    def sample(self, n: int) -> list[Member]:
        """Opponents for ``n`` new games, by the league's rule."""
        snapshots = self.snapshots
        fixed = [m for m in self.members if m.fixed]
        older = snapshots[:-1]
        p_latest = self.config.p_latest if snapshots else 0.0
        p_older = self.config.p_older if older else 0.0
        u = self.rng.random(n)
        out: list[Member] = []
        fixed_p, older_p = self._pfsp(fixed), self._pfsp(older) if older else None
        for x in u:
            if x < p_latest:
                out.append(snapshots[-1])
            elif x < p_latest + p_older:
                assert older_p is not None
                out.append(older[int(self.rng.choice(len(older), p=older_p))])
            else:
                out.append(fixed[int(self.rng.choice(len(fixed), p=fixed_p))])
        return out

    def record(self, member: Member, score: float) -> None:
        """The learner scored ``score`` (1, 0.5 or 0) in a game against ``member``."""
        member.games += 1
        member.score += self.config.score_decay * (score - member.score)

    def synchronize(self, world: World) -> None:
        """Make every rank's copy of the league the same (a collective; nothing in one process).

        Each member's running score becomes its agreed score plus the sum of the ranks' changes
        since the last agreement (clipped to [0, 1]): to first order in ``score_decay`` that is the
        running average over all ranks' games. Game counts are summed. Every rank must hold the
        same members in the same order, as it does when snapshots are taken at the same updates.

        Raises:
            acktr.distributed.DistributedError: if the process group failed.
        """
        if world.size == 1:
            return
        default = (Member.score, Member.games)
        agreed = [self._agreed.get(m.name, default) for m in self.members]
        deltas = torch.tensor(
            [[m.score - s, m.games - g] for m, (s, g) in zip(self.members, agreed, strict=True)],
            dtype=torch.float64,
            device=world.device,
        )
        world.all_reduce_sum_([deltas])
        for m, (s, g), (d_score, d_games) in zip(
            self.members, agreed, deltas.tolist(), strict=True
        ):
            m.score = min(1.0, max(0.0, s + d_score))
            m.games = g + round(d_games)
        self._agreed = {m.name: (m.score, m.games) for m in self.members}

    def metrics(self) -> dict[str, float]:
        """``league/...`` metrics: size and the learner's running scores."""
        out: dict[str, float] = {"league/snapshots": float(len(self.snapshots))}
        for m in self.members:
            if m.fixed and m.games:
                out[f"league/score_{m.name}"] = m.score
        snapshots = self.snapshots
        if snapshots and snapshots[-1].games:
            out["league/score_latest"] = snapshots[-1].score
        older = [m for m in snapshots[:-1] if m.games]
        if older:
            out["league/score_older"] = float(np.mean([m.score for m in older]))
        return out

    def state(self) -> dict[str, Any]:
        """Snapshots and running scores, in checkpoint-safe form (tensors, numbers, strings)."""
        return {
            "format": LEAGUE_FORMAT,
            "config": json.dumps(dataclasses.asdict(self.config)),
            "members": [
                {"name": m.name, "fixed": m.fixed, "score": m.score, "games": m.games}
                for m in self.members
            ],
            "weights": {m.name: m.weights for m in self.snapshots},
            "rng": self.rng.bit_generator.state,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore ``state()``: snapshots back in order, scores of members still configured."""
        if state.get("format") != LEAGUE_FORMAT:
            raise CheckpointError("not a league state")
        by_name = {m.name: m for m in self.members if m.fixed}
        for entry in state["members"]:
            if entry["fixed"]:
                member = by_name.get(entry["name"])
                if member is None:
                    continue
            else:
                member = self.add_snapshot(entry["name"], state["weights"][entry["name"]])
            member.score, member.games = float(entry["score"]), int(entry["games"])
        self.rng.bit_generator.state = state["rng"]
        self._agreed = {m.name: (m.score, m.games) for m in self.members}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``state()`` atomically."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            torch.save(self.state(), tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def read_config(path: str | os.PathLike[str]) -> LeagueConfig:
        """The ``LeagueConfig`` a league file was saved with.

        Raises:
            CheckpointError: the file is missing, damaged or not a league.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            return config_from_dict(LeagueConfig, json.loads(state["config"]))
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as e:
            raise CheckpointError(f"{path} is not a readable league state: {e}") from None

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a league written by ``save``.

        Raises:
            CheckpointError: the file is missing, damaged or not a league.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.load_state(state)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as e:
            raise CheckpointError(f"{path} is not a readable league state: {e}") from None


class LeaguePolicy:
    """The opponent seat of a ``TronVectorEnv``: the ``Policy`` protocol over a ``League``.

    Args:
        league: where opponents come from.
        n_games: games in the env's batch.
    """

    def __init__(self, league: League, n_games: int) -> None:
        self.league = league
        self.assigned: list[Member | None] = [None] * n_games

    def reset(self, games: NDArray[np.intp]) -> None:
        """Draw an opponent for each starting game and let every member forget those games."""
        for m in self.league.members:
            m.agent.reset(games)
        for g, member in zip(games.tolist(), self.league.sample(len(games)), strict=True):
            self.assigned[g] = member

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        """Moves for ``seat`` in ``games``: one batched call per opponent."""
        out = np.zeros(len(games), dtype=np.int8)
        owners = [self.assigned[g] for g in games.tolist()]
        groups: dict[int, list[int]] = {}
        for i, member in enumerate(owners):
            groups.setdefault(id(member), []).append(i)
        for index in groups.values():
            member = owners[index[0]]
            assert member is not None, "a game without an opponent: reset was not called"
            idx = np.asarray(index)
            out[idx] = member.agent.act(batch, seat, games[idx])
        return out


class LeagueEnv(VectorWrapper):
    """A ``TronVectorEnv`` whose opponents are a league, reporting each game's result to it."""

    def __init__(self, env: TronVectorEnv, policy: LeaguePolicy) -> None:
        super().__init__(env)
        self.policy = policy
        self.league = policy.league

    def step(self, actions: Any) -> Any:
        # The opponents of games that end this step are still assigned: a restart (and a new draw)
        # happens on the next step under NEXT_STEP autoreset.
        owners = list(self.policy.assigned)
        obs, reward, terminated, truncated, info = self.env.step(actions)
        if "_winner" in info:
            for i in np.flatnonzero(info["_winner"]).tolist():
                member = owners[i]
                if member is not None:
                    winner, seat = int(info["winner"][i]), int(info["seat"][i])
                    self.league.record(
                        member, 1.0 if winner == seat else 0.5 if winner < 0 else 0.0
                    )
        return obs, reward, terminated, truncated, info


def parse_env_id(env_id: str) -> list[Map]:
    """The maps of a ``tron`` or ``tron:MAP[,MAP...]`` env id.

    Raises:
        ValueError: an id of another env, an unknown map, or a map not for 2 players.
    """
    head, _, rest = env_id.partition(":")
    if head != "tron":
        raise ValueError(f"not a tron env id: {env_id!r}")
    names = [n.strip() for n in rest.split(",") if n.strip()] if rest else list(DEFAULT_MAPS)
    maps = [load_map(n) for n in names]
    for m in maps:
        if m.n_players != 2:
            raise ValueError(f"map {m.name!r} is for {m.n_players} players; self-play is 2-player")
    return maps


def make_league_env(
    maps: Sequence[Map], num_envs: int, config: LeagueConfig | None = None, seed: int = 0
) -> LeagueEnv:
    """``num_envs`` games on ``maps`` (random seats), the opponent seat played by a new league."""
    league = League(config or LeagueConfig(), seed=seed)
    policy = LeaguePolicy(league, num_envs)
    # Episode statistics are left to the RecordEpisodeStatistics wrapper the learners add.
    env = TronVectorEnv(num_envs, list(maps), opponents=policy, seat="random", episode_stats=False)
    return LeagueEnv(env, policy)


def make_tron_env(env_id: str, num_envs: int) -> VectorEnv:
    """The env factory registered for ``tron`` ids (``acktr.envs.register_env_factory``)."""
    return make_league_env(parse_env_id(env_id), num_envs)


def find_league_env(env: VectorEnv) -> LeagueEnv:
    """The ``LeagueEnv`` inside a chain of vector wrappers.

    Raises:
        ValueError: there is none.
    """
    inner: Any = env
    while inner is not None:
        if isinstance(inner, LeagueEnv):
            return inner
        inner = getattr(inner, "env", None)
    raise ValueError("the env is not a league env (build it with make_league_env)")


# ---------------------------------------------------------------------------------------------
# Presets of the tron suite: the ACKTR paper's Atari settings, with the Tron network.

TRON_PRESETS = {
    # Not the paper's Atari trust region (0.001): with it the Tron policy barely moved in 16k
    # steps (entropy 1.374 of 1.386); 0.01 and shorter rollouts learn in minutes (README).
    "acktr": Preset(
        32,
        ActorCriticConfig(
            network="custom",
            n_steps=10,
            lr=0.25,
            kl_clip=0.01,
            ent_coef=0.01,
            vf_coef=0.5,
            cold_steps=10,
        ),
    ),
    "a2c": Preset(
        16,
        ActorCriticConfig(
            optimizer="rmsprop",
            network="custom",
            n_steps=5,
            lr=7e-4,
            ent_coef=0.01,
            vf_coef=0.5,
            max_grad_norm=0.5,
        ),
    ),
}


# ---------------------------------------------------------------------------------------------
# Gauntlet


def gauntlet(
    net: TronNet,
    specs: Sequence[str],
    maps: Sequence[Map],
    games: int,
    seed: int = 0,
) -> dict[str, float]:
    """The greedy network's score (wins + draws / 2 per game) against each spec."""
    agent = NeuralAgent(net, greedy=True, name="learner")
    scores: dict[str, float] = {}
    for spec in specs:
        result = play_match(agent, spec, list(maps), games, seed=seed)
        scores[spec] = result.score(0)
    return scores


# ---------------------------------------------------------------------------------------------
# The training driver


class SelfPlayLearner:
    """An ACKTR/A2C learner with its league: snapshots and gauntlets between updates.

    Follows what ``acktr.training.train`` uses of the ``Learner`` protocol (``learn``, ``save``,
    ``describe``, ``num_timesteps``); ``save`` writes the league beside the checkpoint.
    """

    def __init__(self, learner: ActorCriticLearner, league_env: LeagueEnv) -> None:
        self.learner = learner
        self.world = learner.world
        self.league = league_env.league
        self.config = self.league.config
        self.algo = learner.algo
        self.updates = 0
        self.next_gauntlet = self._after(learner.num_timesteps, self.config.gauntlet_every)
        if not self.league.snapshots:
            self.league.add_snapshot(
                f"snapshot@{learner.num_timesteps}", learner.model.state_dict()
            )

    @staticmethod
    def _after(step: int, every: int) -> int:
        return (step // every + 1) * every if every > 0 else -1

    @property
    def num_timesteps(self) -> int:
        """Environment steps taken by the learner."""
        return self.learner.num_timesteps

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = False
    ) -> SelfPlayLearner:
        """Train the learner to ``total_timesteps``, snapshotting and playing gauntlets."""

        def on_update(_: Learner, metrics: Mapping[str, float]) -> bool | None:
            extra = self._after_update()
            if callback is None:
                return None
            return callback(typing.cast(Learner, self), {**metrics, **extra})

        self.learner.learn(total_timesteps, callback=on_update, progress_bar=progress_bar)
        return self

    def _after_update(self) -> dict[str, float]:
        self.updates += 1
        steps = self.learner.num_timesteps
        if self.updates % self.config.snapshot_every == 0:
            self.league.add_snapshot(f"snapshot@{steps}", self.learner.model.state_dict())
        self.league.synchronize(self.world)
        metrics = self.league.metrics()
        if self.next_gauntlet > 0 and steps >= self.next_gauntlet:
            self.next_gauntlet = self._after(steps, self.config.gauntlet_every)
            metrics.update(self.run_gauntlet())
        return metrics

    def run_gauntlet(self) -> dict[str, float]:
        """Play the gauntlet with the current network; ``gauntlet/<spec>`` scores.

        In a data-parallel run every rank calls it and plays every ``size``-th opponent.
        """
        c = self.config
        net = TronNet.from_state_dict(
            {k: v.detach().clone().cpu() for k, v in self.learner.model.state_dict().items()}
        )
        maps = [load_map(n) for n in c.gauntlet_maps]
        mine = c.gauntlet[self.world.rank :: self.world.size]
        played = gauntlet(net, mine, maps, c.gauntlet_games, seed=self.learner.num_timesteps)
        every = {k: v for part in self.world.all_gather_object(played) for k, v in part.items()}
        scores = {spec: every[spec] for spec in c.gauntlet}
        log.info(
            "gauntlet at %d steps: %s",
            self.learner.num_timesteps,
            ", ".join(f"{k} {v:.2f}" for k, v in scores.items()),
        )
        return {f"gauntlet/{k}": v for k, v in scores.items()}

    def save(self, path: str | os.PathLike[str]) -> None:
        """The learner's checkpoint at ``path``, the league beside it (``league.pt``).

        In a data-parallel run every rank calls it and rank 0 writes both files.
        """
        self.learner.save(path)
        if self.world.is_main:
            self.league.save(Path(path).with_name(LEAGUE_NAME))

    def describe(self) -> dict[str, Any]:
        """The learner's description, the league's settings and the network's."""
        out = {**self.learner.describe(), "league": dataclasses.asdict(self.config)}
        model = self.learner.model
        if isinstance(model, TronNet):
            out["network"] = model.describe()
        return out


def build_selfplay(
    algo: str,
    env_id: str = "tron",
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int = 0,
    num_envs: int | None = None,
    overrides: Mapping[str, str] | None = None,
    league: LeagueConfig | None = None,
    device: str = "cpu",
    world: World | None = None,
) -> SelfPlayLearner:
    """A self-play learner for ``algo`` (``acktr`` or ``a2c``) on ``env_id``'s maps.

    Args:
        algo: the learner.
        env_id: ``tron`` or ``tron:MAP[,MAP...]``.
        run_dir: with ``resume``, the run directory to continue (checkpoint and league).
        resume: continue from ``run_dir``'s checkpoint.
        seed: seeds the network, the env and the league.
        num_envs: parallel games (default: the preset's).
        overrides: hyperparameters as strings (``{"lr": "0.1"}``); keys ``league.FIELD`` set
            ``LeagueConfig`` fields (``{"league.snapshot_every": "20"}``), keys ``net.FIELD``
            ``NetConfig`` fields (``{"net.mask": "false"}``). A resumed run keeps its network.
        league: the league's settings (before ``league.`` overrides).
        device: where the network trains.
        world: this rank of a data-parallel run (every rank calls this; ``num_envs`` is then this
            rank's number of games). Default: a single process.

    Raises:
        ValueError: an unknown algo, env id or setting.
        CheckpointError: an unreadable checkpoint or league file.
    """
    if algo not in TRON_PRESETS:
        raise ValueError(f"self-play trains {' or '.join(TRON_PRESETS)}, not {algo!r}")
    settings = dict(overrides or {})
    league_settings = {
        k.removeprefix("league."): settings.pop(k)
        for k in list(settings)
        if k.startswith("league.")
    }
    net_settings = {
        k.removeprefix("net."): settings.pop(k) for k in list(settings) if k.startswith("net.")
    }
    net = apply_overrides(NetConfig(), net_settings)
    cls = typing.cast(type[ActorCriticLearner], learner_class(algo))
    preset = TRON_PRESETS[algo]
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        checkpoint = read_checkpoint(Path(run_dir) / CHECKPOINT_NAME, algo=algo)
        # A resumed run keeps its number of games and its league unless told otherwise.
        num_envs = num_envs or checkpoint.config.get("num_envs")
        if league is None and (Path(run_dir) / LEAGUE_NAME).exists():
            league = League.read_config(Path(run_dir) / LEAGUE_NAME)
    league = apply_overrides(league or LeagueConfig(), league_settings)
    world = world or World()
    maps = parse_env_id(env_id)
    env = make_league_env(
        maps, num_envs or preset.num_envs, league, seed=rank_seed(seed, world.rank)
    )
    vec = ensure_episode_statistics(env)
    if resume:
        assert run_dir is not None
        run = Path(run_dir)
        # The checkpoint's own network (features, mask, sizes), whatever NetConfig's defaults are.
        model = read_checkpoint(run / CHECKPOINT_NAME, algo=algo).state.get("model")
        if not isinstance(model, dict):
            raise CheckpointError(f"{run / CHECKPOINT_NAME} holds no model weights")
        try:
            policy = TronNet.from_state_dict(model)
        except ValueError as e:
            raise CheckpointError(f"{run / CHECKPOINT_NAME}: {e}") from None
        learner = cls.load(run / CHECKPOINT_NAME, env=vec, device=device, policy=policy)
        if (run / LEAGUE_NAME).exists():
            env.league.load(run / LEAGUE_NAME)
            if world.size > 1:
                # The saved stream is rank 0's: every rank restoring it would draw the same
                # opponents for its games.
                steps = learner.num_timesteps
                env.league.rng = np.random.default_rng(rank_seed(learner.seed, world.rank, steps))
    else:
        config = apply_overrides(preset.config, settings)
        factory = functools.partial(tron_policy, features=net.features, mask=net.mask)
        learner = cls(vec, config, policy=factory, seed=seed, device=device)
        learner.env_id, learner.suite = env_id, "tron"
    if world.size > 1:
        learner.distribute(world)
    return SelfPlayLearner(learner, env)


def selfplay_learner(
    algo: str,
    env_id: str,
    *,
    run_dir: str | os.PathLike[str],
    resume: bool,
    seed: int = 0,
    num_envs: int | None = None,
    overrides: Mapping[str, str] | None = None,
    device: str = "auto",
    world: World | None = None,
) -> Learner | None:
    """What ``tron train`` trains on a ``tron`` env id: ``build_selfplay``'s learner for ACKTR and
    A2C, ``None`` for other learners or env ids (they take the generic path: ``for_env``).

    The learner is typed ``Learner`` for the command's sake: it has what ``acktr.training.train``
    and the command use of one (``learn``, ``save``, ``describe``, ``num_timesteps``).
    """
    if algo not in TRON_PRESETS or env_id.partition(":")[0] != "tron":
        return None
    learner = build_selfplay(
        algo,
        env_id,
        run_dir=run_dir,
        resume=resume,
        seed=seed,
        num_envs=num_envs,
        overrides=overrides,
        device=device,
        world=world,
    )
    return typing.cast(Learner, learner)


def train_selfplay(
    learner: SelfPlayLearner,
    total_timesteps: int,
    run_dir: str | os.PathLike[str],
    *,
    checkpoint_every: int = 50_000,
    resumed: bool = False,
    progress_bar: bool = True,
    tensorboard: bool = True,
    run_info: Mapping[str, Any] | None = None,
) -> None:
    """``acktr.training.train`` for a self-play learner (same run directory, plus ``league.pt``)."""
    train(
        typing.cast(Learner, learner),
        total_timesteps,
        run_dir,
        checkpoint_every=checkpoint_every,
        resumed=resumed,
        progress_bar=progress_bar,
        tensorboard=tensorboard,
        run_info=run_info,
    )


def register() -> None:
    """Register the ``tron`` env factory and the ``tron`` presets (idempotent)."""
    register_env_factory("tron", make_tron_env, suite="tron")
    for algo, preset in TRON_PRESETS.items():
        register_preset(algo, "tron", preset)


register()
