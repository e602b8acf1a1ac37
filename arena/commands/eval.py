"""``tron eval PATH --env ENV_ID``: the mean return of a trained learner's checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

from arena.cli import CommandError
from arena.commands.train import load_plugins, positive_int


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint of tron train on an env",
        description=(
            "Load PATH (a checkpoint file, or a run directory holding checkpoint.pt) with whichever "
            "learner wrote it and play K episodes of ENV_ID with its greedy policy (--stochastic "
            "samples instead). Atari returns are game scores (unclipped)."
        ),
    )
    p.add_argument("path", metavar="PATH", help="checkpoint file or run directory")
    p.add_argument("--env", required=True, metavar="ENV_ID", help="environment id")
    p.add_argument("--episodes", type=positive_int, default=10, metavar="K", help="default 10")
    p.add_argument(
        "--envs", type=positive_int, metavar="N", help="parallel envs (default min(K, 8))"
    )
    p.add_argument("--seed", type=int, default=12345, help="env reset seed (default 12345)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from acktr.envs import make_vec_env
    from acktr.training import CheckpointError, evaluate, load_learner

    load_plugins()
    torch.set_num_threads(1)
    try:
        learner = load_learner(args.path, device=args.device)
        env = make_vec_env(args.env, args.envs or min(args.episodes, 8))
    except CheckpointError as e:
        raise CommandError(str(e)) from None
    except ValueError as e:
        raise CommandError(str(e).splitlines()[0]) from None
    try:
        returns = evaluate(
            learner, env, args.episodes, deterministic=not args.stochastic, seed=args.seed
        )
    except ValueError as e:
        # A checkpoint trained on other spaces than --env's fails in predict.
        raise CommandError(f"cannot play {args.env} with {args.path}: {e}") from None
    finally:
        env.close()
    result = {
        "checkpoint": str(args.path),
        "algo": learner.algo,
        "num_timesteps": learner.num_timesteps,
        "env_id": args.env,
        "deterministic": not args.stochastic,
        "episodes": len(returns),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "min_return": float(np.min(returns)),
        "max_return": float(np.max(returns)),
        "returns": returns,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.env}: mean return {result['mean_return']:.4g} ± {result['std_return']:.3g} "
            f"over {len(returns)} episodes ({learner.algo}, {learner.num_timesteps} steps)"
        )
    return 0
