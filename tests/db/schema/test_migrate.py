from __future__ import annotations

import psycopg
import pytest

from queryopt.errors import MigrationError
from queryopt.schema.migrator import available_migrations, migrate, pending_migrations


def test_migrate_creates_the_slow_query_table_in_its_own_schema(dsn: str) -> None:
    applied = migrate(dsn)
    assert [m.version for m in applied] == [m.version for m in available_migrations()]
    with psycopg.connect(dsn) as conn:
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'queryopt' AND table_name = 'slow_queries'"
            )
        }
        assert {"started_at", "fingerprint", "duration_ms", "sql_text", "params", "plan"} <= columns
        public = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert public == (0,)


def test_migrate_is_idempotent_and_pending_reports_nothing_after(dsn: str) -> None:
    assert pending_migrations(dsn) == available_migrations()
    migrate(dsn)
    assert migrate(dsn) == ()
    assert pending_migrations(dsn) == ()


def test_custom_schema(dsn: str) -> None:
    migrate(dsn, schema="observability")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('observability.slow_queries') IS NOT NULL").fetchone() == (True,)
    assert pending_migrations(dsn) == available_migrations()  # the default schema is still empty


def test_bad_schema_name_is_refused_before_any_sql() -> None:
    with pytest.raises(MigrationError, match="not a lower-case identifier"):
        migrate("dbname=unused", schema='x"; DROP TABLE users; --')


def test_unreachable_database_is_a_migration_error(tmp_path: object) -> None:
    with pytest.raises(MigrationError, match="cannot migrate"):
        migrate(f"host={tmp_path} dbname=nothing connect_timeout=1")
