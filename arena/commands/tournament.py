"""``tron tournament SPEC SPEC...``: a round robin (or gauntlet, or free-for-all) with ratings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.cli import CommandError

if TYPE_CHECKING:
    from tron.maps import Map

_DEFAULT_DB = "tournament.db"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tournament",
        help="play a round robin between agents and rate them",
        description=(
            "Every pair of agents plays N games, alternating seats and rotating maps (--vs: "
            "everyone against one agent; --ffa: every set of 3 or 4 agents on 3- and 4-player "
            "maps). Games go to an SQLite database, one row per game with its moves; running "
            "the same command again resumes, skipping the games already stored. Prints "
            "Bradley-Terry ratings (Elo scale, mean 1500) with 95% confidence intervals, from "
            "every game in the database, and writes a ratings plot. With no agents, only the "
            "standings of the database are shown."
        ),
    )
    p.add_argument("specs", metavar="SPEC", nargs="*", help="agent specs (greedy, minimax:level=3, cmd:./bot, ...)")  # fmt: skip
    p.add_argument("--games", type=int, default=None, help="games per pair or group (default: every seating on every map)")  # fmt: skip
    p.add_argument("--map", dest="maps", action="append", metavar="NAME|FILE", help="a built-in map or a map file; repeat to rotate (default: the built-ins for the mode)")  # fmt: skip
    p.add_argument("--vs", metavar="SPEC", default=None, help="gauntlet: every agent plays only against this one")  # fmt: skip
    p.add_argument("--ffa", action="store_true", help="free-for-all on 3- and 4-player maps: every set of 3 (4) agents plays together")  # fmt: skip
    p.add_argument("--db", default=_DEFAULT_DB, metavar="FILE", help=f"the results database (default {_DEFAULT_DB}); reused to resume")  # fmt: skip
    p.add_argument("--workers", type=int, default=None, help="processes playing at once (default: one per core)")  # fmt: skip
    p.add_argument("--batch", type=int, default=None, help="games of one pair played together in one batch (default 32; 4 with a minimax agent)")  # fmt: skip
    p.add_argument("--plot", metavar="FILE", default=None, help="ratings plot PNG (default: the database's name with .png)")  # fmt: skip
    p.add_argument("--no-plot", action="store_true", help="write no plot")
    p.add_argument("--export-replays", metavar="FILE", default=None, help="write every game of the database to a replay file (tron replay FILE)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agents.registry import SpecError
    from arena.store import GameResult, Store, StoreError
    from arena.tournament import (
        TournamentRun,
        format_standings,
        plot_standings,
        run_tournament,
        standings,
    )
    from tron.replay import save_replays

    db = Path(args.db)
    if not db.parent.is_dir():
        raise CommandError(f"--db {args.db}: no such directory {str(db.parent)!r}")
    for name in ("games", "workers", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CommandError(f"--{name} must be >= 1, got {value}")
    twice = [s for s in args.specs if args.specs.count(s) > 1]
    if twice:
        raise CommandError(f"agent {twice[0]!r} is given twice")
    specs = [s for s in args.specs if s != args.vs]
    playing = bool(specs) or args.vs is not None
    if playing and len(specs) + (args.vs is not None) < 2:
        raise CommandError("a tournament needs at least two agents (or one and --vs SPEC)")
    if not playing and not db.exists():
        raise CommandError(f"no agents given and no database {args.db!r} to show")

    run_info: TournamentRun | None = None
    if playing:
        maps = _maps(args)
        everyone = len(specs) + (args.vs is not None)
        for m in maps:
            if m.n_players > everyone:
                raise CommandError(
                    f"map {m.name!r} is for {m.n_players} players, got {everyone} agents"
                )
        with tqdm(desc="games", unit="game", disable=None, leave=False) as bar:

            def progress(_: GameResult) -> None:
                bar.update()

            try:
                run_info = run_tournament(
                    specs,
                    maps,
                    db,
                    games=args.games,
                    vs=args.vs,
                    batch=args.batch,
                    workers=args.workers,
                    on_game=progress,
                )
            except (SpecError, StoreError) as e:
                raise CommandError(str(e)) from None
    try:
        with Store(db) as store:
            results = store.games()
            if args.export_replays:
                if not results:
                    raise CommandError(f"{args.db}: no games to export")
                save_replays(args.export_replays, [r.to_replay() for r in results])
    except StoreError as e:
        raise CommandError(str(e)) from None
    except OSError as e:
        raise CommandError(f"--export-replays {args.export_replays}: {e.strerror or e}") from None
    table = standings(results)
    plot = None
    if not args.no_plot and table:
        plot = args.plot or str(db.with_suffix(".png"))
        try:
            plot_standings(table, plot, f"{len(results)} games, {db.name}")
        except OSError as e:
            raise CommandError(f"--plot {plot}: {e.strerror or e}") from None
    if args.json:
        doc: dict[str, Any] = {
            "standings": [s.to_json() for s in table],
            "games_in_db": len(results),
            "db": str(db),
            "plot": plot,
            "rating_model": (
                "Bradley-Terry (MAP, N(0, 3^2) prior on log-strengths, draws half a win), "
                "Elo scale with mean 1500, 95% CI from the inverse Hessian"
            ),
        }
        if run_info is not None:
            doc["run"] = {
                "scheduled": run_info.scheduled,
                "already_stored": run_info.already,
                "played": run_info.played,
                "seconds": round(run_info.seconds, 3),
                "forfeits": [{"id": r.id, "reason": r.reason} for r in run_info.forfeits],
            }
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    out = []
    if run_info is not None:
        rate = run_info.played / run_info.seconds if run_info.seconds > 0 else 0.0
        out.append(
            f"played {run_info.played} games in {run_info.seconds:.1f} s ({rate:.1f} games/s); "
            f"{run_info.already} of {run_info.scheduled} scheduled were stored already"
        )
        for r in run_info.forfeits[:5]:
            out.append(f"forfeit in game {r.id} on {r.map.name}: {r.reason}")
        if len(run_info.forfeits) > 5:
            out.append(f"... and {len(run_info.forfeits) - 5} more forfeits")
        out.append("")
    out.append(f"{len(results)} games in {args.db}" + (f"; plot: {plot}" if plot else ""))
    sys.stdout.write("\n".join(out) + "\n" + (format_standings(table) if table else ""))
    return 0


def _maps(args: argparse.Namespace) -> list[Map]:
    """The maps asked for, checked against the mode (duels: 2 players; --ffa: 3 or 4)."""
    from tron.maps import MapError, builtin_maps, load_map

    try:
        if args.maps:
            maps = [load_map(m) for m in args.maps]
        elif args.ffa:
            maps = builtin_maps(3) + builtin_maps(4)
        else:
            maps = builtin_maps(2)
    except MapError as e:
        raise CommandError(str(e)) from None
    for m in maps:
        if not args.ffa and m.n_players != 2:
            raise CommandError(
                f"map {m.name!r} is for {m.n_players} players; use --ffa for free-for-all games"
            )
        if args.ffa and m.n_players == 2:
            raise CommandError(f"map {m.name!r} is for 2 players; --ffa plays 3- and 4-player maps")
    if args.ffa and not args.maps:
        everyone = len(args.specs) + (args.vs is not None and args.vs not in args.specs)
        maps = [m for m in maps if m.n_players <= everyone] or maps
    return maps
