"""Planning "what if this index existed": HypoPG hypothetical indexes and generic plans.

HypoPG's indexes live in the memory of one backend and are seen by that
backend's planner only: nothing is written, nothing locked, nobody else
affected. Every statement is planned, never executed (plain ``EXPLAIN``), in a
read-only session.

A statement with placeholders is planned as a generic plan: on PostgreSQL 16+
``EXPLAIN (GENERIC_PLAN)``; before, ``PREPARE`` then ``EXPLAIN EXECUTE`` with
``plan_cache_mode = force_generic_plan``, prepared afresh for each costing
because a cached generic plan does not notice a hypothetical index created
after it. With recorded parameter values the statement is planned for them
(a custom plan) instead.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from queryopt.advisor.candidates import IndexCandidate
from queryopt.errors import AdvisorError
from queryopt.hints.identifiers import RESERVED_KEYWORDS

__all__ = [
    "HypotheticalIndex",
    "Plan",
    "PlannedStatement",
    "WhatIf",
    "check_hypopg",
    "hypopg_installed",
    "index_statement",
    "missing_hypopg",
]

PLANNING_TIMEOUT_MS = 10_000
_SIMPLE = re.compile(r"[a-z_][a-z0-9_]*")
_names = itertools.count(1)


@dataclass(frozen=True, slots=True)
class PlannedStatement:
    """A statement as the advisor plans it: ``$n`` text, parameter count, recorded values if any."""

    text: str
    parameters: int
    values: tuple[object, ...] | None = None


@dataclass(frozen=True, slots=True)
class HypotheticalIndex:
    oid: int
    name: str
    """HypoPG's name, ``<oid>btree_table_col``: how plans refer to it."""
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Plan:
    cost: float
    indexes: frozenset[str]
    """Names of every index the plan reads."""


def missing_hypopg(server_version: int, *, available: bool) -> str:
    """What to do when the database lacks HypoPG: install the package, or only create the extension.

    >>> "install postgresql-15-hypopg (Debian/Ubuntu" in missing_hypopg(150004, available=False)
    True
    >>> missing_hypopg(160001, available=True).endswith("this database lacks: run CREATE EXTENSION hypopg")
    True
    """
    if available:
        return (
            "index advice needs the HypoPG extension, which the server has but this database lacks: "
            "run CREATE EXTENSION hypopg"
        )
    major = server_version // 10000
    return (
        f"index advice needs the HypoPG extension: install postgresql-{major}-hypopg (Debian/Ubuntu; "
        f"hypopg_{major} on RHEL), then run CREATE EXTENSION hypopg in the database"
    )


def check_hypopg(conn: psycopg.Connection[Any]) -> None:
    """Raise :class:`AdvisorError` saying what to do when HypoPG is not usable in this database."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").fetchone():
        return
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() is not None
    raise AdvisorError(missing_hypopg(conn.info.server_version, available=available))


def _name(identifier: str) -> sql.Composable:
    """Bare when PostgreSQL would read it back unchanged (readable DDL), else quoted by psycopg."""
    if _SIMPLE.fullmatch(identifier) and identifier not in RESERVED_KEYWORDS:
        return sql.SQL(identifier)
    return sql.Identifier(identifier)


def index_statement(
    candidate: IndexCandidate, schema: str, table: str, *, name: str | None = None, concurrently: bool = False
) -> sql.Composed:
    """``CREATE INDEX [CONCURRENTLY] [name] ON schema.table (cols)``, identifiers quoted where they need it.

    >>> from queryopt.advisor.candidates import IndexCandidate
    >>> c = IndexCandidate((None, "Order"), ("user", "created_at"), (False, True))
    >>> index_statement(c, "public", "Order", name="order_idx", concurrently=True).as_string()
    'CREATE INDEX CONCURRENTLY order_idx ON public."Order" ("user", created_at DESC)'
    """
    keys = sql.SQL(", ").join(
        sql.SQL("{} DESC").format(_name(column)) if descending else _name(column)
        for column, descending in zip(candidate.columns, candidate.descending, strict=True)
    )
    return sql.SQL("CREATE INDEX {concurrently}{name}ON {schema}.{table} ({keys})").format(
        concurrently=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.SQL("{} ").format(_name(name)) if name else sql.SQL(""),
        schema=_name(schema),
        table=_name(table),
        keys=keys,
    )


def _index_names(node: dict[str, Any]) -> Iterator[str]:
    name = node.get("Index Name")
    if isinstance(name, str):
        yield name
    for child in node.get("Plans", ()):
        yield from _index_names(child)


class WhatIf:
    """One read-only planning session with HypoPG on ``conn`` (autocommit; the session is the advisor's own)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._generic_explain = conn.info.server_version >= 160000
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(PLANNING_TIMEOUT_MS)))
        # HypoPG's functions by their schema: the connection's search_path need not include it.
        found = conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'hypopg'"
        ).fetchone()
        if found is None:
            raise AdvisorError(missing_hypopg(conn.info.server_version, available=True))
        self._hypopg = sql.Identifier(str(found[0]))
        self.reset()
        self.plans = 0
        """How many statements were planned (for the benchmark and the curious)."""

    def create(self, candidate: IndexCandidate, schema: str, table: str) -> HypotheticalIndex:
        statement = index_statement(candidate, schema, table).as_string(self._conn)
        create = sql.SQL("SELECT indexrelid, indexname FROM {}.hypopg_create_index(%s)").format(self._hypopg)
        row = self._conn.execute(create, [statement]).fetchone()
        if row is None:
            raise AdvisorError(f"HypoPG did not create a hypothetical index for {statement}")
        oid, name = int(row[0]), str(row[1])
        size = self._conn.execute(sql.SQL("SELECT {}.hypopg_relation_size(%s)").format(self._hypopg), [oid]).fetchone()
        return HypotheticalIndex(oid, name, int(size[0]) if size is not None and size[0] is not None else 0)

    def drop(self, index: HypotheticalIndex) -> None:
        self._conn.execute(sql.SQL("SELECT {}.hypopg_drop_index(%s)").format(self._hypopg), [index.oid])

    def reset(self) -> None:
        self._conn.execute(sql.SQL("SELECT {}.hypopg_reset()").format(self._hypopg))

    def plan(self, statement: PlannedStatement) -> Plan:
        """The planner's estimate for ``statement`` with the indexes (real and hypothetical) that exist now."""
        self.plans += 1
        if statement.parameters == 0:
            document = self._explain(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(statement.text))
        elif statement.values is None and self._generic_explain:
            document = self._explain(sql.SQL("EXPLAIN (GENERIC_PLAN, FORMAT JSON) ") + sql.SQL(statement.text))
        else:
            document = self._explain_prepared(statement)
        root = document[0]["Plan"]
        return Plan(float(root["Total Cost"]), frozenset(_index_names(root)))

    def _explain(self, query: sql.Composed) -> Any:
        row = self._conn.execute(query).fetchone()
        if row is None:
            raise AdvisorError("EXPLAIN returned no plan")
        value = row[0]
        return json.loads(value) if isinstance(value, str) else value

    def _explain_prepared(self, statement: PlannedStatement) -> Any:
        name = sql.Identifier(f"queryopt_advise_{next(_names)}")
        mode = "force_generic_plan" if statement.values is None else "force_custom_plan"
        values: Sequence[object] = statement.values if statement.values is not None else [None] * statement.parameters
        self._conn.execute(sql.SQL("PREPARE {} AS ").format(name) + sql.SQL(statement.text))
        try:
            self._conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Literal(mode)))
            arguments = sql.SQL(", ").join(sql.Literal(value) for value in values)
            return self._explain(sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {} ({})").format(name, arguments))
        finally:
            self._conn.execute(sql.SQL("DEALLOCATE {}").format(name))


def hypopg_installed(dsn: str) -> bool:
    """True when the database at ``dsn`` has the HypoPG extension (False when unreachable)."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").fetchone() is not None
    except psycopg.Error:
        return False
