"""``queryopt migrate``: create or upgrade queryopt's own schema, or check that it is current."""

from __future__ import annotations

import argparse
from typing import Any

from queryopt.cli.database import add_database_options, database_from


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "migrate",
        help="create or upgrade queryopt's tables (the slow-query table) in their own schema",
        description="Apply queryopt's pending schema migrations. Safe to run from several processes at once.",
    )
    add_database_options(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="apply nothing: list pending migrations and exit 1 if there are any, 0 if the schema is current",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queryopt.schema.migrator import migrate, pending_migrations

    dsn, schema = database_from(args)
    if args.check:
        pending = pending_migrations(dsn, schema=schema)
        if not pending:
            print(f"schema {schema} is current")
            return 0
        print(f"schema {schema} has {len(pending)} pending migration(s):")
        for migration in pending:
            print(f"  {migration.version:04d}_{migration.name}")
        return 1
    applied = migrate(dsn, schema=schema)
    if not applied:
        print(f"schema {schema} is already current")
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name} to schema {schema}")
    return 0
