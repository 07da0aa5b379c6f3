"""``advise()``: from the recorded workload to index advice, costed with HypoPG, never creating anything
unless asked (``apply=True``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from queryopt.advisor.candidates import IndexCandidate, candidate_indexes
from queryopt.advisor.catalog import TableFacts, read_tables
from queryopt.advisor.model import Advice, IndexAdvice, QueryEffect, SkippedQuery, UnusedIndex
from queryopt.advisor.naming import index_name
from queryopt.advisor.predicates import TableName, column_uses
from queryopt.advisor.selection import Choice, Option, select_indexes
from queryopt.advisor.statements import PlanningTextError, planning_text
from queryopt.advisor.verify import Replanned, create_indexes, verification
from queryopt.advisor.whatif import HypotheticalIndex, PlannedStatement, WhatIf, check_hypopg, index_statement
from queryopt.advisor.workload import WorkloadQuery, merge, read_pg_stat_statements, read_slow_queries
from queryopt.config import parse_duration
from queryopt.errors import AdvisorError, ConfigurationError

__all__ = ["DEFAULT_WRITE_COST_MS", "advise"]

DEFAULT_WRITE_COST_MS = 0.01
"""Upkeep of one B-tree per row written, in ms. Measured here at 2-4 µs per row with the table in memory;
WAL, checkpoints and replicas add to it, hence 10 µs."""
DEFAULT_MIN_IMPROVEMENT = 0.005
DEFAULT_MAX_INDEXES = 10


@dataclass(slots=True)
class _Statement:
    query: WorkloadQuery
    planned: PlannedStatement
    tables: frozenset[int]
    base_cost: float = 0.0
    base_indexes: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Candidate:
    key: int
    candidate: IndexCandidate
    table: TableFacts
    hypothetical: HypotheticalIndex | None = None
    queries: frozenset[int] = frozenset()
    initial_costs: dict[int, float] = field(default_factory=dict)


class _HypoCosting:
    """The selection's :class:`~queryopt.advisor.selection.Costing` on a HypoPG session."""

    def __init__(self, whatif: WhatIf, statements: list[_Statement], candidates: dict[int, _Candidate]) -> None:
        self.whatif = whatif
        self.statements = statements
        self.candidates = candidates
        self.chosen: dict[int, HypotheticalIndex] = {}

    def _create(self, key: int) -> HypotheticalIndex:
        entry = self.candidates[key]
        return self.whatif.create(entry.candidate, entry.table.schema, entry.table.name)

    def _plan_costs(self, queries: frozenset[int]) -> dict[int, float]:
        costs = {}
        for query in queries:
            statement = self.statements[query]
            try:
                costs[query] = self.whatif.plan(statement.planned).cost
            except psycopg.Error:
                costs[query] = statement.base_cost
        return costs

    def costs(self, queries: frozenset[int], extra: Option | None) -> Mapping[int, float]:
        if extra is None:
            return self._plan_costs(queries)
        hypothetical = self._create(extra.key)
        try:
            return self._plan_costs(queries)
        finally:
            self.whatif.drop(hypothetical)

    def choose(self, option: Option) -> None:
        self.chosen[option.key] = self._create(option.key)

    def unchoose(self, option: Option) -> None:
        self.whatif.drop(self.chosen.pop(option.key))


def _window(since: str | float | timedelta) -> float:
    if isinstance(since, timedelta):
        seconds = since.total_seconds()
    elif isinstance(since, str):
        seconds = parse_duration(since, name="since")
    elif isinstance(since, (int, float)) and not isinstance(since, bool):
        seconds = float(since)
    else:
        raise ConfigurationError(f"since must be a duration such as 24h, got {since!r}", setting="since")
    if not 0 < seconds < math.inf:
        raise ConfigurationError(f"since must be a positive duration, got {since!r}", setting="since")
    return seconds


def _check_options(max_indexes: int, budget_mb: float | None, min_improvement: float, write_cost_ms: float) -> None:
    if isinstance(max_indexes, bool) or not isinstance(max_indexes, int) or max_indexes < 1:
        raise ConfigurationError(f"max_indexes must be an integer >= 1, got {max_indexes!r}", setting="max_indexes")
    if budget_mb is not None and (
        isinstance(budget_mb, bool) or not isinstance(budget_mb, (int, float)) or not 0 < budget_mb < math.inf
    ):
        raise ConfigurationError(f"budget_mb must be a positive number, got {budget_mb!r}", setting="budget_mb")
    if not isinstance(min_improvement, (int, float)) or not 0 <= min_improvement < 1:
        raise ConfigurationError(
            f"min_improvement must be a fraction in [0, 1), got {min_improvement!r}", setting="min_improvement"
        )
    if not isinstance(write_cost_ms, (int, float)) or not 0 <= write_cost_ms < math.inf:
        raise ConfigurationError(f"write_cost_ms must be >= 0, got {write_cost_ms!r}", setting="write_cost_ms")


def _recorded_values(query: WorkloadQuery, parameters: int) -> tuple[object, ...] | None:
    """The slowest call's recorded parameters in ``$n`` order, when they fit the statement."""
    if query.params_json is None or parameters == 0:
        return None
    try:
        recorded = json.loads(query.params_json)
    except ValueError:
        return None
    if isinstance(recorded, dict):
        names = query.analysis.placeholder_names
        if len(names) != parameters or not all(name in recorded for name in names):
            return None
        values = [recorded[name] for name in names]
    elif isinstance(recorded, list) and len(recorded) == parameters:
        values = recorded
    else:
        return None
    return tuple(v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v) for v in values)


def _statement(query: WorkloadQuery) -> PlannedStatement:
    text, parameters = planning_text(query.sql_text, query.analysis)
    return PlannedStatement(text, parameters, _recorded_values(query, parameters))


def _first_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@dataclass(slots=True)
class _Run:
    conn: psycopg.Connection[Any]
    whatif: WhatIf
    workload: list[WorkloadQuery]
    tables: dict[TableName, TableFacts]
    statements: list[_Statement] = field(default_factory=list)
    skipped: list[SkippedQuery] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def plan_baseline(self) -> None:
        for query in self.workload:
            try:
                planned = _statement(query)
            except PlanningTextError as exc:
                self._skip(query, str(exc))
                continue
            oids = frozenset(
                self.tables[(t.schema, t.name)].oid for t in query.analysis.tables if (t.schema, t.name) in self.tables
            )
            if not oids:
                self._skip(query, "none of its relations is a table of this database (dropped since, or views)")
                continue
            statement = _Statement(query, planned, oids)
            try:
                plan = self.whatif.plan(planned)
            except psycopg.Error as exc:
                self._skip(query, f"cannot be planned: {_first_line(exc)}")
                continue
            statement.base_cost, statement.base_indexes = plan.cost, plan.indexes
            self.statements.append(statement)

    def _skip(self, query: WorkloadQuery, reason: str) -> None:
        self.skipped.append(SkippedQuery(query.fingerprint, query.analysis.normalized_sql, reason))

    def candidates(self) -> dict[int, _Candidate]:
        by_table: dict[int, list[int]] = {}
        for position, statement in enumerate(self.statements):
            for oid in statement.tables:
                by_table.setdefault(oid, []).append(position)
        found: dict[IndexCandidate, _Candidate] = {}
        for statement in self.statements:
            for use in column_uses(statement.query.sql_text, self._columns_of):
                facts = self.tables.get(use.table)
                if facts is None or use.empty:
                    continue
                for candidate in candidate_indexes(use, facts.distinct):
                    resolved = IndexCandidate((facts.schema, facts.name), candidate.columns, candidate.descending)
                    if resolved in found or not set(resolved.columns) <= facts.columns:
                        continue
                    if facts.served_by_existing(resolved):
                        continue
                    found[resolved] = _Candidate(len(found), resolved, facts, queries=frozenset(by_table[facts.oid]))
        return {entry.key: entry for entry in found.values()}

    def _columns_of(self, table: TableName) -> frozenset[str] | None:
        facts = self.tables.get(table)
        return facts.columns if facts is not None else None

    def cost_alone(self, entries: dict[int, _Candidate]) -> None:
        """Each candidate's size and its statements' costs with it alone: the selection's first round."""
        for key in list(entries):
            entry = entries[key]
            try:
                hypothetical = self.whatif.create(entry.candidate, entry.table.schema, entry.table.name)
            except psycopg.Error:
                del entries[key]  # a type HypoPG or B-tree cannot index (json, …): not a candidate
                continue
            try:
                entry.hypothetical = hypothetical
                for query in entry.queries:
                    statement = self.statements[query]
                    try:
                        entry.initial_costs[query] = self.whatif.plan(statement.planned).cost
                    except psycopg.Error:
                        entry.initial_costs[query] = statement.base_cost
            finally:
                self.whatif.drop(hypothetical)


def advise(
    dsn: str,
    *,
    recorder_dsn: str | None = None,
    schema: str = "queryopt",
    since: str | float | timedelta = "24h",
    budget_mb: float | None = None,
    max_indexes: int = DEFAULT_MAX_INDEXES,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
    write_cost_ms: float = DEFAULT_WRITE_COST_MS,
    use_pg_stat_statements: bool = True,
    verify: bool = False,
    apply: bool = False,
) -> Advice:
    """Index advice for the database at ``dsn`` from its recorded workload.

    ``recorder_dsn`` is where ``<schema>.slow_queries`` lives (default: ``dsn``); ``since`` the window of
    recorded slow queries (``"24h"``, seconds or a timedelta). At most ``max_indexes`` indexes totalling
    at most ``budget_mb`` are advised, each saving at least ``min_improvement`` of the workload's recorded
    time after its upkeep (``write_cost_ms`` per row written to its table). Nothing is created unless
    ``apply`` is true: then each index is built with ``CREATE INDEX CONCURRENTLY`` and the workload is
    re-planned (``verify`` alone re-plans with the hypothetical indexes). Needs HypoPG in the database;
    raises :class:`~queryopt.AdvisorError` saying what to install or run otherwise.
    """
    window_s = _window(since)
    _check_options(max_indexes, budget_mb, min_improvement, write_cost_ms)
    budget_bytes = int(budget_mb * 1024 * 1024) if budget_mb is not None else None
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            check_hypopg(conn)
            row = conn.execute("SELECT current_database(), now()").fetchone()
            assert row is not None
            database, now = str(row[0]), row[1]
            end: datetime = now.astimezone(UTC)
            start = end - timedelta(seconds=window_s)
            if recorder_dsn is None or recorder_dsn == dsn:
                slow = read_slow_queries(conn, schema, database, start, end)
            else:
                with psycopg.connect(recorder_dsn, autocommit=True) as recorder:
                    slow = read_slow_queries(recorder, schema, database, start, end)
            from_pgss = read_pg_stat_statements(conn, schema) if use_pg_stat_statements else []
            workload = merge(slow, from_pgss)
            sources = ("slow_queries", "pg_stat_statements") if from_pgss else ("slow_queries",)
            tables = read_tables(conn, (name for q in workload for name in _names(q)))
            whatif = WhatIf(conn)
            try:
                run = _Run(conn, whatif, workload, tables)
                advice, hypothetical_names = _advise(
                    run, start, end, database, sources, budget_bytes, max_indexes, min_improvement, write_cost_ms
                )
                if apply:
                    whatif.reset()
                    created, failed = create_indexes(dsn, advice.indexes)
                    names = {name: name for name in created}
                    advice = verification(
                        advice, _replanner(run), applied=True, names=names, created=created, failed=failed
                    )
                elif verify:
                    advice = verification(advice, _replanner(run), applied=False, names=hypothetical_names)
                return replace(advice, plans=whatif.plans)
            finally:
                if not conn.closed and not conn.broken:
                    whatif.reset()
    except psycopg.Error as exc:
        raise AdvisorError(f"cannot advise: {_first_line(exc)}") from exc  # no DSN: it may hold a password


def _names(query: WorkloadQuery) -> list[TableName]:
    return [(t.schema, t.name) for t in query.analysis.tables]


def _replanner(run: _Run) -> Callable[[], Replanned]:
    def replan() -> Replanned:
        found: dict[str, tuple[float, float, frozenset[str]]] = {}
        for statement in run.statements:
            try:
                plan = run.whatif.plan(statement.planned)
            except psycopg.Error:
                continue
            found[statement.query.fingerprint] = (statement.base_cost, plan.cost, plan.indexes)
        return found

    return replan


def _advise(
    run: _Run,
    start: datetime,
    end: datetime,
    database: str,
    sources: tuple[str, ...],
    budget_bytes: int | None,
    max_indexes: int,
    min_improvement: float,
    write_cost_ms: float,
) -> tuple[Advice, dict[str, str]]:
    """The advice, and the advised name of each chosen hypothetical index (by HypoPG's name)."""
    run.plan_baseline()
    for facts in {id(f): f for f in run.tables.values()}.values():
        if not facts.analyzed:
            run.notes.append(f"{facts.qualified_name} has no statistics: run ANALYZE {facts.qualified_name}")
    if not run.workload:
        run.notes.append(f"no statement recorded between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC")
    if any(s.planned.parameters and s.planned.values is None for s in run.statements):
        run.notes.append("statements with parameters were planned as generic plans (no recorded values)")
    statements = run.statements
    rates = {position: s.query.ms_per_hour for position, s in enumerate(statements)}
    base = {position: s.base_cost for position, s in enumerate(statements)}
    workload_rate = sum(rates.values())
    entries = run.candidates()
    run.cost_alone(entries)
    options = [
        Option(key, e.hypothetical.size_bytes if e.hypothetical else 0,
               e.table.writes_per_second * 3600.0 * write_cost_ms, e.queries)
        for key, e in entries.items()
    ]  # fmt: skip
    costing = _HypoCosting(run.whatif, statements, entries)
    choices = select_indexes(
        options,
        base=base,
        rates=rates,
        costing=costing,
        min_gain=min_improvement * workload_rate,
        max_indexes=max_indexes,
        budget_bytes=budget_bytes,
        initial={key: e.initial_costs for key, e in entries.items()},
    )
    run.notes.extend(_upkeep_notes(entries, options, choices, base, rates, min_improvement * workload_rate))
    final: dict[int, tuple[float, frozenset[str]]] = {}
    touched = frozenset(q for choice in choices for q in choice.option.queries)
    for query in sorted(touched):
        try:
            plan = run.whatif.plan(statements[query].planned)
        except psycopg.Error:
            continue
        final[query] = (min(plan.cost, base[query]), plan.indexes)
    pairs = _index_advice(run, choices, costing, final, rates, workload_rate)
    indexes = [index for index, _ in pairs]
    hypothetical_names = {hypothetical: index.name for index, hypothetical in pairs}
    used = {name for s in statements for name in s.base_indexes} | {n for _, names in final.values() for n in names}
    saving = sum(rates[q] * (1 - cost / base[q]) for q, (cost, _) in final.items() if base[q] > 0)
    advice = Advice(
        generated_at=datetime.now(UTC),
        database=database,
        window_start=start,
        window_end=end,
        sources=sources,
        fingerprints=len(run.workload),
        workload_ms_per_hour=workload_rate,
        estimated_saving=saving / workload_rate if workload_rate > 0 else 0.0,
        budget_bytes=budget_bytes,
        max_indexes=max_indexes,
        indexes=tuple(indexes),
        unused_indexes=_unused(run, used),
        skipped=tuple(run.skipped),
        notes=tuple(run.notes),
    )
    return advice, hypothetical_names


def _upkeep_notes(
    entries: dict[int, _Candidate],
    options: list[Option],
    choices: list[Choice],
    base: dict[int, float],
    rates: dict[int, float],
    min_gain: float,
) -> list[str]:
    """A note per table where some index would have paid for itself but for the writes it must keep up with."""
    chosen = {choice.option.key for choice in choices}
    worst: dict[str, tuple[float, Option]] = {}
    for option in options:
        if option.key in chosen or option.write_cost <= 0:
            continue
        costs = entries[option.key].initial_costs
        saved = sum(
            rates[q] * max(0.0, base[q] - costs.get(q, base[q])) / base[q] for q in option.queries if base[q] > 0
        )
        table = entries[option.key].table
        known = worst.get(table.qualified_name)
        if saved >= min_gain and saved - option.write_cost < min_gain and (known is None or saved > known[0]):
            worst[table.qualified_name] = (saved, option)
    return [
        f"{name}: an index would save ~{saved:,.0f} ms/h of recorded time but cost ~{option.write_cost:,.0f} ms/h "
        f"to keep up with {entries[option.key].table.writes_per_second:,.0f} row writes/s (pg_stat_user_tables "
        "since its last reset; a bulk load counts too: pg_stat_reset() after one)"
        for name, (saved, option) in sorted(worst.items())
    ]


def _index_advice(
    run: _Run,
    choices: list[Choice],
    costing: _HypoCosting,
    final: dict[int, tuple[float, frozenset[str]]],
    rates: dict[int, float],
    workload_rate: float,
) -> list[tuple[IndexAdvice, str]]:
    """Each chosen index some final plan uses, with its HypoPG name."""
    advice = []
    taken: set[str] = set()
    for choice in choices:
        entry = costing.candidates[choice.option.key]
        hypothetical = costing.chosen[choice.option.key]
        users = sorted(
            (q for q in choice.option.queries if q in final and hypothetical.name in final[q][1]),
            key=lambda q: (-rates[q], run.statements[q].query.fingerprint),
        )
        if not users:
            continue
        name = index_name(run.conn, entry.table.schema, entry.table.name, entry.candidate.columns, taken)
        taken.add(name)
        statement = index_statement(entry.candidate, entry.table.schema, entry.table.name, name=name, concurrently=True)
        effects = tuple(
            QueryEffect(
                fingerprint=run.statements[q].query.fingerprint,
                normalized_sql=run.statements[q].query.analysis.normalized_sql,
                calls=run.statements[q].query.calls,
                total_ms=run.statements[q].query.total_ms,
                cost_before=run.statements[q].base_cost,
                cost_after=final[q][0],
                share=rates[q] / workload_rate if workload_rate > 0 else 0.0,
            )
            for q in users
        )
        advice.append((
            IndexAdvice(
                table=entry.table.qualified_name,
                columns=entry.candidate.columns,
                descending=entry.candidate.descending,
                name=name,
                create_statement=statement.as_string(run.conn),
                size_bytes=hypothetical.size_bytes,
                queries=effects,
                share=sum(effect.share for effect in effects),
                saved_ms_per_hour=choice.saved,
                write_cost_ms_per_hour=choice.option.write_cost,
                writes_per_second=entry.table.writes_per_second,
            ),
            hypothetical.name,
        ))  # fmt: skip
    return advice


def _unused(run: _Run, used: set[str]) -> tuple[UnusedIndex, ...]:
    found = []
    for facts in sorted({id(f): f for f in run.tables.values()}.values(), key=lambda f: f.qualified_name):
        if not any(facts.oid in s.tables for s in run.statements):
            continue
        for index in facts.indexes:
            if index.constraint or index.unique or not index.valid or index.name in used:
                continue
            found.append(UnusedIndex(facts.qualified_name, index.name, index.definition, index.size_bytes, index.scans))
    return tuple(found)
