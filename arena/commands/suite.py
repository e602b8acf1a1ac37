"""``tron suite atari|mujoco``: the ACKTR paper's benchmark set, run after run, with a results table.

Every (game, algorithm, seed) is one ``tron train`` run in ``OUT/<env id>/<algo>-s<seed>``. A run
that reached ``--steps`` is skipped, one that stopped early resumes from its checkpoint, so the
same command continues an interrupted suite. At the end (or with ``--report``) the command writes
``OUT/results.md`` and ``OUT/results.csv``: per game and algorithm the final mean return (the
episode-weighted mean of the last 10% of the run's steps), the mean of the last 10 episodes (the
paper's measure), each over seeds, and the paper's figure (Wu et al. 2017: Atari after 10M steps,
MuJoCo after 1M); and ``OUT/curves/<env id>.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.cli import CommandError
from arena.commands.plot import Curve, draw, read_curve, smooth
from arena.commands.train import load_plugins, parse_settings, positive_int

#: Games of the paper's tables, and its reported scores (REFERENCE.md).
SUITES: dict[str, dict[str, dict[str, str]]] = {
    "atari": {
        "BeamRider": {"acktr": "13581", "a2c": "8148"},
        "Breakout": {"acktr": "735.7", "a2c": "581.6"},
        "Pong": {"acktr": "20.9", "a2c": "19.9"},
        "Qbert": {"acktr": "21.5k-23.2k", "a2c": "15967"},
        "Seaquest": {"acktr": "1776", "a2c": "1754"},
        "SpaceInvaders": {"acktr": "19723", "a2c": "1757"},
    },
    "mujoco": {
        "HalfCheetah": {"acktr": "5586"},
        "Hopper": {"acktr": "3916"},
        "Walker2d": {"acktr": "6199"},
        "Ant": {"acktr": "4622"},
        "InvertedPendulum": {"acktr": "1000"},
    },
}
PAPER_STEPS = {"atari": 10_000_000, "mujoco": 1_000_000}


def env_id(suite: str, game: str) -> str:
    """The gymnasium id of a suite's game: ``PongNoFrameskip-v4`` (the paper's Atari protocol,
    no sticky actions) or ``Hopper-v5``; a full id is returned as it is."""
    if "-v" in game:
        return game
    return f"{game}NoFrameskip-v4" if suite == "atari" else f"{game}-v5"


def game_name(game_or_id: str) -> str:
    """``PongNoFrameskip-v4`` -> ``Pong``, ``Hopper-v5`` -> ``Hopper``."""
    return game_or_id.split("/")[-1].split("-v")[0].removesuffix("NoFrameskip")


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run, read back from its directory."""

    game: str
    algo: str
    seed: int
    steps: int
    final_return: float  # NaN when no episode finished in the last 10% of the steps
    last_episodes_return: float  # NaN when the run finished no episode


def final_return(csv_path: Path, fraction: float = 0.1) -> tuple[int, float]:
    """(last step, episode-weighted mean return over the last ``fraction`` of the steps)."""
    from acktr.training import read_progress

    rows, _ = read_progress(csv_path)
    if not rows:
        return 0, math.nan
    last = float(rows[-1]["step"])
    return int(last), _episode_mean(r for r in rows if float(r["step"]) >= (1 - fraction) * last)


def last_episodes_return(csv_path: Path, episodes: int = 10) -> float:
    """Mean return of the last ``episodes`` episodes, as the paper reports MuJoCo results.

    The log holds one mean per update, so this is the mean over the last updates that together
    finished at least ``episodes`` episodes (on Hopper at 1M steps: 10 to 12).
    """
    from acktr.training import read_progress

    rows, _ = read_progress(csv_path)
    tail: list[dict[str, str]] = []
    seen = 0.0
    for row in reversed(rows):
        if seen >= episodes:
            break
        if row.get("charts/episodic_return"):
            tail.append(row)
            seen += float(row.get("charts/episodes") or 1)
    return _episode_mean(tail)


def _episode_mean(rows: Iterable[dict[str, str]]) -> float:
    total = weight = 0.0
    for row in rows:
        if row.get("charts/episodic_return"):
            n = float(row.get("charts/episodes") or 1)
            total += n * float(row["charts/episodic_return"])
            weight += n
    return total / weight if weight else math.nan


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "suite",
        help="run the ACKTR paper's Atari or MuJoCo set and tabulate the results",
        description=(
            "Train every algorithm on every game of the suite for every seed, one run after another "
            "(resumable: finished runs are skipped, interrupted ones resume), then write "
            "OUT/results.md, OUT/results.csv and OUT/curves/*.png with the paper's figures beside "
            "ours. The paper's Atari table is at 10M steps (the default); on a CPU pass a smaller "
            "--steps."
        ),
    )
    p.add_argument("suite", choices=sorted(SUITES), help="atari or mujoco")
    p.add_argument("--algos", default="acktr,a2c", help="comma-separated learners (acktr,a2c)")
    p.add_argument(
        "--steps", type=positive_int, help="env steps per run (default: the paper's, 10M / 1M)"
    )
    p.add_argument("--seeds", type=positive_int, default=1, metavar="K", help="seeds 0..K-1")
    p.add_argument(
        "--games", nargs="+", metavar="GAME", help="subset: names (Pong, Hopper) or env ids"
    )
    p.add_argument("--out", metavar="DIR", help="suite directory (default runs/suite-SUITE)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run"
    )
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (1)")
    p.add_argument("--report", action="store_true", help="only write the table from finished runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _train_one(
    algo: str, env: str, seed: int, steps: int, run_dir: Path, args: argparse.Namespace
) -> None:
    from acktr.envs import make_vec_env
    from acktr.training import CHECKPOINT_NAME, learner_class, read_checkpoint, train

    checkpoint = run_dir / CHECKPOINT_NAME
    cls = learner_class(algo)
    resumed = checkpoint.exists()
    if resumed:
        done = read_checkpoint(checkpoint, algo=algo).num_timesteps
        if done >= steps:
            print(f"[suite] {run_dir}: done ({done} steps)", file=sys.stderr)
            return
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        learner = cls.load(
            checkpoint, env=make_vec_env(env, int(info["num_envs"])), device=args.device
        )
        print(f"[suite] {run_dir}: resuming at {done} steps", file=sys.stderr)
    else:
        learner = cls.for_env(
            env, seed=seed, device=args.device, overrides=parse_settings(args.set)
        )
        print(f"[suite] {run_dir}: {algo} on {env}, seed {seed}", file=sys.stderr)
    train(
        learner,
        steps,
        run_dir,
        checkpoint_every=max(1, min(100_000, steps // 10)),
        resumed=resumed,
        progress_bar=not args.no_progress,
        run_info={"steps": steps, "suite": args.suite},
    )


def report(
    suite: str, out: Path, games: list[str], algos: list[str], seeds: int
) -> list[RunResult]:
    """Write ``results.md``, ``results.csv`` and the curves from the runs found under ``out``."""
    from acktr.training import atomic_write_text

    results: list[RunResult] = []
    for env in games:
        curves = []
        for algo in algos:
            for seed in range(seeds):
                csv_path = out / env / f"{algo}-s{seed}" / "progress.csv"
                if not csv_path.exists():
                    continue
                steps, value = final_return(csv_path)
                last10 = last_episodes_return(csv_path)
                results.append(RunResult(game_name(env), algo, seed, steps, value, last10))
                xs, ys = read_curve(csv_path, "charts/episodic_return")
                if xs:
                    curves.append(Curve(algo, xs, smooth(ys, 10)))
        if curves:
            draw(curves, out / "curves" / f"{env}.png", env, "episodic return")

    lines = [
        "| game | algo | steps | seeds | final return: last 10% of steps (mean ± std over seeds) "
        f"| last 10 episodes | paper ({PAPER_STEPS[suite] // 1_000_000}M steps) |",
        "|---|---|---|---|---|---|---|",
    ]
    buffer = io.StringIO()
    table = csv.writer(buffer)
    header = ["game", "algo", "steps", "seeds", "mean_return", "std_return"]
    table.writerow([*header, "last10_mean", "last10_std", "paper"])
    for env in games:
        game = game_name(env)
        for algo in algos:
            runs = [r for r in results if r.game == game and r.algo == algo]
            if not runs:
                continue
            mean, std = _spread([r.final_return for r in runs])
            mean10, std10 = _spread([r.last_episodes_return for r in runs])
            steps = min(r.steps for r in runs)
            paper = SUITES[suite].get(game, {}).get(algo, "-")
            shown = "-" if math.isnan(mean) else f"{mean:.1f} ± {std:.1f}"
            shown10 = "-" if math.isnan(mean10) else f"{mean10:.1f} ± {std10:.1f}"
            lines.append(
                f"| {game} | {algo} | {steps:,} | {len(runs)} | {shown} | {shown10} | {paper} |"
            )
            spreads = [f"{mean:.4g}", f"{std:.4g}", f"{mean10:.4g}", f"{std10:.4g}"]
            table.writerow([game, algo, steps, len(runs), *spreads, paper])
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "results.csv", buffer.getvalue())
    return results


def _spread(values: list[float]) -> tuple[float, float]:
    """Mean and population std of the finite values (NaN, 0 when there are none)."""
    finite = [v for v in values if not math.isnan(v)]
    mean = statistics.fmean(finite) if finite else math.nan
    return mean, statistics.pstdev(finite) if len(finite) > 1 else 0.0


def run(args: argparse.Namespace) -> int:
    import torch

    from acktr.training import CheckpointError, learner_class

    load_plugins()
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    try:
        for algo in algos:
            learner_class(algo)
    except KeyError as e:
        raise CommandError(e.args[0]) from None
    known = SUITES[args.suite]
    games = [env_id(args.suite, g) for g in (args.games or list(known))]
    steps = args.steps or PAPER_STEPS[args.suite]
    out = Path(args.out or Path("runs") / f"suite-{args.suite}")
    torch.set_num_threads(args.threads)
    if not args.report:
        for env in games:
            for algo in algos:
                for seed in range(args.seeds):
                    try:
                        _train_one(algo, env, seed, steps, out / env / f"{algo}-s{seed}", args)
                    except (CheckpointError, OSError, KeyError) as e:
                        raise CommandError(f"{env} {algo} seed {seed}: {e}") from None
                    except ValueError as e:
                        raise CommandError(f"{env} {algo}: {str(e).splitlines()[0]}") from None
    report(args.suite, out, games, algos, args.seeds)
    print((out / "results.md").read_text(encoding="utf-8"), end="")
    print(f"{out}/results.md, results.csv, curves/")
    return 0
