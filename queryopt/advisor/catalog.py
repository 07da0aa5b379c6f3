"""What the advisor reads about the workload's tables: columns, statistics, indexes and write rates.

Read once per ``advise()`` call, for the tables the workload names only, in a
handful of catalog queries whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from queryopt.advisor.candidates import IndexCandidate, covers
from queryopt.advisor.predicates import TableName

__all__ = ["ExistingIndex", "TableFacts", "read_tables"]

_RESOLVE = """
SELECT want.schema, want.name, c.oid::bigint, n.nspname, c.relname, c.reltuples::float8,
       EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)
FROM unnest(%s::text[], %s::text[]) AS want(schema, name)
JOIN pg_class c ON c.relname = want.name AND c.relkind IN ('r', 'p', 'm')
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (want.schema IS NOT NULL AND n.nspname = want.schema)
   OR (want.schema IS NULL AND pg_table_is_visible(c.oid))
"""
_COLUMNS = """
SELECT a.attrelid::bigint, a.attname,
       CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * greatest(c.reltuples, 1) ELSE s.n_distinct END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
     AND NOT s.inherited
WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
"""
# Key columns by name (NULL for an expression) with their direction (indoption bit 0 = DESC).
_INDEXES = """
SELECT x.indrelid::bigint, i.relname, am.amname, x.indisunique, x.indisprimary, x.indisvalid AND x.indisready,
       x.indpred IS NOT NULL,
       ARRAY(SELECT a.attname FROM generate_series(0, x.indnkeyatts - 1) AS k
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k] AND x.indkey[k] <> 0
             ORDER BY k),
       ARRAY(SELECT (x.indoption[k] & 1) = 1 FROM generate_series(0, x.indnkeyatts - 1) AS k ORDER BY k),
       pg_relation_size(x.indexrelid), s.idx_scan, pg_get_indexdef(x.indexrelid),
       EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
WHERE x.indrelid = ANY(%s::oid[])
"""
_WRITES = """
SELECT t.relid::bigint, t.n_tup_ins + t.n_tup_upd,
       greatest(extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time())), 1)::float8
FROM pg_stat_user_tables t, pg_stat_database d
WHERE t.relid = ANY(%s::oid[]) AND d.datname = current_database()
"""


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    """An index the table already has."""

    name: str
    method: str
    unique: bool
    primary: bool
    valid: bool
    partial: bool
    key_columns: tuple[str | None, ...]
    """Column names in key order; ``None`` for an expression."""
    key_descending: tuple[bool, ...]
    size_bytes: int
    scans: int | None
    definition: str
    constraint: bool
    """It backs a constraint (primary key, unique, exclusion): never a candidate for dropping."""

    def serves(self, candidate: IndexCandidate) -> bool:
        """True when this index already gives what ``candidate`` would (a valid, whole-table B-tree prefix)."""
        if self.method != "btree" or not self.valid or self.partial:
            return False
        return covers(self.key_columns, self.key_descending, candidate)


@dataclass(slots=True)
class TableFacts:
    """One table of the workload."""

    oid: int
    schema: str
    name: str
    rows: float
    """``pg_class.reltuples`` (-1 when never vacuumed or analyzed)."""
    analyzed: bool
    columns: frozenset[str] = frozenset()
    distinct: dict[str, float] = field(default_factory=dict)
    """Estimated distinct values per column (``pg_stats``), where known."""
    indexes: list[ExistingIndex] = field(default_factory=list)
    writes_per_second: float = 0.0

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def served_by_existing(self, candidate: IndexCandidate) -> bool:
        return any(index.serves(candidate) for index in self.indexes)


def read_tables(conn: psycopg.Connection[Any], names: Iterable[TableName]) -> dict[TableName, TableFacts]:
    """The tables ``names`` resolve to (as the connection's search_path sees them); unknown names are absent."""
    wanted = sorted(set(names), key=lambda name: (name[0] or "", name[1]))
    if not wanted:
        return {}
    rows = conn.execute(_RESOLVE, [[schema for schema, _ in wanted], [name for _, name in wanted]]).fetchall()
    found: dict[TableName, TableFacts] = {}
    by_oid: dict[int, TableFacts] = {}
    for schema, name, oid, nspname, relname, rows_estimate, analyzed in rows:
        key = (schema, name)
        if key in found:  # the same name visible twice cannot happen; qualified names are unique
            continue
        facts = by_oid.get(oid) or TableFacts(oid, nspname, relname, rows_estimate, bool(analyzed))
        found[key] = by_oid[oid] = facts
    oids = list(by_oid)
    if not oids:
        return found
    columns: dict[int, set[str]] = {oid: set() for oid in oids}
    for oid, column, distinct in conn.execute(_COLUMNS, [oids]):
        columns[oid].add(column)
        if distinct is not None:
            by_oid[oid].distinct[column] = float(distinct)
    for oid, names_of in columns.items():
        by_oid[oid].columns = frozenset(names_of)
    for row in conn.execute(_INDEXES, [oids]):
        oid, name, method, unique, primary, valid, partial, keys, descending, size, scans, definition, constraint = row
        by_oid[oid].indexes.append(
            ExistingIndex(
                name, method, unique, primary, valid, partial, tuple(keys), tuple(descending), int(size),
                None if scans is None else int(scans), definition, constraint,
            )
        )  # fmt: skip
    for oid, writes, seconds in conn.execute(_WRITES, [oids]):
        by_oid[oid].writes_per_second = float(writes or 0) / float(seconds)
    return found
