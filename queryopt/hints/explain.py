"""Does a hint change the plan? EXPLAIN the statement with and without it and compare.

``explain()`` asks PostgreSQL for ``EXPLAIN (FORMAT JSON)`` of the statement as
the application sends it, and again with queryopt's hints applied the way they
would be at run time (a leading hint block, or transaction-local planner
settings). It reports the node types, the indexes each plan uses, whether each
hinted index appears in the hinted plan, and the estimated total costs.
``analyze=True`` runs the statement (twice): never by default. Both EXPLAINs
run inside a transaction that is rolled back, so even an analysed write leaves
no rows behind (sequences and other non-transactional effects still advance).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.errors import Diagnostic

from queryopt.analysis import StatementKind
from queryopt.analysis import analyze as analyze_sql
from queryopt.analysis.sqltext import split_head
from queryopt.config import HintMode
from queryopt.errors import HintError, QueryError
from queryopt.hints.catalog import Catalog, database_identity
from queryopt.hints.effect import HintPlan, hint_plan_active, plan_hints, planner_settings_applied
from queryopt.hints.hintset import HintSet
from queryopt.hints.model import ScanHint
from queryopt.hints.resolve import IndexHintsArg, resolve_hints

__all__ = [
    "HintReport",
    "IndexUsage",
    "PlanComparison",
    "PlanNode",
    "PlanSummary",
    "disabled_nodes",
    "explain",
    "summarize_plan",
]

Params = Sequence[Any] | Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class PlanNode:
    """One node of a plan, flattened in depth-first order."""

    node_type: str
    depth: int
    relation: str | None = None
    alias: str | None = None
    """The name the query uses for the scanned relation (for a Bitmap Index Scan: its heap scan's)."""
    index: str | None = None
    total_cost: float = 0.0
    plan_rows: float = 0.0
    actual_total_time: float | None = None
    actual_rows: float | None = None

    @property
    def label(self) -> str:
        target = f" on {self.relation}" if self.relation else ""
        if self.alias and self.alias != self.relation:
            target += f" {self.alias}"
        using = f" using {self.index}" if self.index else ""
        return f"{self.node_type}{using}{target}"


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """One EXPLAIN result: the text explained, its nodes and costs, and the raw JSON."""

    sql: str
    total_cost: float
    nodes: tuple[PlanNode, ...]
    planning_time_ms: float | None = None
    execution_time_ms: float | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def node_types(self) -> tuple[str, ...]:
        return tuple(node.node_type for node in self.nodes)

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(node.index for node in self.nodes if node.index))

    def uses_index(self, index: str, alias: str | None = None) -> bool:
        return any(node.index == index and (alias is None or node.alias == alias) for node in self.nodes)


@dataclass(frozen=True, slots=True)
class IndexUsage:
    """Whether a hinted index is used on its relation, before and after hinting."""

    relation: str
    index: str
    used_before: bool
    used_after: bool


@dataclass(frozen=True, slots=True)
class HintReport:
    """pg_hint_plan's own account (its ``debug_print`` notice) of the hints it read."""

    used: tuple[str, ...] = ()
    not_used: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    """Syntax errors and other pg_hint_plan messages."""


@dataclass(frozen=True, slots=True)
class PlanComparison:
    """The plans of one statement without and with its hints."""

    sql: str
    hinted_sql: str
    mode: HintMode
    """How the hints took effect: PG_HINT_PLAN, PLANNER_SETTINGS or OFF."""
    hints: HintSet
    settings: tuple[tuple[str, str], ...]
    before: PlanSummary
    after: PlanSummary
    index_usage: tuple[IndexUsage, ...]
    analyzed: bool
    hint_report: HintReport | None = None
    notes: tuple[str, ...] = ()

    @property
    def cost_ratio(self) -> float | None:
        """Estimated total cost after / before (below 1: the hinted plan is estimated cheaper)."""
        return self.after.total_cost / self.before.total_cost if self.before.total_cost else None

    @property
    def plan_changed(self) -> bool:
        return [node.label for node in self.before.nodes] != [node.label for node in self.after.nodes]


def _walk(plan: Mapping[str, Any], depth: int, heap_alias: str | None, heap_relation: str | None) -> Iterator[PlanNode]:
    node_type = str(plan.get("Node Type", "?"))
    alias = plan.get("Alias")
    relation = plan.get("Relation Name")
    if node_type == "Bitmap Index Scan":
        alias, relation = alias or heap_alias, relation or heap_relation
    yield PlanNode(
        node_type=node_type,
        depth=depth,
        relation=relation,
        alias=alias,
        index=plan.get("Index Name"),
        total_cost=float(plan.get("Total Cost", 0.0)),
        plan_rows=float(plan.get("Plan Rows", 0.0)),
        actual_total_time=plan.get("Actual Total Time"),
        actual_rows=plan.get("Actual Rows"),
    )
    if node_type == "Bitmap Heap Scan":
        heap_alias, heap_relation = alias, relation
    for child in plan.get("Plans", ()):
        yield from _walk(child, depth + 1, heap_alias, heap_relation)


def summarize_plan(sql: str, explained: Any) -> PlanSummary:
    """Flatten the JSON of ``EXPLAIN (FORMAT JSON)`` (as psycopg returns it) into a :class:`PlanSummary`."""
    document = explained[0] if isinstance(explained, list) else explained
    root = document["Plan"]
    return PlanSummary(
        sql=sql,
        total_cost=float(root.get("Total Cost", 0.0)),
        nodes=tuple(_walk(root, 0, None, None)),
        planning_time_ms=document.get("Planning Time"),
        execution_time_ms=document.get("Execution Time"),
        raw=explained,
    )


_SECTIONS = {
    "used hint:": "used",
    "not used hint:": "not_used",
    "duplication hint:": "duplicated",
    "error hint:": "errors",
}


def _notice_text(diagnostic: Diagnostic) -> str:
    """The notice as text, read inside the handler (psycopg frees the diagnostic after it returns)."""
    text = diagnostic.message_primary or ""
    return text + (f" ({diagnostic.message_detail})" if diagnostic.message_detail else "")


def _hint_report(notices: Sequence[str]) -> HintReport:
    sections: dict[str, list[str]] = {name: [] for name in _SECTIONS.values()}
    messages: list[str] = []
    for text in notices:
        if not text.startswith("pg_hint_plan:\n"):
            messages.append(text)
            continue
        current: list[str] | None = None
        for line in text.splitlines()[1:]:
            if line in _SECTIONS:
                current = sections[_SECTIONS[line]]
            elif line.strip() and current is not None:
                current.append(line.strip())
    return HintReport(
        tuple(sections["used"]),
        tuple(sections["not_used"]),
        tuple(sections["duplicated"]),
        tuple(sections["errors"]),
        tuple(messages),
    )


_EXPLAINABLE = frozenset(
    {StatementKind.SELECT, StatementKind.INSERT, StatementKind.UPDATE, StatementKind.DELETE, StatementKind.MERGE}
)
_LEADING_EXPLAIN = re.compile(r"explain\b", re.IGNORECASE)


def _explain_prefix(analyze: bool) -> str:
    # Only letters, spaces, commas and parentheses: pg_hint_plan still reads a hint block right after it.
    return "EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS) " if analyze else "EXPLAIN (FORMAT JSON) "


def _run_explain(conn: psycopg.Connection[Any], text: str, params: Params) -> Any:
    try:
        row = conn.execute(text, params).fetchone()
    except psycopg.Error as exc:
        raise QueryError(f"EXPLAIN failed: {exc}", sql=text, sqlstate=getattr(exc, "sqlstate", None)) from exc
    assert row is not None
    return row[0]


def _explain_pair(
    conn: psycopg.Connection[Any], sql: str, params: Params, plan: HintPlan, *, analyze: bool, debug: bool
) -> tuple[PlanSummary, PlanSummary, HintReport | None]:
    prefix = _explain_prefix(analyze)
    with conn.transaction(force_rollback=True):
        before = summarize_plan(sql, _run_explain(conn, prefix + sql, params))
    notices: list[str] = []

    def collect(diagnostic: Diagnostic) -> None:
        notices.append(_notice_text(diagnostic))

    with conn.transaction(force_rollback=True), ExitStack() as stack:
        if debug:
            conn.execute(
                "SELECT set_config('pg_hint_plan.debug_print', 'on', true), "
                "set_config('pg_hint_plan.message_level', 'notice', true)"
            )
            conn.add_notice_handler(collect)
            stack.callback(conn.remove_notice_handler, collect)
        stack.enter_context(planner_settings_applied(conn, plan.settings))
        after = summarize_plan(plan.sql, _run_explain(conn, prefix + plan.sql, params))
    return before, after, _hint_report(notices) if debug else None


def _index_usage(hints: HintSet, before: PlanSummary, after: PlanSummary) -> tuple[IndexUsage, ...]:
    usage = []
    for hint in hints:
        if isinstance(hint, ScanHint) and not hint.kind.is_regexp:
            for index in hint.indexes:
                usage.append(
                    IndexUsage(
                        hint.relation,
                        index,
                        before.uses_index(index, hint.relation),
                        after.uses_index(index, hint.relation),
                    )
                )
    return tuple(usage)


def explain(
    conninfo_or_conn: str | psycopg.Connection[Any],
    sql: str,
    params: Params = None,
    hints: IndexHintsArg = None,
    *,
    analyze: bool = False,
    mode: HintMode = HintMode.AUTO,
    catalog: Catalog | None = None,
) -> PlanComparison:
    """EXPLAIN ``sql`` without and with ``hints`` (any form ``index_hints`` accepts) and compare the plans.

    ``conninfo_or_conn`` is a libpq string (a connection is opened and closed)
    or an open psycopg connection. Hints are validated against the query and
    the catalog first (:class:`~queryopt.HintError`). ``analyze=True`` runs the
    statement; the default only plans it.
    """
    body = sql[split_head(sql).body_start :]
    if _LEADING_EXPLAIN.match(body):
        raise HintError("pass the statement itself: explain() adds EXPLAIN (FORMAT JSON) on its own", sql=sql)
    with ExitStack() as stack:
        if isinstance(conninfo_or_conn, str):
            conn: psycopg.Connection[Any] = stack.enter_context(psycopg.connect(conninfo_or_conn, autocommit=True))
        else:
            conn = conninfo_or_conn
        analysis = analyze_sql(sql)
        if analysis.kind not in _EXPLAINABLE:
            raise HintError(
                f"EXPLAIN takes SELECT, INSERT, UPDATE, DELETE or MERGE, not a {analysis.kind.value} statement", sql=sql
            )
        given = 0 if params is None else len(params)
        if analysis.placeholder_count and given == 0:
            raise QueryError(
                f"the statement has {analysis.placeholder_count} placeholder(s) but no parameter values were given: "
                "pass one value per placeholder (queryopt explain: --param VALUE, once for each)",
                sql=sql,
            )
        catalog = catalog if catalog is not None else Catalog.for_connection(conn)
        hint_set = resolve_hints(analysis, hints, catalog, conn=conn)
        active = hint_plan_active(conn)
        plan = plan_hints(
            sql,
            hint_set,
            mode=mode,
            hint_plan_active=active,
            has_params=params is not None,
            database=str(database_identity(conn)),
        )
        debug = plan.mode is HintMode.PG_HINT_PLAN and active and bool(hint_set)
        before, after, report = _explain_pair(conn, sql, params, plan, analyze=analyze, debug=debug)
    notes = _notes(plan, active, after)
    return PlanComparison(
        sql=sql,
        hinted_sql=plan.sql,
        mode=plan.mode,
        hints=hint_set,
        settings=plan.settings,
        before=before,
        after=after,
        index_usage=_index_usage(hint_set, before, after),
        analyzed=analyze,
        hint_report=report,
        notes=notes,
    )


_DISABLE_COST = 1.0e10  # what PostgreSQL adds to the cost of a plan node whose method is switched off


def disabled_nodes(plan: PlanSummary) -> tuple[PlanNode, ...]:
    """Nodes whose own method was switched off (their cost carries ``disable_cost``, their children's does not)."""
    nodes = plan.nodes
    found = []
    for position, node in enumerate(nodes):
        if node.total_cost < _DISABLE_COST:
            continue
        children = []
        for later in nodes[position + 1 :]:
            if later.depth <= node.depth:
                break
            if later.depth == node.depth + 1:
                children.append(later)
        if not any(child.total_cost >= _DISABLE_COST for child in children):
            found.append(node)
    return tuple(found)


def _notes(plan: HintPlan, active: bool, after: PlanSummary) -> tuple[str, ...]:
    notes = []
    disabled = disabled_nodes(after)
    if disabled:
        notes.append(
            "the hinted plan still needs a method the hints switched off ("
            + "; ".join(node.label for node in disabled)
            + "): its cost includes PostgreSQL's penalty of 1e10, so the estimates are not comparable"
        )
    if not plan.hints:
        notes.append("no hints were given: both plans are the statement as sent")
    if plan.mode is HintMode.PG_HINT_PLAN and not active:
        notes.append("pg_hint_plan is not active in this database: the hint block has no effect")
    if plan.mode is HintMode.PLANNER_SETTINGS and plan.hints:
        notes.append(
            "pg_hint_plan is not used: hints became planner settings for the whole statement "
            "(the planner still chooses the index)"
        )
    if plan.ignored:
        notes.append("not applied in this mode: " + " ".join(hint.render() for hint in plan.ignored))
    return tuple(notes)
