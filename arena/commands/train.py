"""``tron train ALGO --env ENV_ID --steps N``: train a registered learner, with logs and checkpoints.

Learners are found through ``acktr.training``'s registry and env ids through ``acktr.envs``
(Atari, MuJoCo, any gymnasium id, and prefixes registered with ``register_env_factory``). The
modules in ``PLUGIN_MODULES`` are imported first, so that a learner or env factory defined there
(``@register_learner("dqn")`` in ``agents/dqn.py``, the self-play env in ``arena/selfplay.py``) is
available by name; one that does not exist (yet) is skipped.

Data-parallel ACKTR and A2C (``acktr.distributed``): under torchrun every rank runs this command
(``torchrun --nproc_per_node=N $(which tron) train ...``); ``--nprocs N`` starts N ranks on this
machine through torch's elastic launcher, the engine of ``torchrun --standalone``. The run's
``--envs`` are split evenly among the ranks. Rank 0 alone reads and writes the run directory: it
sends what a resumed run needs to the other ranks, so ranks on other machines need no shared
filesystem.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import traceback
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.cli import CommandError

if TYPE_CHECKING:
    from acktr.acktr import ActorCriticLearner
    from acktr.distributed import World

#: Modules whose import registers learners or env factories.
PLUGIN_MODULES: tuple[str, ...] = ("acktr.acktr", "agents.dqn", "agents.a3c", "arena.selfplay")

DEFAULT_CHECKPOINT_EVERY = 100_000


def load_plugins() -> None:
    """Import ``PLUGIN_MODULES``, skipping those that are not part of this installation."""
    for name in PLUGIN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (underscores allowed: 2_000_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def parse_settings(items: list[str]) -> dict[str, str]:
    """``["lr=0.1", "hidden=64,64"]`` -> ``{"lr": "0.1", "hidden": "64,64"}``."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--set takes KEY=VALUE, got {item!r}")
        settings[key.strip()] = value.strip()
    return settings


def run_slug(algo: str, env_id: str, seed: int) -> str:
    """The default run directory name: ``acktr-PongNoFrameskip-v4-s0``."""
    return f"{algo}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', env_id)}-s{seed}"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train ACKTR, A2C (or another registered learner) on a gymnasium env",
        description=(
            "Train a learner on ENV_ID (an Atari id such as PongNoFrameskip-v4, a MuJoCo v5 id such "
            "as Hopper-v5, any gymnasium id, or a registered prefix) with the hyperparameter preset "
            "of its suite, printed at start. Logs go to OUT/progress.csv and OUT/tb (TensorBoard); "
            "OUT/checkpoint.pt is written atomically every --checkpoint-every steps and at the end, "
            "so --resume after a crash or kill loses at most one interval."
        ),
    )
    p.add_argument("algo", metavar="ALGO", help="learner: acktr, a2c (dqn, a3c when installed)")
    p.add_argument("--env", required=True, metavar="ENV_ID", help="environment id")
    p.add_argument(
        "--steps", required=True, type=positive_int, metavar="N", help="env steps to reach"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--envs",
        type=positive_int,
        metavar="K",
        help="parallel envs, in all ranks together (default: the preset's)",
    )
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/ALGO-ENV-sSEED)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset hyperparameter (repeatable): --set lr=0.1 --set hidden=128,128",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help=f"env steps between checkpoints (default min({DEFAULT_CHECKPOINT_EVERY}, steps/10))",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine more threads ran slower)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="CSV logs only")
    p.add_argument(
        "--nprocs",
        type=positive_int,
        metavar="N",
        help="train data-parallel in N processes on this machine, each with --envs/N of the envs "
        "(acktr and a2c; across machines start the ranks with torchrun instead)",
    )
    p.add_argument(
        "--dist-timeout",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="data-parallel runs: seconds a rank waits for the others before it gives up with an "
        "error (default 300)",
    )
    p.set_defaults(func=run)


def _read_run_info(run_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(learner: Any) -> str:
    info = learner.describe()
    ranks = int(info.get("ranks") or 1)
    head = (
        f"{info.get('algo')} on {info.get('env_id')} (preset {info.get('preset')}), "
        f"{info.get('num_envs')} envs{f' on {ranks} ranks' if ranks > 1 else ''}, "
        f"seed {info.get('seed')}, device {info.get('device')}, "
        f"{info.get('parameters')} parameters"
    )
    skip = {"algo", "env_id", "preset", "num_envs", "ranks", "seed", "device", "parameters"}
    rows = [f"  {k:<22} {v}" for k, v in info.items() if k not in skip]
    return "\n".join([head, *rows])


def run(args: argparse.Namespace) -> int:
    from acktr.distributed import LaunchError, launch, launched_by_torchrun

    if args.nprocs is not None:
        _data_parallel_class(args.algo)
    if args.nprocs is not None and args.nprocs > 1 and not launched_by_torchrun():
        try:
            return launch(args.nprocs, _rank_main, [args])
        except LaunchError as e:
            raise CommandError(str(e)) from None
    return _run_rank(args)


def _rank_main(args: argparse.Namespace) -> int:
    """A rank started by ``--nprocs``: the command with ``tron``'s handling of errors (one line,
    status 2; a traceback only for a bug)."""
    try:
        return _run_rank(args)
    except CommandError as e:
        print(f"tron train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        return 1


def _data_parallel_class(algo: str) -> type[ActorCriticLearner]:
    """The learner class of ``algo`` if it trains data-parallel, else a ``CommandError``."""
    from acktr.acktr import ActorCriticLearner
    from acktr.training import learner_class

    load_plugins()
    try:
        cls = learner_class(algo)
    except KeyError as e:
        raise CommandError(e.args[0]) from None
    if not (isinstance(cls, type) and issubclass(cls, ActorCriticLearner)):
        raise CommandError(
            f"{algo} does not train data-parallel; --nprocs and torchrun work with acktr and a2c"
        )
    return cls


def _run_rank(args: argparse.Namespace) -> int:
    """The command in this process: a plain run, or one rank of a data-parallel run."""
    from acktr.distributed import (
        DistributedError,
        World,
        init_world,
        interrupt_once,
        launched_by_torchrun,
        leave_lost_group,
    )

    world = World()
    if launched_by_torchrun():
        interrupt_once()
        size = int(os.environ["WORLD_SIZE"])
        try:
            if args.nprocs is not None and args.nprocs != size:
                raise CommandError(
                    f"--nprocs {args.nprocs} but torchrun started {size} ranks; under torchrun "
                    "leave --nprocs out"
                )
            if size > 1:
                _data_parallel_class(args.algo)
        except CommandError:
            if os.environ["RANK"] != "0":
                raise SystemExit(2) from None  # the same error on every rank: rank 0 says it
            raise
        try:
            world = init_world(args.device, args.dist_timeout)
        except DistributedError as e:
            raise CommandError(str(e)) from None
    if world.size > 1:
        logging.basicConfig(format=f"rank {world.rank}: %(levelname)s %(name)s: %(message)s")
    try:
        return _train(args, world)
    except DistributedError as e:
        # The run's files were closed on the way up; only the broken group is left.
        leave_lost_group(f"tron train: error: {e}")
    except (CommandError, KeyboardInterrupt) as e:
        if world.is_main:
            raise
        # Every rank met the same error or interrupt; rank 0 reports it.
        raise SystemExit(2 if isinstance(e, CommandError) else 130) from None
    finally:
        world.close()


@contextlib.contextmanager
def _run_dir_as_rank_0_sees_it(out: Path, world: World) -> Iterator[Path]:
    """Where this rank reads the run directory: ``out`` on rank 0; elsewhere a private copy of the
    files a resumed run reads from it (checkpoint, league, run.json), sent by rank 0."""
    from acktr.training import CHECKPOINT_NAME
    from arena.selfplay import LEAGUE_NAME

    if world.size == 1:
        yield out
        return
    names = (CHECKPOINT_NAME, LEAGUE_NAME, "run.json")
    files: dict[str, bytes] | None = None
    if world.is_main:
        files = {n: (out / n).read_bytes() for n in names if (out / n).is_file()}
    files = world.broadcast_object(files)
    if world.is_main:
        yield out
        return
    assert files is not None
    with tempfile.TemporaryDirectory(prefix=f"tron-rank{world.rank}-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        yield Path(tmp)


def _envs_per_rank(total: int, world: World, hint: str) -> int:
    if total % world.size:
        raise CommandError(f"{total} envs cannot be split evenly among {world.size} ranks; {hint}")
    return total // world.size


def _train(args: argparse.Namespace, world: World) -> int:
    import torch

    from acktr.acktr import ActorCriticLearner
    from acktr.envs import env_suite, make_vec_env
    from acktr.training import CHECKPOINT_NAME, CheckpointError, learner_class, read_checkpoint
    from acktr.training import train as train_run
    from arena.selfplay import selfplay_learner

    load_plugins()
    try:
        cls = learner_class(args.algo)
    except KeyError as e:
        raise CommandError(e.args[0]) from None
    torch.set_num_threads(args.threads)
    out = Path(args.out or Path("runs") / run_slug(args.algo, args.env, args.seed))
    settings = parse_settings(args.set)
    main = world.is_main
    with _run_dir_as_rank_0_sees_it(out, world) as source:
        checkpoint = source / CHECKPOINT_NAME
        resumed = checkpoint.exists()
        try:
            if resumed:
                if not args.resume:
                    raise CommandError(
                        f"{out} already holds a run; pass --resume to continue it, or another --out"
                    )
                if settings:
                    raise CommandError("--set cannot change the settings of a resumed run")
                meta = read_checkpoint(checkpoint, algo=args.algo)
                info = _read_run_info(source)
                env_id = info.get("env_id") or args.env
                if env_id != args.env:
                    raise CommandError(f"{out} trains on {env_id}, not {args.env}")
                num_envs = int(info.get("num_envs") or args.envs or 1)
                if args.envs is not None and args.envs != num_envs:
                    raise CommandError(f"{out} runs {num_envs} envs; --envs cannot change that")
                local = _envs_per_rank(
                    num_envs, world, "resume it with a number of ranks that divides them"
                )
                learner = selfplay_learner(
                    args.algo,
                    env_id,
                    run_dir=source,
                    resume=True,
                    num_envs=local,
                    device=args.device,
                    world=world,
                ) or cls.load(checkpoint, env=make_vec_env(env_id, local), device=args.device)
                if main:
                    print(f"resuming {out} at step {meta.num_timesteps}", file=sys.stderr)
            else:
                if args.resume and main:
                    print(f"no checkpoint in {out}: starting a new run", file=sys.stderr)
                num_envs = args.envs
                if world.size > 1:
                    preset = typing.cast(type[ActorCriticLearner], cls).preset(env_suite(args.env))
                    hint = f"pass --envs with a multiple of {world.size}"
                    if args.envs is None:
                        hint += f" (the preset runs {preset.num_envs})"
                    num_envs = _envs_per_rank(args.envs or preset.num_envs, world, hint)
                learner = selfplay_learner(
                    args.algo,
                    args.env,
                    run_dir=out,
                    resume=False,
                    seed=args.seed,
                    num_envs=num_envs,
                    overrides=settings,
                    device=args.device,
                    world=world,
                ) or cls.for_env(
                    args.env,
                    seed=args.seed,
                    device=args.device,
                    num_envs=num_envs,
                    overrides=settings,
                )
        except CheckpointError as e:
            raise CommandError(str(e)) from None
        except ValueError as e:
            raise CommandError(str(e).splitlines()[0]) from None
    if world.size > 1 and isinstance(learner, ActorCriticLearner):
        learner.distribute(world)
    if main:
        print(_describe(learner), file=sys.stderr)
    every = args.checkpoint_every or max(1, min(DEFAULT_CHECKPOINT_EVERY, args.steps // 10))
    train_run(
        learner,
        args.steps,
        out,
        checkpoint_every=every,
        resumed=resumed,
        progress_bar=not args.no_progress,
        tensorboard=not args.no_tensorboard,
        run_info={"steps": args.steps, "checkpoint_every": every, "threads": args.threads},
        world=world,
    )
    if main:
        print(
            f"{out}: {learner.num_timesteps} steps, checkpoint {out / CHECKPOINT_NAME}",
            file=sys.stderr,
        )
    return 0
