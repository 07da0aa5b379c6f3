"""What the database holds: its tables and their indexes, cached once per database.

pg_hint_plan trusts every index name it is given: a misspelt one forces a
disabled sequential scan instead of an error. queryopt therefore checks each
index against the catalog before a hint is sent. The catalog is read once per
database (keyed by :class:`DatabaseIdentity`) and read again when a name is
asked for that it does not know, since the index may have been created since.
A name still unknown after a reload is not reloaded for again for a while, so
a repeated typo does not turn into a catalog query per call.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from queryopt.errors import HintError

__all__ = ["Catalog", "DatabaseIdentity", "IndexInfo", "TableInfo", "database_identity", "fetch_metadata"]

_TABLES_SQL = """
SELECT n.nspname, t.relname, i.relname, am.amname,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) AS k),
       x.indisunique, x.indisprimary, x.indisvalid AND x.indisready,
       coalesce(pg_index_has_property(x.indexrelid, 'index_scan'), false),
       coalesce(pg_index_has_property(x.indexrelid, 'bitmap_scan'), false)
FROM pg_class t
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_index x ON x.indrelid = t.oid
LEFT JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_am am ON am.oid = i.relam
WHERE t.relkind IN ('r', 'm', 'p', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True, slots=True)
class DatabaseIdentity:
    """Which database a connection reaches: the cluster's ``system_identifier`` and the database name.

    A physical replica or a failed-over standby shares the identifier, and its
    catalog, with its primary; another cluster never does.
    """

    system_identifier: int
    dbname: str

    def __str__(self) -> str:
        return f"{self.dbname}@{self.system_identifier}"


def fetch_metadata(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    """Rows of a catalog query, leaving the caller's connection in the transaction state it was in.

    A connection that is not in autocommit mode would otherwise be left inside
    a transaction queryopt opened just to read the catalog.
    """
    opened_here = not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE
    try:
        return list(conn.execute(query).fetchall())
    finally:
        if opened_here:
            conn.rollback()


_serials = itertools.count(1)
_identities: weakref.WeakKeyDictionary[Any, DatabaseIdentity] = weakref.WeakKeyDictionary()
_identities_lock = threading.Lock()


def database_identity(conn: psycopg.Connection[Any]) -> DatabaseIdentity:
    """The identity of ``conn``'s database, asked of the server once per connection."""
    with _identities_lock:
        known = _identities.get(conn)
    if known is not None:
        return known
    (row,) = fetch_metadata(conn, "SELECT system_identifier, current_database() FROM pg_control_system()")
    identity = DatabaseIdentity(int(row[0]), str(row[1]))
    with _identities_lock:
        _identities[conn] = identity
    return identity


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """One index: ``columns`` are its key columns or expressions as ``pg_get_indexdef`` prints them."""

    schema: str
    table: str
    name: str
    method: str
    columns: tuple[str, ...]
    unique: bool
    primary: bool
    valid: bool
    """False while ``CREATE INDEX CONCURRENTLY`` runs or after it failed: the planner cannot use it."""
    index_scan: bool = True
    """The access method supports plain index scans (btree, hash, gist, spgist; not gin or brin)."""
    bitmap_scan: bool = True
    """The access method supports bitmap scans."""

    def describe(self) -> str:
        return f"{self.name} ({self.method} on {', '.join(self.columns)})"


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A table (or materialized view, partitioned or foreign table) and its indexes."""

    schema: str
    name: str
    indexes: tuple[IndexInfo, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def index(self, name: str) -> IndexInfo | None:
        return next((index for index in self.indexes if index.name == name), None)

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(index.name for index in self.indexes)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    tables: Mapping[tuple[str, str], TableInfo]
    indexes_by_name: Mapping[str, tuple[IndexInfo, ...]]
    search_path: tuple[str, ...]
    loaded_at: float


def _read(conn: psycopg.Connection[Any], clock: Callable[[], float]) -> _Snapshot:
    rows = fetch_metadata(conn, _TABLES_SQL)
    ((path,),) = fetch_metadata(conn, "SELECT current_schemas(false)")
    search_path = tuple(path or ())
    indexes: dict[tuple[str, str], list[IndexInfo]] = {}
    for schema, table, index, method, columns, unique, primary, valid, index_scan, bitmap_scan in rows:
        found = indexes.setdefault((schema, table), [])
        if index is not None:
            found.append(
                IndexInfo(schema, table, index, method, tuple(columns), unique, primary, valid, index_scan, bitmap_scan)
            )
    tables = [TableInfo(key[0], key[1], tuple(found)) for key, found in indexes.items()]
    return _snapshot(tables, search_path, clock())


def _snapshot(tables: list[TableInfo], search_path: tuple[str, ...], loaded_at: float) -> _Snapshot:
    by_name: dict[str, list[IndexInfo]] = {}
    for table in tables:
        for index in table.indexes:
            by_name.setdefault(index.name, []).append(index)
    return _Snapshot(
        {(table.schema, table.name): table for table in tables},
        {name: tuple(found) for name, found in by_name.items()},
        search_path,
        loaded_at,
    )


class Catalog:
    """Tables and indexes of one database, loaded once and reloaded when an unknown name is asked for.

    ``Catalog.load(conn)`` reads a fresh copy; ``Catalog.for_connection(conn)``
    shares one copy per database among all connections to it. Unqualified table
    names resolve through the ``search_path`` of the connection that loaded it.
    Thread-safe: a reload swaps in a complete new snapshot.
    """

    recheck_after: float = 30.0
    """Seconds before a name still unknown after a reload causes another reload."""

    _shared: dict[DatabaseIdentity, Catalog] = {}  # noqa: RUF012 - the process-wide registry, guarded by _shared_lock
    _shared_lock = threading.Lock()

    def __init__(
        self, identity: DatabaseIdentity, snapshot: _Snapshot, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.identity = identity
        self._snapshot = snapshot
        self._clock = clock
        self._lock = threading.Lock()
        self._missing: dict[str, float] = {}
        self.serial = next(_serials)
        """Unique per Catalog object in this process (with ``version``, a key for derived caches)."""
        self.version = 1
        """Increases with every reload, so derived caches know when to recompute."""

    @classmethod
    def from_tables(
        cls,
        tables: Iterable[TableInfo],
        *,
        identity: DatabaseIdentity | None = None,
        search_path: Iterable[str] = ("public",),
        clock: Callable[[], float] = time.monotonic,
    ) -> Catalog:
        """A catalog built from known facts instead of a database (offline checks, tests)."""
        return cls(identity or DatabaseIdentity(0, "offline"), _snapshot(list(tables), tuple(search_path), clock()))

    @classmethod
    def load(cls, conn: psycopg.Connection[Any], *, clock: Callable[[], float] = time.monotonic) -> Catalog:
        """Read the catalog of ``conn``'s database (two queries)."""
        return cls(database_identity(conn), _read(conn, clock), clock=clock)

    @classmethod
    def for_connection(cls, conn: psycopg.Connection[Any], *, max_age: float | None = 300.0) -> Catalog:
        """The shared catalog of ``conn``'s database, loaded on first use.

        A copy older than ``max_age`` seconds is reloaded, so an index dropped
        since is not trusted for long (a missing name reloads at once anyway).
        """
        identity = database_identity(conn)
        with cls._shared_lock:
            catalog = cls._shared.get(identity)
        if catalog is None:
            catalog = cls.load(conn)
            with cls._shared_lock:
                catalog = cls._shared.setdefault(identity, catalog)
        elif max_age is not None and catalog.age > max_age:
            catalog.refresh(conn)
        return catalog

    @property
    def age(self) -> float:
        """Seconds since the catalog was read."""
        return self._clock() - self._snapshot.loaded_at

    def refresh(self, conn: psycopg.Connection[Any]) -> None:
        """Read the catalog again through ``conn`` (which must reach the same database)."""
        identity = database_identity(conn)
        if identity != self.identity:
            raise HintError(f"catalog of {self.identity} cannot be refreshed from a connection to {identity}")
        snapshot = _read(conn, self._clock)
        with self._lock:
            self._snapshot = snapshot
            self.version += 1

    def refresh_for(self, names: Iterable[str], conn: psycopg.Connection[Any] | None) -> bool:
        """Reload because ``names`` are unknown, unless they were already unknown after a recent reload.

        Returns True when a reload happened.
        """
        if conn is None:
            return False
        now = self._clock()
        wanted = sorted(set(names))
        with self._lock:
            if all(now - self._missing.get(name, -float("inf")) < self.recheck_after for name in wanted):
                return False
        self.refresh(conn)
        with self._lock:
            for name in wanted:
                self._missing[name] = now
        return True

    # -- lookups ---------------------------------------------------------------------------------------

    @property
    def search_path(self) -> tuple[str, ...]:
        return self._snapshot.search_path

    @property
    def tables(self) -> Mapping[tuple[str, str], TableInfo]:
        return self._snapshot.tables

    def table(self, schema: str | None, name: str) -> TableInfo | None:
        """The table a query means by ``schema.name``, or by ``name`` through the search path."""
        snapshot = self._snapshot
        if schema is not None:
            return snapshot.tables.get((schema, name))
        for candidate in snapshot.search_path:
            found = snapshot.tables.get((candidate, name))
            if found is not None:
                return found
        return None

    def indexes_named(self, name: str) -> tuple[IndexInfo, ...]:
        """Every index called ``name`` (one per schema at most)."""
        return self._snapshot.indexes_by_name.get(name, ())

    def __repr__(self) -> str:
        return f"<Catalog {self.identity} tables={len(self._snapshot.tables)} version={self.version}>"
