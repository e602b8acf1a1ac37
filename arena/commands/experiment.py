"""``tron experiment``: the seed's experiment, ACKTR vs A2C vs A3C vs DQN on Tron (``arena.experiment``).

Trains every arm for every seed with the same budget, opponents and maps, freezes the network at
every evaluation point, scores the frozen networks against the minimax ladder and the scripted bots,
and writes ``OUT/results.csv``, ``OUT/results.md`` and ``OUT/curves.png``. Re-running the same
command skips finished runs and resumes the others from their checkpoints.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from arena.cli import CommandError
from arena.commands.train import positive_int

DEFAULT_OUT = "runs/tron-experiment"


def register(subparsers: Any) -> None:
    from arena.experiment import ARMS, LADDER, SCRIPTED, ExperimentConfig

    defaults = ExperimentConfig()
    p = subparsers.add_parser(
        "experiment",
        help="ACKTR vs A2C vs A3C vs DQN on Tron: score against the minimax ladder over training",
        description=(
            "Train each arm (acktr, a2c, a3c, dqn against a fixed pool of opponents; "
            "acktr-selfplay with the shipped agent's league) for each seed with the same budget "
            "and maps, score the network every --eval-every steps against the minimax ladder and "
            "the scripted bots, and write OUT/results.csv, OUT/results.md and OUT/curves.png. "
            "Resumable: the same command skips finished runs and resumes unfinished ones."
        ),
    )
    p.add_argument(
        "--arms",
        default=",".join(defaults.arms),
        help=f"comma-separated arms (default: all of {', '.join(ARMS)})",
    )
    p.add_argument(
        "--seeds", type=positive_int, default=defaults.seeds, metavar="K", help="seeds 0..K-1 (3)"
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=defaults.steps,
        metavar="N",
        help=f"env steps per run (default {defaults.steps:,})",
    )
    p.add_argument(
        "--eval-every",
        type=positive_int,
        default=defaults.eval_every,
        metavar="N",
        help=f"env steps between evaluations and checkpoints (default {defaults.eval_every:,})",
    )
    p.add_argument(
        "--games",
        type=positive_int,
        default=defaults.games,
        metavar="N",
        help=(
            f"games per opponent per evaluation (default {defaults.games}: each of the 7 default "
            "maps from both seats)"
        ),
    )
    p.add_argument(
        "--maps",
        default=",".join(defaults.maps),
        help="comma-separated maps of training and evaluation (default: the self-play rotation)",
    )
    p.add_argument(
        "--ladder",
        action="append",
        metavar="SPEC",
        help=f"a ladder opponent (repeatable; default {' '.join(LADDER)})",
    )
    p.add_argument(
        "--scripted",
        action="append",
        metavar="SPEC",
        help=f"a scripted opponent scored beside the ladder (repeatable; default {' '.join(SCRIPTED)})",
    )
    p.add_argument("--no-scripted", action="store_true", help="score against the ladder only")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"default {DEFAULT_OUT}")
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="runs at a time (default 1; up to one per core)",
    )
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads per run (1)")
    p.add_argument(
        "--report", action="store_true", help="only write the results from the runs scored so far"
    )
    p.set_defaults(func=run)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    from agents.registry import SpecError, make_agent
    from arena.experiment import ExperimentConfig, read_config, report, run_experiment
    from tron.maps import MapError, load_map

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.report:
        try:
            config = read_config(args.out)
            report(config, args.out)
        except ValueError as e:
            raise CommandError(str(e)) from None
    else:
        defaults = ExperimentConfig()
        try:
            config = ExperimentConfig(
                arms=_split(args.arms),
                seeds=args.seeds,
                steps=args.steps,
                eval_every=args.eval_every,
                maps=_split(args.maps),
                ladder=tuple(args.ladder or defaults.ladder),
                scripted=() if args.no_scripted else tuple(args.scripted or defaults.scripted),
                games=args.games,
            )
            for name in config.maps:
                if load_map(name).n_players != 2:
                    raise ValueError(f"map {name!r} is not a 2-player map")
            for spec in config.opponents:
                make_agent(spec).close()
        except (ValueError, SpecError, MapError) as e:
            raise CommandError(str(e).splitlines()[0]) from None
        try:
            failed = run_experiment(config, args.out, jobs=args.jobs, threads=args.threads)
        except ValueError as e:
            raise CommandError(str(e).splitlines()[0]) from None
        try:
            report(read_config(args.out), args.out)
        except ValueError as e:
            if not failed:
                raise CommandError(str(e).splitlines()[0]) from None
        else:
            _show(args.out)
        if failed:
            raise CommandError(
                f"{len(failed)} run(s) failed: {', '.join(failed)} (see their train.log); "
                "run the same command again to retry them"
            )
        return 0
    _show(args.out)
    return 0


def _show(out: str) -> None:
    print(Path(out, "results.md").read_text(encoding="utf-8"), end="")
    print(f"{out}/results.csv, results.md, curves.png")
