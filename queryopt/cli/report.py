"""``queryopt report``: the slow-query report from queryopt's own table.

Exit status: 0 when the report was produced (and ``--fail-on`` found nothing),
1 when ``--fail-on`` found a regression at or above its severity (the report is
still written), 2 on any error (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from queryopt.config import Settings
from queryopt.errors import AdvisorError, PinError, ReportError

if TYPE_CHECKING:  # loaded when the command runs, so that `queryopt --help` stays light
    from queryopt.report import Report

# The report's own enums, written out so that `queryopt --help` loads neither the report nor rich
# (tests/unit/cli/test_cli_startup.py checks they match SortKey, ReportFormat and Severity).
SORT_KEYS: Final = ("total", "mean", "p95", "calls", "max")
FORMATS: Final = ("table", "json", "markdown", "csv", "html")
FAIL_ON: Final = ("warning", "critical")

EXIT_OK = 0
EXIT_FAIL_ON = 1
EXIT_ERROR = 2

_EPILOG = """\
exit status:
  0  the report was produced and --fail-on (if given) found nothing
  1  --fail-on found a regression at or above its severity (the report is still written)
  2  error: no database, missing table (migrations not applied), empty window, bad arguments

JSON and HTML reports gain an "advice" section (queryopt advise, default options) when the database has
the HypoPG extension; --no-advice leaves it out.

A regression compares each fingerprint with the previous window of the same length: mean or p95
more than 2x worse is a warning, more than 3x critical; fingerprints absent before are "new"
(informational, never a --fail-on finding). Percentiles are PostgreSQL's percentile_cont.
"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "report",
        help="report slow queries recorded by queryopt (terminal, JSON, Markdown, CSV, HTML)",
        description="Aggregate queryopt's slow-query table over a time window: top queries, percentiles, "
        "regressions against the previous window, a timeline.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dsn",
        help="database holding queryopt's tables (default: $QUERYOPT_RECORDER_DSN, else $QUERYOPT_DSN); index "
        "advice is costed on $QUERYOPT_DSN when it is set and differs",
    )
    parser.add_argument("--schema", help="schema of queryopt's tables (default: $QUERYOPT_SCHEMA or queryopt)")
    parser.add_argument("--since", metavar="DURATION", help="window ending now, e.g. 30m, 24h, 7d (default: 24h)")
    parser.add_argument("--from", dest="from_", metavar="ISO", help="window start, ISO 8601 (UTC unless an offset)")
    parser.add_argument("--to", metavar="ISO", help="window end, ISO 8601 (default: now)")
    parser.add_argument("--top", type=int, default=20, help="how many queries to list (default: 20)")
    parser.add_argument("--sort", choices=SORT_KEYS, default=SORT_KEYS[0], help="order of the top list")
    parser.add_argument("--fingerprint", help="report on this query fingerprint only")
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="output format")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        help="exit with status 1 when a regression at or above this severity exists",
    )
    parser.add_argument(
        "--no-advice", action="store_true", help="leave index advice out of JSON and HTML reports (it needs HypoPG)"
    )
    parser.set_defaults(handler=run)


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{option} {text!r} is not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)") from None


def _advice(args: argparse.Namespace, dsn: str, recorder_dsn: str, schema: str) -> dict[str, Any] | None:
    """Index advice for the JSON and HTML reports, when HypoPG is there to cost it; never fails the report.

    ``dsn`` is the application's database (where indexes would go), ``recorder_dsn`` the one holding the
    slow-query table."""
    from queryopt.advisor import advise, hypopg_installed

    if args.no_advice or args.format not in ("json", "html"):
        return None
    if not hypopg_installed(dsn):
        return None
    try:
        return advise(dsn, recorder_dsn=recorder_dsn, schema=schema, since=args.since or "24h").to_json()
    except AdvisorError as exc:
        print(f"queryopt: no index advice in the report: {exc}", file=sys.stderr)
        return None


def with_plans(result: Report, dsn: str) -> Report:
    """``result`` with the plan changes of its window and the latest plan of its top queries (plain data from
    the plan guard; unchanged when queryopt's plan tables are not there yet)."""
    from queryopt.plans import plan_history
    from queryopt.report import PlanChangeNote, PlanTree

    window = result.window
    try:
        history = plan_history(
            dsn, since=window.end - window.start, end=window.end, fingerprint=result.fingerprint, schema=result.schema
        )
    except (ReportError, PinError):
        return result
    changes = sorted(
        (
            PlanChangeNote(c.fingerprint, c.at, c.from_plan, c.to_plan, c.before.mean_ms, c.after.mean_ms, c.severity)
            for entry in history.fingerprints
            for c in entry.changes
        ),
        key=lambda note: note.at,
    )
    top = {q.fingerprint for q in result.queries}
    trees = []
    for entry in history.fingerprints:
        if entry.fingerprint in top and entry.plans:
            latest = max(entry.plans, key=lambda plan: plan.last_seen)
            trees.append(PlanTree(entry.fingerprint, latest.plan_hash, latest.tree))
    return dataclasses.replace(result, plan_changes=tuple(changes), plan_trees=tuple(trees))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from queryopt.report import ReportFormat, Severity, render, report
    from queryopt.report.terminal import print_report

    settings = Settings.from_env()
    dsn = args.dsn or settings.recorder.dsn or settings.dsn  # where the slow-query table is, as for migrate
    if not dsn:
        raise ReportError("no database to report on: pass --dsn or set QUERYOPT_DSN (or QUERYOPT_RECORDER_DSN)")
    application = args.dsn or settings.dsn or dsn
    result = report(
        dsn,
        since=args.since,
        from_=_moment(args.from_, "--from"),
        to=_moment(args.to, "--to"),
        top=args.top,
        sort=args.sort,
        fingerprint=args.fingerprint,
        schema=args.schema or settings.recorder.schema,
    )
    result = with_plans(result, dsn)
    advice = _advice(args, application, dsn, args.schema or settings.recorder.schema)
    if args.output:
        text = render(result, args.format, advice=advice)
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ReportError(f"cannot write the report to {args.output}: {exc.strerror or exc}") from exc
        print(f"queryopt: wrote the {args.format} report to {args.output}", file=sys.stderr)
    elif args.format == ReportFormat.TABLE.value:
        print_report(result, Console())
    else:
        sys.stdout.write(render(result, args.format, advice=advice))
    if args.fail_on:
        findings = result.findings_at_least(Severity(args.fail_on))
        if findings:
            worst = result.worst_severity.value
            print(
                f"queryopt: {len(findings)} regression(s) at or above {args.fail_on} (worst: {worst}); "
                f"failing because of --fail-on {args.fail_on}",
                file=sys.stderr,
            )
            return EXIT_FAIL_ON
    return EXIT_OK
