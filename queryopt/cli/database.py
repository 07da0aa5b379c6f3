"""The ``--dsn`` and ``--schema`` options shared by the commands that open queryopt's tables."""

from __future__ import annotations

import argparse

from queryopt.config import Settings
from queryopt.errors import ConfigurationError

__all__ = ["add_database_options", "database_from"]


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        help="database holding queryopt's tables (default: $QUERYOPT_RECORDER_DSN, else $QUERYOPT_DSN)",
    )
    parser.add_argument("--schema", help="schema of queryopt's tables (default: $QUERYOPT_SCHEMA, else queryopt)")


def database_from(args: argparse.Namespace) -> tuple[str, str]:
    """``(conninfo, schema)`` from the command line, falling back to the ``QUERYOPT_*`` environment."""
    settings = Settings.from_env()
    dsn = args.dsn or settings.recorder.dsn or settings.dsn
    if not dsn:
        raise ConfigurationError("no database given: pass --dsn or set QUERYOPT_DSN", setting="dsn")
    return dsn, args.schema or settings.recorder.schema
