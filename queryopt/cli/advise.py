"""``queryopt advise``: index advice from the recorded workload, costed with HypoPG.

Exit status: 0 when the advice was produced (and ``--fail-on-advice`` found
nothing), 1 when ``--fail-on-advice`` is given and an index is advised, 2 on any
error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from queryopt.config import Settings
from queryopt.errors import AdvisorError, ConfigurationError

EXIT_OK = 0
EXIT_ADVICE = 1

_EPILOG = """\
exit status:
  0  the advice was produced (and --fail-on-advice found nothing to create)
  1  --fail-on-advice was given and at least one index is advised
  2  error: no HypoPG (install postgresql-15-hypopg on Debian, then CREATE EXTENSION hypopg),
     no slow-query table (run queryopt migrate), unreachable database, bad arguments

Nothing is created unless --apply is given: then each advised index is built with
CREATE INDEX CONCURRENTLY (no transaction, writes are not blocked) and the workload is
re-planned. --verify alone re-plans the workload with the hypothetical indexes together.
"""


# The advisor's defaults, written out so that `queryopt --help` loads neither the advisor nor rich
# (tests/unit/cli/test_cli_startup.py checks they match DEFAULT_MAX_INDEXES and AdviceFormat).
MAX_INDEXES: Final = 10
FORMATS: Final = ("table", "json", "markdown")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "advise",
        help="advise indexes for the recorded slow queries (HypoPG what-if costing; creates nothing by default)",
        description="Turn the recorded workload (queryopt's slow-query table, plus pg_stat_statements when "
        "installed) into index advice: candidates from each statement, costed as HypoPG hypothetical indexes, "
        "chosen greedily over the whole workload, net of their write upkeep.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dsn", help="the application's database (default: $QUERYOPT_DSN)")
    parser.add_argument(
        "--recorder-dsn", help="database holding queryopt's tables, if not --dsn (default: $QUERYOPT_RECORDER_DSN)"
    )
    parser.add_argument("--schema", help="schema of queryopt's tables (default: $QUERYOPT_SCHEMA, else queryopt)")
    parser.add_argument("--since", default="24h", metavar="DURATION", help="window of slow queries (default: 24h)")
    parser.add_argument("--budget-mb", type=float, metavar="N", help="total size of the advised indexes, at most")
    parser.add_argument(
        "--max-indexes", type=int, default=MAX_INDEXES, metavar="N", help="advise at most N indexes (10)"
    )
    parser.add_argument(
        "--no-pg-stat-statements", action="store_true", help="use the slow-query table only, not pg_stat_statements"
    )
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="output format")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the advice to FILE instead of stdout")
    parser.add_argument("--verify", action="store_true", help="re-plan the workload with the advice in place")
    parser.add_argument(
        "--apply", action="store_true", help="create the advised indexes (CREATE INDEX CONCURRENTLY), then re-plan"
    )
    parser.add_argument(
        "--fail-on-advice", action="store_true", help="exit with status 1 when any index is advised (for CI)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from queryopt.advisor import advise
    from queryopt.advisor.render import AdviceFormat, print_advice, render

    settings = Settings.from_env()
    dsn = args.dsn or settings.dsn
    if not dsn:
        raise ConfigurationError("no database to advise on: pass --dsn or set QUERYOPT_DSN", setting="dsn")
    advice = advise(
        dsn,
        recorder_dsn=args.recorder_dsn or settings.recorder.dsn or None,
        schema=args.schema or settings.recorder.schema,
        since=args.since,
        budget_mb=args.budget_mb,
        max_indexes=args.max_indexes,
        use_pg_stat_statements=not args.no_pg_stat_statements,
        verify=args.verify,
        apply=args.apply,
    )
    if args.output:
        text = render(advice, args.format)
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise AdvisorError(f"cannot write the advice to {args.output}: {exc.strerror or exc}") from exc
        print(f"queryopt: wrote the {args.format} advice to {args.output}", file=sys.stderr)
    elif args.format == AdviceFormat.TABLE.value:
        print_advice(advice, Console())
    else:
        sys.stdout.write(render(advice, args.format))
    if args.fail_on_advice and advice.indexes:
        print(
            f"queryopt: {len(advice.indexes)} index(es) advised; failing because of --fail-on-advice", file=sys.stderr
        )
        return EXIT_ADVICE
    return EXIT_OK
