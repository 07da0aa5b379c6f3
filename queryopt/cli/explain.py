"""``queryopt explain``: the plan of a statement without and with index hints, side by side."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from queryopt.config import HintMode, Settings
from queryopt.errors import ConfigurationError

if TYPE_CHECKING:  # loaded when the command runs, so that `queryopt --help` stays light
    from rich.console import Group
    from rich.text import Text

    from queryopt.hints import PlanComparison, PlanSummary
    from queryopt.hints.resolve import HintRequest

__all__ = ["SCHEMA_VERSION", "comparison_as_dict", "register", "render_comparison", "run"]

SCHEMA_VERSION: Final = 1
"""The layout of ``queryopt explain --format json``."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "explain",
        help="compare a statement's plan without and with index hints",
        description=(
            "EXPLAIN a statement without and with hints and compare node types, indexes and estimated costs. "
            "Hints are validated against the query and the catalog first. The statement is only planned, "
            "unless --analyze is given (then it runs, twice, inside a transaction that is rolled back)."
        ),
    )
    parser.add_argument("sql", help="the statement, with %%s placeholders for --param values")
    parser.add_argument(
        "--hint",
        action="append",
        default=[],
        metavar="HINT",
        help="an index name (its table is found), RELATION=INDEX, or pg_hint_plan text such as 'HashJoin(o c)'; "
        "repeatable",
    )
    parser.add_argument("--param", action="append", default=None, metavar="VALUE", help="a parameter value; repeatable")
    parser.add_argument("--analyze", action="store_true", help="run the statement (EXPLAIN ANALYZE): never by default")
    parser.add_argument("--dsn", help="libpq connection string or URL (default: $QUERYOPT_DSN)")
    parser.add_argument(
        "--mode",
        choices=[mode.value for mode in HintMode],
        default=None,
        help="how hints take effect (default: $QUERYOPT_HINT_MODE or auto)",
    )
    parser.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="table: plans and index use for a terminal; json: the comparison, schema_version 1",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.set_defaults(handler=run)


def _requests(values: list[str]) -> list[HintRequest]:
    from queryopt.hints import RelationIndexes
    from queryopt.hints.resolve import hint_requests

    requests: list[HintRequest] = []
    for value in values:
        relation, equals, index = value.partition("=")
        if equals and "(" not in value:
            requests.append(RelationIndexes(relation.strip(), tuple(name.strip() for name in index.split(","))))
        else:
            requests.extend(hint_requests(value))
    return requests


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from queryopt.hints import explain

    settings = Settings.from_env()
    dsn = args.dsn or settings.dsn
    if not dsn:
        raise ConfigurationError("no database: pass --dsn or set QUERYOPT_DSN", setting="QUERYOPT_DSN")
    mode = HintMode(args.mode) if args.mode else settings.hint_mode
    comparison = explain(dsn, args.sql, args.param, _requests(args.hint), analyze=args.analyze, mode=mode)
    if args.json or args.format == "json":
        sys.stdout.write(json.dumps(comparison_as_dict(comparison), indent=2) + "\n")
    else:
        Console().print(render_comparison(comparison))
    return 0


def comparison_as_dict(comparison: PlanComparison) -> dict[str, Any]:
    """Plain data for ``--format json`` (``schema_version`` 1; raw EXPLAIN documents left out)."""

    def summary(plan: PlanSummary) -> dict[str, Any]:
        return {
            "sql": plan.sql,
            "total_cost": plan.total_cost,
            "planning_time_ms": plan.planning_time_ms,
            "execution_time_ms": plan.execution_time_ms,
            "nodes": [asdict(node) for node in plan.nodes],
        }

    return {
        "schema_version": SCHEMA_VERSION,
        "mode": comparison.mode.value,
        "hints": comparison.hints.render(),
        "hinted_sql": comparison.hinted_sql,
        "settings": [list(pair) for pair in comparison.settings],
        "before": summary(comparison.before),
        "after": summary(comparison.after),
        "cost_ratio": comparison.cost_ratio,
        "index_usage": [asdict(usage) for usage in comparison.index_usage],
        "hint_report": asdict(comparison.hint_report) if comparison.hint_report else None,
        "analyzed": comparison.analyzed,
        "notes": list(comparison.notes),
    }


def _tree(plan: PlanSummary) -> Text:
    from rich.text import Text

    text = Text()
    for node in plan.nodes:
        line = Text("  " * node.depth + "→ " if node.depth else "")
        line.append(node.node_type, style="bold")
        if node.index:
            line.append(f" using {node.index}", style="cyan")
        if node.relation:
            line.append(
                f" on {node.relation}" + (f" {node.alias}" if node.alias and node.alias != node.relation else "")
            )
        line.append(f"  (cost {node.total_cost:,.2f})", style="dim")
        text.append_text(line)
        text.append("\n")
    text.rstrip()
    return text


def _yes_no(value: bool) -> Text:
    from rich.text import Text

    return Text("yes", style="green") if value else Text("no", style="red")


def render_comparison(comparison: PlanComparison) -> Group:
    """Rich renderables for a comparison: hints, both plans, costs, index usage, pg_hint_plan's report."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    header = Table.grid(padding=(0, 2))
    header.add_row("hint mode", comparison.mode.value)
    header.add_row("hints", comparison.hints.render() or "(none)")
    if comparison.settings:
        header.add_row("planner settings", ", ".join(f"{name}={value}" for name, value in comparison.settings))
    parts.append(header)

    plans = Table(title="plans", expand=False)
    plans.add_column("without hints")
    plans.add_column("with hints")
    plans.add_row(_tree(comparison.before), _tree(comparison.after))
    parts.append(plans)

    costs = Table(title="estimates" + (" and timings" if comparison.analyzed else ""))
    costs.add_column("")
    costs.add_column("without hints", justify="right")
    costs.add_column("with hints", justify="right")
    costs.add_row("total cost", f"{comparison.before.total_cost:,.2f}", f"{comparison.after.total_cost:,.2f}")
    ratio = comparison.cost_ratio
    if ratio is not None:
        costs.add_row("cost ratio", "1.00", f"{ratio:.2f}")
    if comparison.analyzed:
        before, after = comparison.before.execution_time_ms, comparison.after.execution_time_ms
        costs.add_row("execution ms", f"{before or 0:.3f}", f"{after or 0:.3f}")
    parts.append(costs)

    if comparison.index_usage:
        usage = Table(title="hinted indexes")
        usage.add_column("relation")
        usage.add_column("index")
        usage.add_column("used without hints")
        usage.add_column("used with hints")
        for row in comparison.index_usage:
            usage.add_row(row.relation, row.index, _yes_no(row.used_before), _yes_no(row.used_after))
        parts.append(usage)

    report = comparison.hint_report
    if report is not None:
        hints_table = Table(title="pg_hint_plan")
        hints_table.add_column("status")
        hints_table.add_column("hints")
        for label, entries in (
            ("used", report.used),
            ("not used", report.not_used),
            ("duplicated", report.duplicated),
            ("error", report.errors),
        ):
            if entries:
                hints_table.add_row(label, " ".join(entries))
        for message in report.messages:
            hints_table.add_row("message", message)
        parts.append(hints_table)

    for note in comparison.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    return Group(*parts)
