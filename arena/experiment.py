"""The seed's experiment: ACKTR vs A2C vs A3C vs DQN on Tron, same steps, opponents and maps.

Every *arm* trains the same network (``agents.neural.TronNet``) on the same maps for the same
number of environment steps, for seeds ``0..K-1``, one run per (arm, seed):

- ``acktr``, ``a2c``, ``a3c``, ``dqn``: each learner with its Tron preset, against the **fixed
  pool**: the league's fixed members (``LeagueConfig.fixed``: random, greedy, wallhugger, chaser,
  minimax level 1, 2 and level 4 at depth 2 and 3), one drawn uniformly at random for each game.
  Uniform rather than PFSP so that the opponents do not depend on how well the learner is doing:
  every algorithm sees the same distribution of opponents at every step.
- ``acktr-selfplay`` (an extra arm): ACKTR with the shipped agent's league (``arena.selfplay``:
  half the games against its latest snapshot, a quarter against older ones, a quarter against the
  fixed members, PFSP-weighted). It sees the fixed members in a quarter of its games only; it is
  there to show what self-play buys at the same budget, not as part of the like-for-like four.

Schedules that depend on the run's length end at the budget for every learner: ACKTR, A2C and A3C
decay their learning rate linearly to 0 at ``steps`` (their presets), and DQN's epsilon decays over
``min(preset, steps / 10)`` steps (the preset's 200k is a tenth of a 2M run).

Every ``eval_every`` steps (and at step 0 and at the end) a run freezes its network into
``evals/step-NNNNNNNNN.pt`` with the run's training wall time and CPU time so far; after training,
each frozen network plays the greedy policy against the ladder (``ExperimentConfig.ladder``,
minimax levels 1-4: fixed depth, so a game depends on nothing but the two players) and the
scripted bots, ``games`` games each on the training maps (seats alternating: 14 games = every map
from both seats once; a greedy network against a fixed-depth search plays the same game every
time, so more games only repeat them). Score = (wins + draws / 2) / games.

Timing. ``wall_s`` counts the time inside the learner's ``learn`` (checkpoints included; process
start, the evaluation games and anything before a resume's checkpoint excluded). ``cpu_s`` is the
CPU time of the training process over the same span, plus its A3C worker processes (read from
``/proc`` while they run): on a shared machine wall time says as much about the other jobs as about
the learner, CPU time much less.

Layout of ``OUT``::

    experiment.json            the settings (a re-run must use the same; arms and seeds may grow)
    runs/ARM-sSEED/            checkpoint.pt (+ league.pt), progress.csv, train.log,
                               evals/step-*.pt (frozen network, timing) and step-*.json (scores)
    results.csv                one row per evaluation point per run
    results.md                 the table (95 % intervals over seeds and over games)
    curves.png                 scores against steps, wall time and CPU time (mean over seeds,
                               band: lowest to highest seed)

Runs execute one after another (``jobs`` at a time), each in its own process (``spawn``). A re-run
skips finished runs, resumes unfinished ones from their last checkpoint (written at every
evaluation point) and evaluates frozen networks not yet scored. A run directory is locked while
its process works on it, so two invocations never write one run.
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import json
import logging
import math
import multiprocessing as mp
import os
import statistics
import time
import typing
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

EXPERIMENT_FORMAT = "tron-lab/experiment"
#: The learners of the like-for-like comparison, and the extra self-play arm.
ARMS: dict[str, tuple[str, Literal["pool", "selfplay"]]] = {
    "acktr": ("acktr", "pool"),
    "a2c": ("a2c", "pool"),
    "a3c": ("a3c", "pool"),
    "dqn": ("dqn", "pool"),
    "acktr-selfplay": ("acktr", "selfplay"),
}
LADDER = ("minimax:level=1", "minimax:level=2", "minimax:level=3", "minimax:level=4")
SCRIPTED = ("random", "greedy", "wallhugger", "chaser")
#: Env steps between the callbacks of DQN and A3C (their presets: 10k): where a run can notice an
#: evaluation point, so an evaluation lands at most this far past its nominal step (a fifth of
#: ``eval_every`` when that is less).
CALLBACK_EVERY = 2_000


@dataclass(frozen=True)
class ExperimentConfig:
    """The settings of an experiment (``experiment.json``)."""

    arms: tuple[str, ...] = tuple(ARMS)
    """Arms to run (``ARMS``)."""
    seeds: int = 3
    """Seeds ``0..seeds-1`` per arm."""
    steps: int = 300_000
    """Environment steps per run (the budget)."""
    eval_every: int = 25_000
    """Environment steps between evaluation points (also the checkpoint interval)."""
    maps: tuple[str, ...] = ("room15", "cross", "ring", "pillars", "oblong", "corridors", "room10")
    """Maps of training and evaluation (``arena.selfplay.DEFAULT_MAPS``)."""
    ladder: tuple[str, ...] = LADDER
    """The ladder: the headline score is the mean over these."""
    scripted: tuple[str, ...] = SCRIPTED
    """Scripted bots, scored beside the ladder (what a weak learner did learn)."""
    games: int = 14
    """Games per opponent per evaluation point (seats alternate, maps rotate)."""

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arm(s) {', '.join(unknown)}; arms: {', '.join(ARMS)}")
        if not self.arms:
            raise ValueError("no arms to run")
        for name in ("seeds", "steps", "eval_every", "games"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.maps:
            raise ValueError("no maps")
        if not self.ladder:
            raise ValueError("the ladder needs at least one opponent")

    @property
    def points(self) -> list[int]:
        """Nominal evaluation steps: 0, every ``eval_every``, and the budget."""
        return [*range(0, self.steps, self.eval_every), self.steps]

    @property
    def opponents(self) -> tuple[str, ...]:
        """Everyone a frozen network plays: the ladder, then the scripted bots."""
        return self.ladder + self.scripted

    def to_json(self) -> dict[str, Any]:
        return {"format": EXPERIMENT_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields
        }
        return cls(**values)


#: Settings a re-run may change: more arms or seeds just add runs.
_GROWABLE = ("arms", "seeds")


@dataclass(frozen=True)
class RunSpec:
    """One run: an arm and a seed, in ``OUT/runs/ARM-sSEED``."""

    arm: str
    seed: int
    out: str

    @property
    def name(self) -> str:
        return f"{self.arm}-s{self.seed}"

    @property
    def dir(self) -> Path:
        return Path(self.out) / "runs" / self.name

    @property
    def algo(self) -> str:
        return ARMS[self.arm][0]

    @property
    def opponents(self) -> str:
        return ARMS[self.arm][1]


def run_specs(config: ExperimentConfig, out: str | os.PathLike[str]) -> list[RunSpec]:
    """The runs, seed-major (every arm's seed 0 first), so partial results stay balanced."""
    return [RunSpec(arm, seed, str(out)) for seed in range(config.seeds) for arm in config.arms]


# ---------------------------------------------------------------------------------------------
# Frozen networks and their scores


def point_name(step: int) -> str:
    return f"step-{step:09d}"


def frozen_points(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Nominal step -> the metadata of each frozen network of a run (no weights)."""
    import torch

    out: dict[int, dict[str, Any]] = {}
    for path in sorted((run_dir / "evals").glob("step-*.pt")):
        data = torch.load(path, map_location="cpu", weights_only=True)
        out[int(data["step"])] = {k: v for k, v in data.items() if k != "model"}
    return out


def scored_points(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Nominal step -> the scores of each evaluated point of a run."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((run_dir / "evals").glob("step-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[int(data["step"])] = data
    return out


def run_finished(spec: RunSpec, config: ExperimentConfig) -> bool:
    """Every evaluation point frozen and scored."""
    evals = spec.dir / "evals"
    return all((evals / f"{point_name(p)}.json").exists() for p in config.points)


# ---------------------------------------------------------------------------------------------
# Building the learners


def pool_league() -> Any:
    """The fixed pool: the league's fixed members, drawn uniformly, no snapshots ever played."""
    from arena.selfplay import LeagueConfig

    # pfsp_power 0: every member weighs (1 - s)^0 + floor = 1 + floor, whatever the scores.
    return LeagueConfig(p_latest=0.0, p_older=0.0, pfsp_power=0.0, gauntlet_every=0)


@dataclass(frozen=True)
class PoolEnvFactory:
    """A3C's worker envs: each worker's own fixed pool on the maps (seeded per worker)."""

    maps: tuple[str, ...]
    num_envs: int
    seed: int

    def __call__(self, worker: int) -> Any:
        from arena.selfplay import make_league_env
        from tron.maps import load_map

        maps = [load_map(m) for m in self.maps]
        return make_league_env(maps, self.num_envs, pool_league(), seed=self.seed * 1000 + worker)


class Trainer:
    """A learner of any arm with what the experiment needs of it.

    ``net()`` is the ``TronNet`` being trained, ``save(dir)`` writes the checkpoint (and the league
    where the run has one in this process), ``worker_pids()`` the A3C processes to charge CPU to.
    """

    def __init__(self, learner: Any, league: Any | None) -> None:
        self.learner = learner
        self.league = league

    def net(self) -> Any:
        from agents.dqn import DQN
        from arena.selfplay import SelfPlayLearner

        lrn = self.learner
        if isinstance(lrn, SelfPlayLearner):
            return lrn.learner.model
        if isinstance(lrn, DQN):
            # ActorCriticQ around the Tron network: its logits are the Q-values (or, dueling,
            # the advantages); the arg-max, all that greedy play needs, is the same either way.
            return lrn.q_net.actor_critic
        return lrn.model

    def obs_shape(self) -> tuple[int, int]:
        """The (height, width) of the boards the network sees in training."""
        lrn = getattr(self.learner, "learner", self.learner)  # inside a SelfPlayLearner
        h, w = lrn.observation_space.shape
        return int(h), int(w)

    def worker_pids(self) -> list[int]:
        return list(getattr(self.learner, "worker_pids", []))

    def save(self, run_dir: Path) -> None:
        from acktr.training import CHECKPOINT_NAME
        from arena.selfplay import LEAGUE_NAME

        self.learner.save(run_dir / CHECKPOINT_NAME)  # SelfPlayLearner writes its league too
        if self.league is not None:
            self.league.save(run_dir / LEAGUE_NAME)


def callback_every(config: ExperimentConfig) -> int:
    """The ``log_every`` of DQN and A3C runs (see ``CALLBACK_EVERY``)."""
    return max(1, min(CALLBACK_EVERY, config.eval_every // 5))


def build_trainer(spec: RunSpec, config: ExperimentConfig, resume: bool) -> Trainer:
    """The learner of ``spec``, fresh or restored from its run directory's checkpoint."""
    from acktr.acktr import ActorCriticLearner
    from acktr.envs import ensure_episode_statistics
    from acktr.training import CHECKPOINT_NAME, apply_overrides, learner_class
    from agents import a3c, dqn
    from agents.neural import tron_policy
    from arena.selfplay import (
        LEAGUE_NAME,
        TRON_PRESETS,
        LeagueConfig,
        build_selfplay,
        make_league_env,
    )
    from tron.maps import load_map

    run_dir = spec.dir
    checkpoint = run_dir / CHECKPOINT_NAME
    env_id = "tron:" + ",".join(config.maps)
    learner: Any
    if spec.opponents == "selfplay":
        league = LeagueConfig(gauntlet_every=0)
        learner = build_selfplay(
            spec.algo,
            env_id,
            run_dir=run_dir,
            resume=resume,
            seed=spec.seed,
            league=league,
            device="cpu",
        )
        return Trainer(learner, None)
    maps = [load_map(m) for m in config.maps]
    if spec.algo == "a3c":
        preset = a3c.PRESETS["tron"].config
        factory = PoolEnvFactory(config.maps, preset.envs_per_worker, spec.seed)
        if resume:
            learner = a3c.A3C.load(checkpoint, env=factory)
        else:
            a3c_config = dataclasses.replace(preset, log_every=callback_every(config))
            learner = a3c.A3C(factory, a3c_config, seed=spec.seed)
            learner.env_id, learner.suite = env_id, "tron"
        return Trainer(learner, None)
    if spec.algo == "dqn":
        preset_dqn = dqn.PRESETS["tron"]
        env = make_league_env(maps, preset_dqn.num_envs, pool_league(), seed=spec.seed)
        if resume:
            learner = dqn.DQN.load(checkpoint, env=env, device="cpu")
        else:
            dqn_config = dataclasses.replace(
                preset_dqn.config,
                exploration_steps=min(preset_dqn.config.exploration_steps, config.steps // 10),
                log_every=callback_every(config),
            )
            learner = dqn.DQN(env, dqn_config, seed=spec.seed, device="cpu")
            learner.env_id, learner.suite = env_id, "tron"
    else:
        preset_ac = TRON_PRESETS[spec.algo]
        env = make_league_env(maps, preset_ac.num_envs, pool_league(), seed=spec.seed)
        cls = typing.cast(type[ActorCriticLearner], learner_class(spec.algo))
        vec = ensure_episode_statistics(env)
        if resume:
            learner = cls.load(checkpoint, env=vec, device="cpu", policy=tron_policy)
        else:
            learner = cls(
                vec,
                apply_overrides(preset_ac.config, {}),
                policy=tron_policy,
                seed=spec.seed,
                device="cpu",
            )
            learner.env_id, learner.suite = env_id, "tron"
    if resume and (run_dir / LEAGUE_NAME).exists():
        env.league.load(run_dir / LEAGUE_NAME)
    return Trainer(learner, env.league)


# ---------------------------------------------------------------------------------------------
# Training a run


def cpu_seconds(live_pids: Sequence[int] = ()) -> float:
    """CPU time (user + system) of this process, its reaped children, and ``live_pids``.

    Live children are read from ``/proc/PID/stat`` (Linux): their time reaches ``os.times()`` only
    once they are reaped, and A3C's workers run until the end of ``learn``.
    """
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in live_pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        except OSError:
            continue  # reaped: counted in children_*
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
    return total


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/.lock`` (an exclusive ``flock``) for the duration.

    Raises:
        RuntimeError: another process holds it.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise RuntimeError(
                f"{run_dir} is in use by process {f.read().strip() or '?'}"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _freeze(
    run_dir: Path, step: int, trainer: Trainer, env_steps: int, wall_s: float, cpu_s: float
) -> None:
    import torch

    from acktr.training import atomic_write

    state = {k: v.detach().clone().cpu() for k, v in trainer.net().state_dict().items()}
    payload = {
        "step": step,
        "obs_shape": list(trainer.obs_shape()),
        "env_steps": env_steps,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "model": state,
    }
    atomic_write(run_dir / "evals" / f"{point_name(step)}.pt", lambda tmp: torch.save(payload, tmp))


def train_run(spec: RunSpec, config: ExperimentConfig) -> None:
    """Train ``spec`` to the budget, freezing its network at every evaluation point (resumable)."""
    from acktr.training import CHECKPOINT_NAME, RunLogger, read_checkpoint

    run_dir = spec.dir
    (run_dir / "evals").mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / CHECKPOINT_NAME
    points = config.points
    frozen = frozen_points(run_dir)
    resume = checkpoint.exists()
    base_wall = base_cpu = 0.0
    if resume:
        at = read_checkpoint(checkpoint, algo=spec.algo).num_timesteps
        # Checkpoints are written right after a network is frozen, in the same callback, so the
        # frozen point with the checkpoint's step count holds the run's time up to it.
        matching = [m for m in frozen.values() if m["env_steps"] == at]
        if not matching:
            raise RuntimeError(f"{checkpoint} at step {at} has no frozen network beside it")
        base_wall, base_cpu = float(matching[0]["wall_s"]), float(matching[0]["cpu_s"])
        # Points frozen after the checkpoint (a kill between the two writes) are redone.
        frozen = {s: m for s, m in frozen.items() if m["env_steps"] <= at}
        if at >= config.steps and config.steps in frozen:
            return
        log.info("%s: resuming at step %d (%.0f s of training so far)", spec.name, at, base_wall)
    trainer = build_trainer(spec, config, resume)
    learner = trainer.learner
    logger = RunLogger(run_dir, learner.num_timesteps if resume else None, tensorboard=False)
    pending = [p for p in points if p not in frozen]
    parent = os.getppid()
    wall0, cpu0 = time.perf_counter(), cpu_seconds()

    def at_point(lrn: Any) -> None:
        steps = lrn.num_timesteps
        if not pending or steps < pending[0]:
            return
        if steps == 0:
            wall = cpu = 0.0
        else:
            wall = base_wall + time.perf_counter() - wall0
            cpu = base_cpu + cpu_seconds(trainer.worker_pids()) - cpu0
        while pending and steps >= pending[0]:
            _freeze(run_dir, pending.pop(0), trainer, steps, wall, cpu)
        trainer.save(run_dir)

    def callback(lrn: Any, metrics: Mapping[str, float]) -> bool | None:
        league = trainer.league.metrics() if trainer.league is not None else {}
        logger.log(lrn.num_timesteps, {**metrics, **league})
        at_point(lrn)
        # A driver killed with SIGKILL leaves this process to init: stop, do not run on alone.
        return False if os.getppid() != parent else None

    try:
        if 0 in pending:
            at_point(learner)
        learner.learn(config.steps, callback=callback)
        at_point(learner)
    finally:
        logger.close()
    if pending:
        raise RuntimeError(f"{spec.name}: training stopped at {learner.num_timesteps} steps")


# ---------------------------------------------------------------------------------------------
# Evaluating a run


def evaluate_run(spec: RunSpec, config: ExperimentConfig) -> None:
    """Score every frozen network of ``spec`` that has no scores yet."""
    from acktr.training import atomic_write_text
    from arena.match import play_match
    from tron.maps import load_map

    maps = [load_map(m) for m in config.maps]
    evals = spec.dir / "evals"
    done = scored_points(spec.dir)
    for step, meta in sorted(frozen_points(spec.dir).items()):
        if step in done:
            continue
        agent = policy_agent(evals / f"{point_name(step)}.pt")
        cpu0 = time.process_time()
        results: dict[str, dict[str, int]] = {}
        for spec_b in config.opponents:
            match = play_match(agent, spec_b, maps, config.games, seed=0)
            wins, losses = match.wins
            results[spec_b] = {"wins": wins, "draws": match.draws, "losses": losses}
        record = {
            **meta,
            "eval_cpu_s": time.process_time() - cpu0,
            "games": config.games,
            "results": results,
        }
        atomic_write_text(evals / f"{point_name(step)}.json", json.dumps(record, indent=1) + "\n")
        log.info(
            "%s at %d steps: ladder %.3f, scripted %.3f",
            spec.name,
            step,
            mean_score(results, config.ladder),
            mean_score(results, config.scripted) if config.scripted else math.nan,
        )


def policy_agent(path: Path) -> Any:
    """The greedy agent of a frozen network, encoding boards as its training env did.

    Every arm goes through the same agent (``PolicyAgent``: the board at the training size, the
    arg-max of the logits), so evaluation differs in nothing but the weights.
    """
    import gymnasium as gym
    import numpy as np
    import torch

    from agents.networks import GreedyPolicy
    from agents.neural import PolicyAgent, TronNet

    data = torch.load(path, map_location="cpu", weights_only=True)
    net = TronNet.from_state_dict(data["model"]).eval()
    obs_shape = (int(data["obs_shape"][0]), int(data["obs_shape"][1]))
    policy = GreedyPolicy(
        model=net,
        observation_space=gym.spaces.Box(0, 255, obs_shape, dtype=np.uint8),
        action_space=gym.spaces.Discrete(4),
        device=torch.device("cpu"),
        scores=lambda out: out[0],
    )
    return PolicyAgent(policy, obs_shape, name=path.parent.parent.name)


def mean_score(results: Mapping[str, Mapping[str, int]], opponents: Sequence[str]) -> float:
    """Mean over ``opponents`` of the score (wins + draws / 2) / games against each."""
    scores = []
    for spec in opponents:
        r = results[spec]
        scores.append((r["wins"] + 0.5 * r["draws"]) / (r["wins"] + r["draws"] + r["losses"]))
    return statistics.fmean(scores)


# ---------------------------------------------------------------------------------------------
# Driving the runs


def check_config(config: ExperimentConfig, out: Path) -> ExperimentConfig:
    """Write ``out/experiment.json``, or check that the experiment there has the same settings.

    Returns:
        the experiment's settings: ``config`` with the arms and seeds of earlier invocations.

    Raises:
        ValueError: ``out`` holds an experiment with other settings (beyond more arms or seeds).
    """
    from acktr.training import atomic_write_text

    path = out / "experiment.json"
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path} is not readable: {e}") from None
        if not isinstance(stored, dict) or stored.get("format") != EXPERIMENT_FORMAT:
            raise ValueError(f"{path} is not an experiment's settings file")
        mine = json.loads(json.dumps(config.to_json()))  # tuples as the file has them: lists
        changed = [
            k for k in mine if k not in _GROWABLE and k != "format" and stored.get(k) != mine[k]
        ]
        if changed:
            was = ", ".join(f"{k}={stored.get(k)}" for k in changed)
            raise ValueError(
                f"{out} holds an experiment with {was}; pass the same settings to resume it, or "
                "another output directory"
            )
        grown = ExperimentConfig.from_json(stored)
        config = dataclasses.replace(
            config,
            arms=tuple(dict.fromkeys(grown.arms + config.arms)),
            seeds=max(grown.seeds, config.seeds),
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(config.to_json(), indent=1) + "\n")
    return config


def _child_main(spec: RunSpec, config_json: dict[str, Any], threads: int) -> None:
    """A run's process: train to the budget, then score the frozen networks."""
    import torch

    config = ExperimentConfig.from_json(config_json)
    spec.dir.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter(f"%(asctime)s [{spec.name}] %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.StreamHandler(), logging.FileHandler(spec.dir / "train.log")):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    torch.set_num_threads(threads)
    try:
        with run_lock(spec.dir):
            train_run(spec, config)
            evaluate_run(spec, config)
    except BaseException:
        log.exception("%s failed", spec.name)
        raise


def run_experiment(
    config: ExperimentConfig, out: str | os.PathLike[str], *, jobs: int = 1, threads: int = 1
) -> list[str]:
    """Run (or continue) every unfinished run, ``jobs`` processes at a time.

    Returns:
        the names of runs that failed (their ``train.log`` says why); the others go on regardless.

    Raises:
        ValueError: bad settings, or ``out`` holds an experiment with other settings.
    """
    out = Path(out)
    check_config(config, out)
    todo = [s for s in run_specs(config, out) if not run_finished(s, config)]
    total = config.seeds * len(config.arms)
    log.info("%d of %d runs to do in %s", len(todo), total, out)
    ctx = mp.get_context("spawn")
    running: dict[str, tuple[Any, float]] = {}
    failed: list[str] = []
    try:
        while todo or running:
            while todo and len(running) < jobs:
                spec = todo.pop(0)
                process = ctx.Process(
                    target=_child_main,
                    args=(spec, config.to_json(), threads),
                    name=f"experiment-{spec.name}",
                )
                process.start()
                running[spec.name] = (process, time.perf_counter())
                log.info("started %s (pid %d)", spec.name, process.pid)
            time.sleep(0.2)
            for name, (process, started) in list(running.items()):
                if process.exitcode is None:
                    continue
                del running[name]
                process.join()
                minutes = (time.perf_counter() - started) / 60
                if process.exitcode == 0:
                    log.info("finished %s in %.1f min", name, minutes)
                else:
                    failed.append(name)
                    log.error(
                        "%s failed (exit code %d) after %.1f min: see %s",
                        name,
                        process.exitcode,
                        minutes,
                        Path(out) / "runs" / name / "train.log",
                    )
    finally:
        for process, _ in running.values():
            process.terminate()
        for process, _ in running.values():
            process.join()
    return failed


# ---------------------------------------------------------------------------------------------
# The report

#: Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (``df >= 1``)."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    # Cornish-Fisher expansion: within 0.001 of the exact quantile beyond 30 degrees of freedom.
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def ci_over_seeds(values: Sequence[float]) -> float:
    """Half-width of the 95 % t-interval of the mean of ``values`` (NaN for fewer than two)."""
    if len(values) < 2:
        return math.nan
    return t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def ci_over_games(wins: int, draws: int, losses: int) -> float:
    """Half-width of the 95 % normal interval of the mean points per game (1, 1/2, 0).

    Treats the games as independent draws; it leaves out the variation between seeds.
    """
    n = wins + draws + losses
    if n < 2:
        return math.nan
    p = (wins + 0.5 * draws) / n
    var = (wins * (1 - p) ** 2 + draws * (0.5 - p) ** 2 + losses * p**2) / (n - 1)
    return 1.959964 * math.sqrt(var / n)


@dataclass(frozen=True)
class Point:
    """One evaluated point of one run (a row of ``results.csv``)."""

    arm: str
    seed: int
    step: int
    env_steps: int
    wall_s: float
    cpu_s: float
    results: dict[str, dict[str, int]]

    def score(self, opponents: Sequence[str]) -> float:
        return mean_score(self.results, opponents) if opponents else math.nan

    def totals(self, opponents: Sequence[str]) -> tuple[int, int, int]:
        """Wins, draws and losses summed over ``opponents``."""
        rows = [self.results[o] for o in opponents]
        return (
            sum(r["wins"] for r in rows),
            sum(r["draws"] for r in rows),
            sum(r["losses"] for r in rows),
        )


def collect(config: ExperimentConfig, out: Path) -> list[Point]:
    """Every scored point of every run of the experiment, by arm, seed and step."""
    points = []
    for spec in run_specs(config, out):
        if not spec.dir.exists():
            continue
        for step, data in sorted(scored_points(spec.dir).items()):
            points.append(
                Point(
                    spec.arm,
                    spec.seed,
                    step,
                    int(data["env_steps"]),
                    float(data["wall_s"]),
                    float(data["cpu_s"]),
                    {k: dict(v) for k, v in data["results"].items()},
                )
            )
    return points


CSV_COLUMNS = (
    "arm",
    "algo",
    "opponents",
    "seed",
    "step",
    "env_steps",
    "wall_s",
    "cpu_s",
    "ladder_score",
    "ladder_wins",
    "ladder_draws",
    "ladder_losses",
    "scripted_score",
)


def results_csv(config: ExperimentConfig, points: Sequence[Point]) -> str:
    """``results.csv``: ``CSV_COLUMNS``, then the score against each opponent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *config.opponents])
    for p in points:
        algo, opponents = ARMS[p.arm]
        w, d, lost = p.totals(config.ladder)
        writer.writerow(
            [
                p.arm,
                algo,
                opponents,
                p.seed,
                p.step,
                p.env_steps,
                f"{p.wall_s:.1f}",
                f"{p.cpu_s:.1f}",
                f"{p.score(config.ladder):.4f}",
                w,
                d,
                lost,
                f"{p.score(config.scripted):.4f}" if config.scripted else "",
                *(f"{p.score([o]):.4f}" for o in config.opponents),
            ]
        )
    return buffer.getvalue()


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}"


def _ci(mean: float, half: float) -> str:
    if math.isnan(half):
        return f"{_pct(mean)} %"
    return f"{_pct(mean)} % [{_pct(max(0.0, mean - half))}, {_pct(min(1.0, mean + half))}]"


def results_table(config: ExperimentConfig, points: Sequence[Point]) -> str:
    """``results.md``: the scores at the last point each run reached, and over training."""
    arms = [a for a in config.arms if any(p.arm == a for p in points)]
    lines = [
        f"Budget {config.steps:,} env steps per run, seeds 0-{config.seeds - 1}, maps "
        f"{', '.join(config.maps)}; {config.games} games per opponent per point. Score = "
        "(wins + draws / 2) / games. Ladder: mean over "
        f"{', '.join(config.ladder)}. 95 % intervals: *over seeds* is Student's t on the "
        "per-seed scores (the spread between training runs); *over games* pools every game of "
        "every seed and treats them as independent (it leaves the seed-to-seed spread out).",
        "",
        "| arm | trained against | seeds | steps | wall time / run (min) | CPU time / run (min) "
        "| ladder score, 95 % CI over seeds | ladder W-D-L, 95 % CI over games "
        "| scripted bots, 95 % CI over seeds |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    finals: dict[str, list[Point]] = {}
    for arm in arms:
        mine = [p for p in points if p.arm == arm]
        last = max(p.step for p in mine)
        final = [p for p in mine if p.step == last]
        finals[arm] = final
        ladder = [p.score(config.ladder) for p in final]
        w, d, lost = (sum(t) for t in zip(*(p.totals(config.ladder) for p in final), strict=True))
        pooled = (w + 0.5 * d) / (w + d + lost)
        scripted = [p.score(config.scripted) for p in final] if config.scripted else []
        lines.append(
            f"| {arm} | {'fixed pool' if ARMS[arm][1] == 'pool' else 'self-play league'} "
            f"| {len(final)} | {last:,} "
            f"| {statistics.fmean(p.wall_s for p in final) / 60:.1f} "
            f"({min(p.wall_s for p in final) / 60:.1f}-{max(p.wall_s for p in final) / 60:.1f}) "
            f"| {statistics.fmean(p.cpu_s for p in final) / 60:.1f} "
            f"| {_ci(statistics.fmean(ladder), ci_over_seeds(ladder))} "
            f"| {w}-{d}-{lost}: {_ci(pooled, ci_over_games(w, d, lost))} "
            f"| {_ci(statistics.fmean(scripted), ci_over_seeds(scripted)) if scripted else '-'} |"
        )
    lines += [
        "",
        "Score against each opponent at the last point (mean over seeds, %):",
        "",
        "| arm | " + " | ".join(config.opponents) + " |",
        "|---|" + "---:|" * len(config.opponents),
    ]
    for arm, final in finals.items():
        cells = [_pct(statistics.fmean(p.score([o]) for p in final)) for o in config.opponents]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    steps = sorted({p.step for p in points})
    lines += [
        "",
        "Ladder score over training (mean over the seeds evaluated at that step, %):",
        "",
        "| arm | " + " | ".join(f"{s:,}" for s in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    for arm in arms:
        cells = []
        for s in steps:
            at = [p.score(config.ladder) for p in points if p.arm == arm and p.step == s]
            cells.append(_pct(statistics.fmean(at)) if at else "")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def draw_curves(config: ExperimentConfig, points: Sequence[Point], path: Path) -> None:
    """``curves.png``: ladder and scripted-bot scores against steps, wall time and CPU time."""
    import matplotlib

    from acktr.training import atomic_write

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [("ladder", config.ladder)] + (
        [("scripted bots", config.scripted)] if config.scripted else []
    )
    xs = [
        ("environment steps", lambda p: float(p.step)),
        ("training wall time (min)", lambda p: p.wall_s / 60),
        ("training CPU time (min)", lambda p: p.cpu_s / 60),
    ]
    fig = Figure(figsize=(15, 4.2 * len(rows)), dpi=100)
    axes = fig.subplots(len(rows), len(xs), squeeze=False)
    arms = [a for a in config.arms if any(p.arm == a for p in points)]
    for r, (title, opponents) in enumerate(rows):
        for c, (xlabel, x_of) in enumerate(xs):
            ax = axes[r][c]
            for k, arm in enumerate(arms):
                steps = sorted({p.step for p in points if p.arm == arm})
                x, mean, low, high = [], [], [], []
                for s in steps:
                    at = [p for p in points if p.arm == arm and p.step == s]
                    scores = [p.score(opponents) for p in at]
                    x.append(statistics.fmean(x_of(p) for p in at))
                    mean.append(statistics.fmean(scores))
                    low.append(min(scores))
                    high.append(max(scores))
                seeds = len({p.seed for p in points if p.arm == arm})
                ax.plot(x, mean, color=f"C{k}", label=f"{arm} ({seeds} seeds)", linewidth=1.6)
                ax.fill_between(x, low, high, color=f"C{k}", alpha=0.18, linewidth=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"score vs {title}")
            # Low scores stay readable: the axis ends a little above the best seed, at 0.25 or more.
            best = max((p.score(opponents) for p in points), default=1.0)
            ax.set_ylim(-0.01, min(1.01, max(0.25, best + 0.05)))
            ax.grid(True, alpha=0.3)
            if r == 0 and c == 0:
                ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(
        f"Tron: score (wins + draws/2) vs the {title if len(rows) == 1 else 'ladder and scripted bots'}"
        f", mean over seeds, band: lowest to highest seed ({config.steps:,} steps per run)"
    )
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def report(config: ExperimentConfig, out: str | os.PathLike[str]) -> list[Point]:
    """Write ``results.csv``, ``results.md`` and ``curves.png`` from the scored points in ``out``.

    Raises:
        ValueError: no run has a scored point yet.
    """
    from acktr.training import atomic_write_text

    out = Path(out)
    points = collect(config, out)
    if not points:
        raise ValueError(f"no evaluated runs in {out} yet")
    atomic_write_text(out / "results.csv", results_csv(config, points))
    atomic_write_text(out / "results.md", results_table(config, points))
    draw_curves(config, points, out / "curves.png")
    return points


def read_config(out: str | os.PathLike[str]) -> ExperimentConfig:
    """The settings stored in ``out/experiment.json``.

    Raises:
        ValueError: none there, or not readable.
    """
    path = Path(out) / "experiment.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"no experiment in {out} ({e})") from None
    if not isinstance(data, dict) or data.get("format") != EXPERIMENT_FORMAT:
        raise ValueError(f"{path} is not an experiment's settings file")
    return ExperimentConfig.from_json(data)
