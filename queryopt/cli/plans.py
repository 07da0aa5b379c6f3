"""``queryopt plans``: per fingerprint its plans with their latency, the plan changes and the regressions
they brought, the pins, and the plan guard's log."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from queryopt.cli.database import add_database_options, database_from
from queryopt.config import parse_duration

if TYPE_CHECKING:  # loaded when the command runs, so that `queryopt --help` stays light
    from queryopt.plans import PlanHistory

_EPILOG = """\
exit status: 0 when the plans were listed, 2 on any error (one line on stderr).

A plan is identified by a hash of its shape (node types, relations, indexes, join order; not costs or
rows). Latencies are those of the calls queryopt recorded. A plan change is a regression when the new
plan's mean or p95 is more than 2x the previous plan's (warning) or 3x (critical).
"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "plans",
        help="plans per query fingerprint, plan changes and the regressions they brought",
        description="List each fingerprint's captured plans with their latency, the plan changes in the window "
        "(regressions flagged), pinned plans and every pin action.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_database_options(parser)
    parser.add_argument("--since", default="24h", metavar="DURATION", help="window ending now (default: 24h)")
    parser.add_argument("--fingerprint", help="this query fingerprint only")
    parser.add_argument("--format", choices=["table", "json", "markdown"], default="table", help="output format")
    parser.set_defaults(handler=run)


def plans_data(args: argparse.Namespace) -> PlanHistory:
    """The plain data behind the command."""

    from queryopt.plans import plan_history

    dsn, schema = database_from(args)
    since = parse_duration(args.since, name="--since")
    return plan_history(dsn, since=since, fingerprint=args.fingerprint, schema=schema)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from queryopt.plans.render import render_json, render_markdown, render_table

    history = plans_data(args)
    if args.format == "json":
        sys.stdout.write(render_json(history))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(history))
    else:
        render_table(history, Console())
    return 0
