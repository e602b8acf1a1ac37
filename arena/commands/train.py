"""``tron train ALGO --env ENV_ID --steps N``: train a registered learner, with logs and checkpoints.

Learners are found through ``acktr.training``'s registry and env ids through ``acktr.envs``
(Atari, MuJoCo, any gymnasium id, and prefixes registered with ``register_env_factory``). The
modules in ``PLUGIN_MODULES`` are imported first, so that a learner or env factory defined there
(``@register_learner("dqn")`` in ``agents/dqn.py``, the self-play env in ``arena/selfplay.py``) is
available by name; one that does not exist (yet) is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from arena.cli import CommandError

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
        "--envs", type=positive_int, metavar="K", help="parallel envs (default: the preset's)"
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
    p.set_defaults(func=run)


def _read_run_info(run_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(learner: Any) -> str:
    info = learner.describe()
    head = (
        f"{info.get('algo')} on {info.get('env_id')} (preset {info.get('preset')}), "
        f"{info.get('num_envs')} envs, seed {info.get('seed')}, device {info.get('device')}, "
        f"{info.get('parameters')} parameters"
    )
    skip = {"algo", "env_id", "preset", "num_envs", "seed", "device", "parameters"}
    rows = [f"  {k:<22} {v}" for k, v in info.items() if k not in skip]
    return "\n".join([head, *rows])


def run(args: argparse.Namespace) -> int:
    import torch

    from acktr.envs import make_vec_env
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
    checkpoint = out / CHECKPOINT_NAME
    settings = parse_settings(args.set)
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
            info = _read_run_info(out)
            env_id = info.get("env_id") or args.env
            if env_id != args.env:
                raise CommandError(f"{out} trains on {env_id}, not {args.env}")
            num_envs = int(info.get("num_envs") or args.envs or 1)
            if args.envs is not None and args.envs != num_envs:
                raise CommandError(f"{out} runs {num_envs} envs; --envs cannot change that")
            learner = selfplay_learner(
                args.algo, env_id, run_dir=out, resume=True, num_envs=num_envs, device=args.device
            ) or cls.load(checkpoint, env=make_vec_env(env_id, num_envs), device=args.device)
            print(f"resuming {out} at step {meta.num_timesteps}", file=sys.stderr)
        else:
            if args.resume:
                print(f"no checkpoint in {out}: starting a new run", file=sys.stderr)
            learner = selfplay_learner(
                args.algo,
                args.env,
                run_dir=out,
                resume=False,
                seed=args.seed,
                num_envs=args.envs,
                overrides=settings,
                device=args.device,
            ) or cls.for_env(
                args.env,
                seed=args.seed,
                device=args.device,
                num_envs=args.envs,
                overrides=settings,
            )
    except CheckpointError as e:
        raise CommandError(str(e)) from None
    except ValueError as e:
        raise CommandError(str(e).splitlines()[0]) from None
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
    )
    print(f"{out}: {learner.num_timesteps} steps, checkpoint {checkpoint}", file=sys.stderr)
    return 0
