"""The planning state of one ``advise()`` call: the workload's statements, their candidates, their costs.

:class:`Workbench` plans each statement once as it is (the baseline), gathers
the candidate indexes of every statement, and costs each candidate alone (its
size, and every statement on its table re-planned with it): the selection's
first round. :class:`HypoCosting` is the selection's costing on the same HypoPG
session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from queryopt.advisor.candidates import IndexCandidate, candidate_indexes
from queryopt.advisor.catalog import TableFacts
from queryopt.advisor.model import SkippedQuery
from queryopt.advisor.predicates import TableName, column_uses
from queryopt.advisor.selection import Option
from queryopt.advisor.statements import PlanningTextError, planning_text
from queryopt.advisor.verify import Replanned
from queryopt.advisor.whatif import HypotheticalIndex, PlannedStatement, WhatIf
from queryopt.advisor.workload import WorkloadQuery

__all__ = [
    "Candidate",
    "HypoCosting",
    "Statement",
    "Workbench",
    "first_line",
    "planned_statement",
    "recorded_values",
    "replanner",
    "table_names",
]


@dataclass(slots=True)
class Statement:
    """A workload statement the planner accepted, with its cost and the indexes it reads as things are."""

    query: WorkloadQuery
    planned: PlannedStatement
    tables: frozenset[int]
    base_cost: float = 0.0
    base_indexes: frozenset[str] = frozenset()


@dataclass(slots=True)
class Candidate:
    """A candidate index on a resolved table, with the statements on that table and their costs with it alone."""

    key: int
    candidate: IndexCandidate
    table: TableFacts
    hypothetical: HypotheticalIndex | None = None
    queries: frozenset[int] = frozenset()
    initial_costs: dict[int, float] = field(default_factory=dict)


class HypoCosting:
    """The selection's :class:`~queryopt.advisor.selection.Costing` on a HypoPG session."""

    def __init__(self, whatif: WhatIf, statements: list[Statement], candidates: dict[int, Candidate]) -> None:
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


def recorded_values(query: WorkloadQuery, parameters: int) -> tuple[object, ...] | None:
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


def planned_statement(query: WorkloadQuery) -> PlannedStatement:
    """What to ask the planner for ``query``: its ``$n`` text, and the recorded values when there are."""
    text, parameters = planning_text(query.sql_text, query.analysis)
    return PlannedStatement(text, parameters, recorded_values(query, parameters))


def first_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@dataclass(slots=True)
class Workbench:
    """The workload, its tables and the HypoPG session of one ``advise()`` call."""

    conn: psycopg.Connection[Any]
    whatif: WhatIf
    workload: list[WorkloadQuery]
    tables: dict[TableName, TableFacts]
    statements: list[Statement] = field(default_factory=list)
    skipped: list[SkippedQuery] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def plan_baseline(self) -> None:
        for query in self.workload:
            try:
                planned = planned_statement(query)
            except PlanningTextError as exc:
                self._skip(query, str(exc))
                continue
            oids = frozenset(
                self.tables[(t.schema, t.name)].oid for t in query.analysis.tables if (t.schema, t.name) in self.tables
            )
            if not oids:
                self._skip(query, "none of its relations is a table of this database (dropped since, or views)")
                continue
            statement = Statement(query, planned, oids)
            try:
                plan = self.whatif.plan(planned)
            except psycopg.Error as exc:
                self._skip(query, f"cannot be planned: {first_line(exc)}")
                continue
            statement.base_cost, statement.base_indexes = plan.cost, plan.indexes
            self.statements.append(statement)

    def _skip(self, query: WorkloadQuery, reason: str) -> None:
        self.skipped.append(SkippedQuery(query.fingerprint, query.analysis.normalized_sql, reason))

    def candidates(self) -> dict[int, Candidate]:
        by_table: dict[int, list[int]] = {}
        for position, statement in enumerate(self.statements):
            for oid in statement.tables:
                by_table.setdefault(oid, []).append(position)
        found: dict[IndexCandidate, Candidate] = {}
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
                    found[resolved] = Candidate(len(found), resolved, facts, queries=frozenset(by_table[facts.oid]))
        return {entry.key: entry for entry in found.values()}

    def _columns_of(self, table: TableName) -> frozenset[str] | None:
        facts = self.tables.get(table)
        return facts.columns if facts is not None else None

    def cost_alone(self, entries: dict[int, Candidate]) -> None:
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


def table_names(query: WorkloadQuery) -> list[TableName]:
    return [(t.schema, t.name) for t in query.analysis.tables]


def replanner(run: Workbench) -> Callable[[], Replanned]:
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
