"""``tron plot DIR...``: learning curves (PNG) from the ``progress.csv`` logs of training runs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.cli import CommandError
from arena.commands.train import positive_int

DEFAULT_METRIC = "charts/episodic_return"


@dataclass(frozen=True)
class Curve:
    """One line of a plot: ``steps`` against ``values``. Curves with one label (the seeds of one
    algorithm) share a colour and a legend entry."""

    label: str
    steps: list[float]
    values: list[float]


def find_runs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The ``progress.csv`` files of the given run directories, CSV files, or directories of runs.

    Raises:
        ValueError: a path that is missing or holds no ``progress.csv``.
    """
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_file():
            found.append(p)
        elif (p / "progress.csv").is_file():
            found.append(p / "progress.csv")
        elif p.is_dir() and (inner := sorted(p.rglob("progress.csv"))):
            found.extend(inner)
        else:
            raise ValueError(f"{p}: no progress.csv there (is it a tron train --out directory?)")
    return found


def run_label(csv_path: Path, common: Path) -> str:
    """A curve's legend: a CSV file's own name (``acktr-s0.csv`` -> ``acktr-s0``), or a run's
    directory relative to ``common``, the directory all plotted runs are under."""
    if csv_path.name != "progress.csv":
        return csv_path.stem
    name = str(csv_path.parent.resolve().relative_to(common))
    return name if name != "." else csv_path.parent.name


def read_curve(csv_path: Path, metric: str) -> tuple[list[float], list[float]]:
    """Steps and values of ``metric`` in a ``progress.csv`` (rows without a value skipped)."""
    from acktr.training import read_progress

    rows, fields = read_progress(csv_path)
    if metric not in fields:
        return [], []
    steps, values = [], []
    for row in rows:
        if row.get(metric):
            steps.append(float(row["step"]))
            values.append(float(row[metric]))
    return steps, values


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def draw(curves: Sequence[Curve], out: str | os.PathLike[str], title: str, ylabel: str) -> None:
    """Draw ``curves`` into the PNG ``out`` (written atomically)."""
    import matplotlib

    from acktr.training import atomic_write

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=110)
    ax = fig.subplots()
    labels = list(dict.fromkeys(c.label for c in curves))
    labelled: set[str] = set()
    for c in curves:
        colour = f"C{labels.index(c.label) % 10}"
        legend = None if c.label in labelled else c.label
        labelled.add(c.label)
        ax.plot(c.steps, c.values, color=colour, label=legend, linewidth=1.4, alpha=0.9)
    ax.set_title(title)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if any(c.steps for c in curves):
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plot",
        help="draw learning curves from tron train runs",
        description=(
            "Draw METRIC (default the episodic return) against environment steps for each run "
            "directory (or each run found under a directory) into one PNG."
        ),
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run directories or progress.csv files")
    p.add_argument("--out", metavar="PNG", help="output file (default: DIR/curves.png, first DIR)")
    p.add_argument("--metric", default=DEFAULT_METRIC, help=f"column to plot ({DEFAULT_METRIC})")
    p.add_argument(
        "--smooth", type=positive_int, default=10, metavar="N", help="moving average (10 rows)"
    )
    p.add_argument("--title", help="plot title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        runs = find_runs(args.dirs)
    except ValueError as e:
        raise CommandError(str(e)) from None
    common = Path(os.path.commonpath([str(r.parent.resolve()) for r in runs]))
    curves = []
    for csv_path in runs:
        steps, values = read_curve(csv_path, args.metric)
        if not steps:
            continue
        curves.append(Curve(run_label(csv_path, common), steps, smooth(values, args.smooth)))
    if not curves:
        raise CommandError(f"no values of {args.metric!r} in {', '.join(map(str, runs))}")
    first = Path(args.dirs[0])
    out = Path(args.out) if args.out else (first if first.is_dir() else first.parent) / "curves.png"
    title = args.title or (curves[0].label if len(curves) == 1 else f"{len(curves)} runs")
    draw(curves, out, title, args.metric.rsplit("/", 1)[-1].replace("_", " "))
    print(f"{out}: {len(curves)} curves of {args.metric}")
    return 0
