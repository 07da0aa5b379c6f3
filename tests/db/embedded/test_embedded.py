"""The throwaway cluster the suite and the demo rely on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from queryopt.embedded.postgres import EmbeddedPostgres, find_bindir
from queryopt.errors import ServerError


def test_connect_create_table_and_query(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, total numeric)")
    conn.execute("INSERT INTO orders SELECT g, g % 10, g * 1.5 FROM generate_series(1, 100) g")
    row = conn.execute("SELECT count(*), sum(total) FROM orders WHERE customer_id = %s", [3]).fetchone()
    assert row == (10, sum(g * 1.5 for g in range(1, 101) if g % 10 == 3))


def test_each_test_gets_a_fresh_database(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_server_is_socket_only_with_throwaway_settings() -> None:
    with EmbeddedPostgres() as server, psycopg.connect(server.conninfo()) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'fsync', 'port')"
            ).fetchall()
        )
        assert settings["listen_addresses"] == ""
        assert settings["fsync"] == "off"
        assert (server.socket_dir / ".s.PGSQL.5432").exists()


def test_stop_removes_the_directory_and_the_server() -> None:
    server = EmbeddedPostgres().start()
    directory, pid = server.socket_dir, server.pid
    server.stop()
    assert not directory.exists()
    assert not _alive(pid)


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A folder the server's OS user can enter (pytest's tmp_path is private to root under CI)."""
    folder = Path(tempfile.mkdtemp(prefix="queryopt-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_no_server_is_left_behind_after_kill_9(base_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from queryopt.embedded.postgres import EmbeddedPostgres
        server = EmbeddedPostgres(base_dir=sys.argv[1]).start()
        print(server.pid, server.socket_dir, flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(base_dir)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    pid_text, directory = child.stdout.readline().split()
    postmaster = int(pid_text)
    assert _alive(postmaster)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    deadline = time.monotonic() + 20
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(postmaster), "the postmaster outlived the process that started it"
    # The next start in the same base directory removes the abandoned cluster folder.
    with EmbeddedPostgres(base_dir=str(base_dir)):
        assert not Path(directory).exists()


def test_missing_binaries_error_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="apt-get install postgresql"):
        EmbeddedPostgres(bindir=tmp_path)


def test_find_bindir_honours_pg_bindir(monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_bindir()
    monkeypatch.setenv("PG_BINDIR", str(real))
    assert find_bindir() == real


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


def test_stop_keeping_data_then_start_brings_the_same_data_back() -> None:
    server = EmbeddedPostgres().start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        first_pid, directory = server.pid, server.socket_dir
        server.stop(keep_data=True)
        assert not server.running
        assert not _alive(first_pid)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.conninfo(), connect_timeout=2).close()
        server.start()
        assert server.socket_dir == directory
        with psycopg.connect(server.conninfo()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]
        server.restart()
        assert server.pid != first_pid
        with psycopg.connect(server.conninfo()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]
    finally:
        server.stop()
    assert not directory.exists()
