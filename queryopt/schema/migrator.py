"""Apply and check queryopt's own schema (the SQL files of ``queryopt.migrations``).

A small runner instead of Alembic: queryopt owns a handful of tables in a schema
of its own, the migrations are plain forward-only SQL, and the application's own
migration tool (often Alembic) must never see them. Concurrency safety comes
from one transaction holding a transaction-level advisory lock: a second
process that migrates at the same time waits, then finds nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

import psycopg
from psycopg import sql

from queryopt.errors import MigrationError

__all__ = ["Migration", "available_migrations", "migrate", "pending_migrations"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x71_75_65_72_79_6F_70  # "queryop": one advisory lock per database for all queryopt migrations
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One forward-only schema change."""

    version: int
    name: str
    sql: str


def available_migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this version of queryopt, in version order."""
    found = []
    for resource in files("queryopt.migrations").iterdir():
        match = _FILE_NAME.match(resource.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), resource.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return tuple(found)


def _check_schema(schema: str) -> None:
    if not _IDENTIFIER.match(schema):
        raise MigrationError(f"schema name {schema!r} is not a lower-case identifier (letters, digits, _)")


def _applied_versions(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> set[int]:
    exists = conn.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_migrations'", [schema]
    ).fetchone()
    if not exists:
        return set()
    query = sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
    return {int(str(row[0])) for row in conn.execute(query)}


def pending_migrations(conninfo: str, *, schema: str = "queryopt") -> tuple[Migration, ...]:
    """Migrations not yet applied to the database (empty when the schema is current)."""
    _check_schema(schema)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            applied = _applied_versions(conn, schema)
    except psycopg.Error as exc:
        raise MigrationError(f"cannot check queryopt's schema {schema!r}: {exc}") from exc
    return tuple(migration for migration in available_migrations() if migration.version not in applied)


def migrate(conninfo: str, *, schema: str = "queryopt") -> tuple[Migration, ...]:
    """Apply pending migrations in one transaction; returns those applied (empty if none)."""
    _check_schema(schema)
    identifier = sql.Identifier(schema)
    try:
        with psycopg.connect(conninfo) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(identifier))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(identifier)
            )
            applied = _applied_versions(conn, schema)
            todo = tuple(migration for migration in available_migrations() if migration.version not in applied)
            conn.execute(sql.SQL("SET LOCAL search_path = {}, pg_catalog").format(identifier))
            record = sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(identifier)
            for migration in todo:
                try:
                    conn.execute(migration.sql.encode())
                except psycopg.Error as exc:
                    raise MigrationError(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
                conn.execute(record, [migration.version, migration.name])
    except psycopg.Error as exc:
        raise MigrationError(f"cannot migrate queryopt's schema {schema!r}: {exc}") from exc
    return todo
