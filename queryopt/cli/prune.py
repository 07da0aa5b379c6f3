"""``queryopt prune``: delete old rows of the slow-query table, in batches."""

from __future__ import annotations

import argparse
from typing import Any

from queryopt.cli.database import add_database_options, database_from
from queryopt.config import parse_duration


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "prune",
        help="delete slow-query records older than a given age",
        description="Delete slow-query records older than --older-than, in batches (each its own transaction).",
    )
    parser.add_argument("--older-than", required=True, metavar="AGE", help="age such as 30d, 12h or 90m")
    parser.add_argument("--batch-size", type=int, default=10_000, help="rows deleted per transaction (10000)")
    add_database_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queryopt.recorder.table import prune

    older_than = parse_duration(args.older_than, name="--older-than", require_unit=True)
    dsn, schema = database_from(args)
    deleted = prune(dsn, older_than, schema=schema, batch_size=args.batch_size)
    print(f"deleted {deleted} slow-query record(s) older than {args.older_than} from {schema}.slow_queries")
    return 0
