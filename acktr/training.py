"""Training infrastructure shared by every learner (ACKTR and A2C here, DQN and A3C in ``agents``).

A *learner* follows the ``Learner`` protocol: the verbs RL users know (``learn``, ``predict``,
``save``, ``load``) plus ``for_env`` (build one from an env id with its preset) and ``describe``
(its hyperparameters). ``LearnerBase`` writes ``for_env``, ``preset``, ``load``'s checkpoint
handling and ``describe`` once for all four learners. ``register_learner("name")`` puts a class in the registry that
``tron train name`` dispatches through; ``load_learner(path)`` opens any registered learner's
checkpoint.

A learner calls ``callback(learner, metrics)`` after each update with namespaced metrics
(``charts/episodic_return``, ``losses/value_loss``, ...); returning ``False`` stops training.
``train`` wires a run directory around it::

    run_dir/
      checkpoint.pt   latest checkpoint, written atomically every ``checkpoint_every`` steps and
                      at the end (a run killed with kill -9 loses at most one interval)
      progress.csv    one row per update: ``step`` and the metrics
      tb/             the same metrics for TensorBoard
      run.json        algo, env, seed and hyperparameters of the run

Checkpoints hold only tensors, numbers and strings (state dicts and a JSON config, no pickled
objects) and load with ``torch.load(..., weights_only=True)``; ``read_checkpoint`` turns every way a
file can be wrong into one ``CheckpointError`` that says what the file is.
"""

from __future__ import annotations

import abc
import csv
import dataclasses
import json
import logging
import os
import pickle
import re
import tempfile
import types
import typing
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from acktr.distributed import World

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "tron-lab/learner"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"

#: Called after every update with the learner and that update's metrics; ``False`` stops training.
Callback = Callable[["Learner", Mapping[str, float]], "bool | None"]

L = TypeVar("L", bound="Learner")
C = TypeVar("C")


class Learner(Protocol):
    """What ``tron train``, ``tron eval`` and ``train`` need from a learner."""

    #: Registry name, also stored in checkpoints (``"acktr"``).
    algo: ClassVar[str]
    #: Environment steps taken so far (all sub-environments counted).
    num_timesteps: int

    def learn(
        self: L, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = False
    ) -> L:
        """Train until ``num_timesteps`` reaches ``total_timesteps`` (a target, not an increment:
        a resumed learner continues the same schedule)."""
        ...

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations (or one observation without the batch axis)."""
        ...

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint atomically."""
        ...

    @classmethod
    def load(
        cls: type[L],
        path: str | os.PathLike[str],
        env: VectorEnv | None = None,
        device: str = "auto",
    ) -> L:
        """A learner restored from ``path``; ``env`` is needed only to keep training."""
        ...

    @classmethod
    def for_env(
        cls: type[L],
        env_id: str,
        *,
        seed: int = 0,
        device: str = "auto",
        num_envs: int | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> L:
        """A learner with the preset for ``env_id``'s suite, ``overrides`` applied (strings parsed
        by field type), training on a fresh vector env of ``num_envs`` (default: the preset's)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Algorithm, preset and hyperparameters as JSON-ready values (printed at start)."""
        ...


_LEARNERS: dict[str, type[Learner]] = {}


def register_learner(name: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: make ``tron train <name>`` and ``load_learner`` know this learner."""

    def decorate(cls: type[C]) -> type[C]:
        _LEARNERS[name] = typing.cast(type[Learner], cls)
        return cls

    return decorate


def learner_class(name: str) -> type[Learner]:
    """The registered learner ``name``.

    Raises:
        KeyError: with the registered names in the message.
    """
    try:
        return _LEARNERS[name]
    except KeyError:
        raise KeyError(
            f"unknown learner {name!r}; registered: {', '.join(sorted(_LEARNERS)) or 'none'}"
        ) from None


def learner_names() -> list[str]:
    """Names of the registered learners, sorted."""
    return sorted(_LEARNERS)


# ---------------------------------------------------------------------------------------------
# Checkpoints


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; the message says why and what the file is."""


@dataclass(frozen=True)
class Checkpoint:
    """The contents of a checkpoint file."""

    algo: str
    config: dict[str, Any]  # the learner's JSON config
    num_timesteps: int
    state: dict[str, Any]  # state dicts, RNG states, other tensors and numbers


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Create ``path`` by ``write(tmp)`` on a temporary file beside it, then ``os.replace``: a
    crash mid-write leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(Path(path), write)


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    algo: str,
    config: Mapping[str, Any],
    num_timesteps: int,
    state: Mapping[str, Any],
) -> None:
    """Write a checkpoint atomically (a crash mid-write leaves the previous file intact).

    Args:
        path: destination file.
        algo: the learner's registry name.
        config: JSON-serialisable configuration (stored as a JSON string).
        num_timesteps: environment steps taken.
        state: tensors, numbers, strings and nested dicts/lists of them.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "algo": algo,
        "config": json.dumps(dict(config), sort_keys=True),
        "num_timesteps": int(num_timesteps),
        "state": dict(state),
    }
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: str | os.PathLike[str], algo: str | None = None) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (tensors are mapped to the CPU).

    Args:
        path: the file, or a run directory holding ``checkpoint.pt``.
        algo: when given, the learner the checkpoint must belong to.

    Raises:
        CheckpointError: missing, corrupted or truncated file; pickled objects or a file of another
            program; a newer format version; a checkpoint of another learner.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found is None:
            raise CheckpointError(
                f"{p} is not a readable checkpoint (corrupted or truncated?): not a torch file"
            ) from None
        raise CheckpointError(
            f"{p} holds pickled Python objects ({found.group(1)}), not a tron-lab checkpoint; "
            "refusing to unpickle it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{p} is not a readable checkpoint (corrupted or truncated?): "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{p} is a torch file but not a tron-lab learner checkpoint (a bare state dict?)"
        )
    version = payload.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{p} has checkpoint format version {version}; this program reads up to "
            f"{CHECKPOINT_VERSION} (upgrade tron-lab)"
        )
    try:
        config = json.loads(payload["config"])
        checkpoint = Checkpoint(
            algo=str(payload["algo"]),
            config=config,
            num_timesteps=int(payload["num_timesteps"]),
            state=dict(payload["state"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p} is a damaged checkpoint: bad field {e}") from None
    if algo is not None and checkpoint.algo != algo:
        raise CheckpointError(
            f"{p} is a checkpoint of {checkpoint.algo}, not {algo}; load it with the "
            f"{checkpoint.algo} learner (or load_learner)"
        )
    return checkpoint


def load_learner(
    path: str | os.PathLike[str], env: VectorEnv | None = None, device: str = "auto"
) -> Learner:
    """Load a checkpoint of any registered learner, picked by the algo stored in the file.

    Raises:
        CheckpointError: as ``read_checkpoint``, or for a learner that is not registered.
    """
    checkpoint = read_checkpoint(path)
    try:
        cls = learner_class(checkpoint.algo)
    except KeyError as e:
        raise CheckpointError(f"{path}: {e.args[0]}") from None
    return cls.load(path, env=env, device=device)


# ---------------------------------------------------------------------------------------------
# The code every learner shares

S = TypeVar("S", bound="LearnerBase")


class LearnerBase(abc.ABC):
    """Construction, checkpoints and description, written once for ACKTR, A2C, DQN and A3C.

    A subclass keeps its own hyperparameters (``config_class``), network and update, and fills in
    four hooks: ``_preset_table`` (suite -> preset with ``.config`` and ``.num_envs``), ``_setup``
    (build the networks and optimizers from the spaces and config), ``_spaces_from_checkpoint``
    and ``_load_state`` (the learner's part of a checkpoint). ``for_env``, ``preset``, the
    checkpoint's JSON part (``_checkpoint_json``), ``load``'s error handling (``_restore``) and
    ``describe``'s common keys (``_describe``) are here.
    """

    #: Registry name, also stored in checkpoints.
    algo: ClassVar[str]
    #: The hyperparameter dataclass a checkpoint's ``config`` is parsed into.
    config_class: ClassVar[type[Any]]

    config: Any
    seed: int
    env_id: str | None
    suite: str | None
    num_timesteps: int

    # -- hooks ---------------------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def _preset_table(cls) -> Mapping[str, Any]:
        """This learner's presets by suite; it has a ``classic`` one."""

    @abc.abstractmethod
    def _setup(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: Any,
        module: Any,
        seed: int,
        device: str,
    ) -> None:
        """Build the networks and optimizers; ``module`` is the custom network or factory."""

    @classmethod
    @abc.abstractmethod
    def _spaces_from_checkpoint(
        cls, meta: Mapping[str, Any], state: Mapping[str, Any]
    ) -> tuple[gym.Space, gym.Space]:
        """The observation and action spaces a checkpoint was trained on."""

    @abc.abstractmethod
    def _load_state(self, state: Mapping[str, Any]) -> None:
        """Load the tensors and counters ``save`` wrote into the freshly set-up learner."""

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def preset(cls, suite: str) -> Any:
        """The preset of this learner for ``suite`` (``classic`` for a suite without one)."""
        table = cls._preset_table()
        if suite not in table:
            log.warning("no %s preset for suite %r; using the classic-control one", cls.algo, suite)
            return table["classic"]
        return table[suite]

    @classmethod
    def for_env(
        cls: type[S],
        env_id: str,
        *,
        seed: int = 0,
        device: str = "auto",
        num_envs: int | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> S:
        """A learner with the preset of ``env_id``'s suite, ``overrides`` applied (strings parsed
        by field type), training on a fresh vector env of ``num_envs`` (default: the preset's).

        Raises:
            ValueError: unknown env id, bad override.
        """
        from acktr.envs import env_suite

        suite = env_suite(env_id)
        preset = cls.preset(suite)
        config = apply_overrides(preset.config, overrides or {})
        learner = cls._for_env(env_id, preset, config, num_envs, seed, device)
        learner.env_id, learner.suite = env_id, suite
        return learner

    @classmethod
    def _for_env(
        cls: type[S],
        env_id: str,
        preset: Any,
        config: Any,
        num_envs: int | None,
        seed: int,
        device: str,
    ) -> S:
        """``for_env``'s learner on ``make_vec_env(env_id, num_envs or preset.num_envs)``."""
        from acktr.envs import make_vec_env

        make = typing.cast(Callable[..., S], cls)
        env = make_vec_env(env_id, num_envs or preset.num_envs)
        return make(env, config, seed=seed, device=device)

    # -- checkpoints ---------------------------------------------------------------------------

    def _checkpoint_json(self) -> dict[str, Any]:
        """The JSON part of a checkpoint every learner writes (a subclass adds its own keys)."""
        return {
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "env_id": self.env_id,
            "suite": self.suite,
        }

    @classmethod
    def _restore(cls: type[S], path: str | os.PathLike[str], module: Any, device: str) -> S:
        """``load`` without the env: a learner set up from a checkpoint's config and spaces, its
        state loaded. Every way the file does not fit this learner is one ``CheckpointError``."""
        checkpoint = read_checkpoint(path, algo=cls.algo)
        meta, state = checkpoint.config, checkpoint.state
        try:
            config = config_from_dict(cls.config_class, meta["config"])
            observation_space, action_space = cls._spaces_from_checkpoint(meta, state)
            seed = int(meta["seed"])
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: damaged {cls.algo} config ({e})") from None
        learner = cls.__new__(cls)
        learner._setup(observation_space, action_space, config, module, seed, device)
        learner.env_id, learner.suite = meta.get("env_id"), meta.get("suite")
        try:
            learner._load_state(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"{path}: state does not fit the network of its config ({str(e).splitlines()[0]})"
            ) from None
        learner.num_timesteps = checkpoint.num_timesteps
        return learner

    def _describe(
        self, model: torch.nn.Module, num_envs: int | None, device: str, **extra: Any
    ) -> dict[str, Any]:
        """``describe``: algorithm, env, preset, size and every hyperparameter."""
        return {
            "algo": self.algo,
            "env_id": self.env_id,
            "preset": self.suite,
            "num_envs": num_envs,
            **extra,
            "seed": self.seed,
            "device": device,
            "parameters": sum(p.numel() for p in model.parameters()),
            **dataclasses.asdict(self.config),
        }


# ---------------------------------------------------------------------------------------------
# Configuration, devices, random state


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda") from None


def _parse_value(text: str, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _parse_value(text, arg)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        if text not in args:
            raise ValueError(f"expected one of {', '.join(map(str, args))}")
        return text
    if origin is tuple:
        return tuple(_parse_value(part, args[0]) for part in text.split(",") if part)
    if hint is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint is str:
        return text
    raise ValueError(f"cannot parse a {hint}")


def apply_overrides(config: C, overrides: Mapping[str, str]) -> C:
    """A copy of the dataclass ``config`` with fields set from strings (``{"lr": "0.1"}``).

    Values are parsed by the field's type: numbers, booleans, ``none`` for optional fields, a
    comma-separated list for tuples, one of the names of a ``Literal``.

    Raises:
        ValueError: an unknown field or a value that does not parse, naming the field.
    """
    assert dataclasses.is_dataclass(config) and not isinstance(config, type)
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in names:
            raise ValueError(f"unknown setting {key!r}; settings: {', '.join(sorted(names))}")
        try:
            changes[key] = _parse_value(text, hints[key])
        except ValueError as e:
            raise ValueError(f"bad value {text!r} for {key}: {e}") from None
    return dataclasses.replace(config, **changes)


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild the dataclass ``cls`` from its JSON form (lists back to tuples).

    Raises:
        ValueError: unknown fields.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    values = {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints[k]) is tuple else v
        for k, v in data.items()
    }
    return cls(**values)


def rng_state(np_rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The torch (CPU and CUDA) and numpy random states, in checkpoint-safe form."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if np_rng is not None:
        state["numpy"] = np_rng.bit_generator.state
    return state


def set_rng_state(state: Mapping[str, Any], np_rng: np.random.Generator | None = None) -> None:
    """Restore what ``rng_state`` captured (CUDA states only where a GPU is present)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if np_rng is not None and "numpy" in state:
        np_rng.bit_generator.state = state["numpy"]


def reset_seed(seed: int, num_timesteps: int) -> int:
    """The env reset seed of a learner that starts (or resumes) at ``num_timesteps``.

    A fresh run resets with ``seed`` itself; a resumed one with a seed that depends on where it
    resumes, so that a resume is reproducible but does not replay the opening episodes.
    """
    if num_timesteps == 0:
        return seed
    return (seed * 1_000_003 + num_timesteps) % (2**31 - 1)


# ---------------------------------------------------------------------------------------------
# Progress: episode statistics, progress bar, logs


class EpisodeWindow:
    """Returns and lengths of the most recent finished episodes (for logs and the progress bar)."""

    def __init__(self, size: int = 100) -> None:
        self.returns: deque[float] = deque(maxlen=size)
        self.lengths: deque[int] = deque(maxlen=size)
        self._new: list[tuple[float, int]] = []

    def add(self, episodes: list[tuple[float, int]]) -> None:
        for r, n in episodes:
            self.returns.append(r)
            self.lengths.append(n)
        self._new.extend(episodes)

    def mean_return(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None

    def pop_metrics(self) -> dict[str, float]:
        """``charts/`` metrics of the episodes finished since the last call (empty if none)."""
        if not self._new:
            return {}
        returns, lengths = zip(*self._new, strict=True)
        self._new = []
        return {
            "charts/episodic_return": float(np.mean(returns)),
            "charts/episodic_length": float(np.mean(lengths)),
            "charts/episodes": float(len(returns)),
        }


class ProgressBar:
    """A tqdm bar in environment steps: tqdm shows steps/s; the postfix shows recent returns."""

    def __init__(self, total: int, initial: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True
        )

    def update(self, num_timesteps: int, mean_return: float | None) -> None:
        self._bar.update(num_timesteps - self._bar.n)
        if mean_return is not None:
            self._bar.set_postfix_str(f"return(100) {mean_return:.4g}", refresh=False)

    def close(self) -> None:
        self._bar.close()


class RunLogger:
    """Metrics to ``progress.csv`` (one row per call) and TensorBoard under a run directory.

    On resume, rows and TensorBoard events past ``resume_step`` (written after the checkpoint the
    run resumes from) are dropped, so the logs continue without duplicates.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        resume_step: int | None = None,
        tensorboard: bool = True,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "progress.csv"
        self._fields: list[str] = ["step"]
        if self.csv_path.exists():
            if resume_step is None:
                self.csv_path.unlink()
            else:
                rows, fields = read_progress(self.csv_path)
                self._fields = fields or self._fields
                self._rewrite([r for r in rows if float(r["step"]) <= resume_step])
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                str(self.run_dir / "tb"),
                purge_step=None if resume_step is None else resume_step + 1,
            )

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=self._fields, restval="")
                w.writeheader()
                w.writerows(rows)

        atomic_write(self.csv_path, write)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        new = [k for k in metrics if k not in self._fields]
        if new or not self.csv_path.exists():
            # A metric seen for the first time widens the table: rewrite it with the new column.
            rows = read_progress(self.csv_path)[0] if self.csv_path.exists() else []
            self._fields += new
            self._rewrite(rows)
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self._fields, restval="").writerow(
                {"step": step, **{k: f"{v:.6g}" for k, v in metrics.items()}}
            )
        if self._writer is not None:
            for key, value in metrics.items():
                self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_progress(path: str | os.PathLike[str]) -> tuple[list[dict[str, str]], list[str]]:
    """Rows and column names of a ``progress.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return rows, list(reader.fieldnames or [])


def evaluate(
    learner: Learner, env: VectorEnv, episodes: int, *, deterministic: bool = True, seed: int = 0
) -> list[float]:
    """Returns of ``episodes`` episodes of ``learner.predict`` on ``env``.

    Each sub-environment plays a fixed share of the episodes (so short episodes are not favoured
    by whichever env finishes first). Returns come from ``RecordEpisodeStatistics``, so Atari
    returns are game scores.
    """
    from acktr.envs import ensure_episode_statistics

    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    env = ensure_episode_statistics(env)
    n = env.num_envs
    quota = np.array([(episodes + i) // n for i in range(n)])
    played = np.zeros(n, dtype=int)
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    while (played < quota).any():
        obs, _, _, _, info = env.step(learner.predict(obs, deterministic=deterministic))
        if "episode" in info:
            for i in np.flatnonzero(info["_episode"]):
                if played[i] < quota[i]:
                    returns.append(float(info["episode"]["r"][i]))
                    played[i] += 1
    return returns


# ---------------------------------------------------------------------------------------------
# A training run in a directory


def train(
    learner: Learner,
    total_timesteps: int,
    run_dir: str | os.PathLike[str],
    *,
    checkpoint_every: int,
    resumed: bool = False,
    progress_bar: bool = True,
    tensorboard: bool = True,
    run_info: Mapping[str, Any] | None = None,
    world: World | None = None,
) -> None:
    """Train ``learner`` to ``total_timesteps`` with logs and checkpoints in ``run_dir``.

    In a data-parallel run (``acktr.distributed``) every rank calls it with its ``world``: only
    rank 0 writes ``run.json`` and the logs and shows the progress bar; ``learner.save`` is called
    on every rank at the same step counts (it is collective, and rank 0 writes the checkpoint).

    Args:
        learner: a fresh learner, or one loaded from ``run_dir``'s checkpoint when ``resumed``.
        total_timesteps: the step count to reach.
        run_dir: the run directory (see the module docstring).
        checkpoint_every: environment steps between checkpoints.
        resumed: keep the logs written up to the learner's step count, drop later rows.
        progress_bar: show a tqdm bar.
        tensorboard: also write TensorBoard events.
        run_info: written to ``run.json`` with the learner's ``describe()``.
        world: this rank of a data-parallel run (default: a single process).
    """
    main = world is None or world.is_main
    run = Path(run_dir)
    checkpoint = run / CHECKPOINT_NAME
    logger = None
    if main:
        run.mkdir(parents=True, exist_ok=True)
        info = {**(run_info or {}), **learner.describe()}
        atomic_write_text(run / "run.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        logger = RunLogger(run, learner.num_timesteps if resumed else None, tensorboard)
    next_save = (learner.num_timesteps // checkpoint_every + 1) * checkpoint_every

    def on_update(lrn: Learner, metrics: Mapping[str, float]) -> None:
        nonlocal next_save
        if logger is not None:
            logger.log(lrn.num_timesteps, metrics)
        if lrn.num_timesteps >= next_save:
            lrn.save(checkpoint)
            next_save = (lrn.num_timesteps // checkpoint_every + 1) * checkpoint_every

    try:
        learner.learn(total_timesteps, callback=on_update, progress_bar=progress_bar and main)
        learner.save(checkpoint)
    finally:
        if logger is not None:
            logger.close()
