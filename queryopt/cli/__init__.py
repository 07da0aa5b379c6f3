"""The ``queryopt`` command line: a thin layer over the library.

Each command lives in a module of this package exposing ``register(commands)``,
which adds its sub-parser and sets ``handler`` to a function
``(args) -> exit status``. Errors queryopt raises, and database errors such as an
unreachable server, become one line on stderr and
exit status 2, never a traceback.

``queryopt --help`` must start fast: a command module imports only argparse-level
code when it registers its parser, and what its command needs (psycopg, rich,
sqlglot, the report) inside its ``run`` function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from queryopt._version import __version__
from queryopt.cli import advise, demo, explain, migrate, pin, plans, prune, report, top
from queryopt.errors import QueryoptError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

_COMMAND_MODULES = (advise, demo, explain, migrate, plans, pin, prune, report, top)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queryopt",
        description="Faster, safer and visible PostgreSQL queries: hints, timeouts, caching, slow-query reports, "
        "index advice.",
    )
    parser.add_argument("--version", action="version", version=f"queryopt {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return handler(args)
    except Exception as exc:
        if not _one_line_error(exc):
            raise
        # libpq messages span lines ("…failed: …\n\tIs the server running…"): one line on stderr.
        print(f"queryopt: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("queryopt: interrupted", file=sys.stderr)
        return 130


def _describe(exc: Exception) -> str:
    """One line; a bare driver error about connecting says so, the same way for every command."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    forms = "postgresql://user@host/dbname or 'host=… dbname=…'"
    if ("connection info string" in text or "invalid connection option" in text) and forms not in text:
        return f"{text} (a connection string is {forms})"
    if isinstance(exc, QueryoptError):
        return text
    if type(exc).__name__ == "OperationalError" and "connection" in text:
        return f"cannot connect to the database: {text}"
    return text


def _one_line_error(exc: Exception) -> bool:
    """queryopt's own errors and database errors (psycopg, loaded only if a command used it) are one line."""
    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, QueryoptError) or (psycopg is not None and isinstance(exc, psycopg.Error))
