"""``queryopt pin`` and ``queryopt unpin``: fix a query's plan with pg_hint_plan, or release it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from queryopt.cli.database import database_from
from queryopt.config import Settings

if TYPE_CHECKING:  # loaded when the command runs, so that `queryopt --help` stays light
    from queryopt.plans import Pin

_PIN_EPILOG = """\
exit status: 0 when the plan was pinned, 2 when it was refused or on any error (one line on stderr).

The hint set (Leading with the join tree, join methods, scan methods with their indexes) is generated
from the captured plan and checked by EXPLAIN: a pin is stored only when PostgreSQL then chooses a plan
of the same shape. Every queryopt process applies it within a few seconds (PlanGuardPolicy.refresh_interval);
it overrides hint rules for its fingerprint. It needs pg_hint_plan in the database: planner settings
cannot pin a join order.
"""


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fingerprint", metavar="FINGERPRINT", help="the query's fingerprint (see `queryopt plans`)")
    parser.add_argument(
        "--dsn", help="the application's database (default: $QUERYOPT_DSN); queryopt's tables unless --store-dsn"
    )
    parser.add_argument("--store-dsn", help="database holding queryopt's tables (default: $QUERYOPT_RECORDER_DSN)")
    parser.add_argument("--schema", help="schema of queryopt's tables (default: $QUERYOPT_SCHEMA, else queryopt)")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format")


def register(commands: Any) -> None:
    pin: argparse.ArgumentParser = commands.add_parser(
        "pin",
        help="pin a captured plan of a query with a verified pg_hint_plan hint set",
        description="Pin a plan captured for FINGERPRINT (default: the fastest one seen).",
        epilog=_PIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(pin)
    pin.add_argument("--plan", metavar="HASH", help="the plan to pin (default: the fastest captured plan)")
    pin.set_defaults(handler=run_pin)
    release: argparse.ArgumentParser = commands.add_parser(
        "unpin",
        help="remove the pin of a query",
        description="Remove the pin of FINGERPRINT; every queryopt process lets the planner choose again.",
        epilog="exit status: 0 when the pin was removed, 2 when there was none or on any error.",
    )
    _add_options(release)
    release.set_defaults(handler=run_unpin)


def _databases(args: argparse.Namespace) -> tuple[str, str, str]:
    """``(application dsn, store dsn, schema)``."""
    settings = Settings.from_env()
    store, schema = database_from(argparse.Namespace(dsn=args.store_dsn or args.dsn, schema=args.schema))
    app = args.dsn or settings.dsn or store
    return app, args.store_dsn or settings.recorder.dsn or app, schema


def _print(pin: Pin, args: argparse.Namespace, verb: str) -> None:
    from queryopt.plans.render import SCHEMA_VERSION, render_pin

    if args.format == "json":
        sys.stdout.write(json.dumps({"schema_version": SCHEMA_VERSION, verb: render_pin(pin)}, indent=2) + "\n")
    else:
        print(f"{verb} {pin.fingerprint} (plan {pin.plan_hash}): /*+ {pin.hints} */")


def pin_data(args: argparse.Namespace) -> Pin:
    from queryopt.plans import pin_plan

    app, store, schema = _databases(args)
    return pin_plan(app, args.fingerprint, plan_hash=args.plan, schema=schema, store_conninfo=store)


def run_pin(args: argparse.Namespace) -> int:
    _print(pin_data(args), args, "pinned")
    return 0


def unpin_data(args: argparse.Namespace) -> Pin:
    from queryopt.plans import unpin

    _, store, schema = _databases(args)
    return unpin(store, args.fingerprint, schema=schema)


def run_unpin(args: argparse.Namespace) -> int:
    _print(unpin_data(args), args, "unpinned")
    return 0
