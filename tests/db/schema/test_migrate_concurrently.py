"""Two processes migrating the same database at the same moment."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import psycopg

import queryopt.schema.migrator as migrate_module
from queryopt.schema.migrator import available_migrations

Conn = psycopg.Connection[tuple[Any, ...]]
_WAITING = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def test_two_processes_migrating_at_once_both_succeed_and_the_schema_is_created_once(dsn: str, conn: Conn) -> None:
    script = "import sys; from queryopt.schema.migrator import migrate; print(len(migrate(sys.argv[1])))"
    # Hold the migration lock so both processes are certainly inside migrate() at the same time.
    conn.execute("SELECT pg_advisory_lock(%s)", [migrate_module._LOCK_KEY])
    processes = [
        subprocess.Popen([sys.executable, "-c", script, dsn], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while conn.execute(_WAITING).fetchone() != (2,):
            assert all(process.poll() is None for process in processes), "a migrating process exited early"
            assert time.monotonic() < deadline, "the two processes never waited for the migration lock together"
            time.sleep(0.02)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [migrate_module._LOCK_KEY])
    results = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    applied = sorted(int(out) for out, _ in results)
    assert applied == [0, len(available_migrations())]  # one applied everything, the other found nothing to do
    versions = [row[0] for row in conn.execute("SELECT version FROM queryopt.schema_migrations ORDER BY version")]
    assert versions == [migration.version for migration in available_migrations()]
    assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'queryopt'").fetchone() == (1,)
    assert conn.execute("SELECT to_regclass('queryopt.slow_queries') IS NOT NULL").fetchone() == (True,)
