"""The ``tron`` command line.

Each sub-command lives in its own module under ``arena/commands/`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). Heavy imports (torch, pygame) happen inside ``func``, so
``tron --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import arena.commands


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2, never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every sub-command found in ``arena.commands``."""
    parser = argparse.ArgumentParser(
        prog="tron",
        description="Tron AI lab: play, match, train and rate Tron agents.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(arena.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"arena.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tron`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except CommandError as e:
        print(f"tron {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tron {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
