"""``advise()``: from the recorded workload to index advice, costed with HypoPG, never creating anything
unless asked (``apply=True``)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg

from queryopt.advisor.catalog import read_tables
from queryopt.advisor.model import Advice, IndexAdvice, QueryEffect, UnusedIndex
from queryopt.advisor.naming import index_name
from queryopt.advisor.planning import Candidate, HypoCosting, Workbench, first_line, replanner, table_names
from queryopt.advisor.selection import Choice, Option, select_indexes
from queryopt.advisor.verify import create_indexes, verification
from queryopt.advisor.whatif import WhatIf, check_hypopg, index_statement
from queryopt.advisor.workload import merge, read_pg_stat_statements, read_slow_queries
from queryopt.config import parse_duration
from queryopt.errors import AdvisorError, ConfigurationError

__all__ = ["DEFAULT_WRITE_COST_MS", "advise"]

DEFAULT_WRITE_COST_MS = 0.01
"""Upkeep of one B-tree per row written, in ms. Measured here at 2-4 µs per row with the table in memory;
WAL, checkpoints and replicas add to it, hence 10 µs."""
DEFAULT_MIN_IMPROVEMENT = 0.005
DEFAULT_MAX_INDEXES = 10


def _window(since: str | float | timedelta) -> float:
    if isinstance(since, timedelta):
        seconds = since.total_seconds()
    elif isinstance(since, str):
        seconds = parse_duration(since, name="since", require_unit=True)
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
            tables = read_tables(conn, (name for q in workload for name in table_names(q)))
            whatif = WhatIf(conn)
            try:
                run = Workbench(conn, whatif, workload, tables)
                advice, hypothetical_names = _advise(
                    run, start, end, database, sources, budget_bytes, max_indexes, min_improvement, write_cost_ms
                )
                if apply:
                    whatif.reset()
                    created, failed = create_indexes(dsn, advice.indexes)
                    names = {name: name for name in created}
                    advice = verification(
                        advice, replanner(run), applied=True, names=names, created=created, failed=failed
                    )
                elif verify:
                    advice = verification(advice, replanner(run), applied=False, names=hypothetical_names)
                return replace(advice, plans=whatif.plans)
            finally:
                if not conn.closed and not conn.broken:
                    whatif.reset()
    except psycopg.Error as exc:
        raise AdvisorError(f"cannot advise: {first_line(exc)}") from exc  # no DSN: it may hold a password


def _advise(
    run: Workbench,
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
    costing = HypoCosting(run.whatif, statements, entries)
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
    entries: dict[int, Candidate],
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
    run: Workbench,
    choices: list[Choice],
    costing: HypoCosting,
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


def _unused(run: Workbench, used: set[str]) -> tuple[UnusedIndex, ...]:
    found = []
    for facts in sorted({id(f): f for f in run.tables.values()}.values(), key=lambda f: f.qualified_name):
        if not any(facts.oid in s.tables for s in run.statements):
            continue
        for index in facts.indexes:
            if index.constraint or index.unique or not index.valid or index.name in used:
                continue
            found.append(UnusedIndex(facts.qualified_name, index.name, index.definition, index.size_bytes, index.scans))
    return tuple(found)
