"""The ``queryopt`` command line: a thin layer over the library.

Each subcommand is a function ``_cmd_<name>(args) -> int`` registered in
:func:`build_parser`; errors queryopt raises become one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from queryopt._version import __version__
from queryopt.errors import QueryoptError

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], int]


def _cmd_demo(args: argparse.Namespace) -> int:
    print("queryopt demo: the guided demo arrives with the demo issue; nothing to run yet.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queryopt",
        description="Faster, safer and visible PostgreSQL queries: hints, timeouts, caching, slow-query reports.",
    )
    parser.add_argument("--version", action="version", version=f"queryopt {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run the guided demo on a throwaway PostgreSQL", description="Run the guided demo."
    )
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return handler(args)
    except QueryoptError as exc:
        print(f"queryopt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("queryopt: interrupted", file=sys.stderr)
        return 130
