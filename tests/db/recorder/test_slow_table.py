"""Writing batches exactly once, and pruning old rows."""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from queryopt import RecorderError, RecorderPolicy, SlowQueryRecorder
from queryopt.recorder import SlowQuery
from queryopt.recorder.table import SlowQueryTable, new_record_ids, prune, to_row
from queryopt.schema.migrator import migrate
from tests.factories import slow_query

Conn = psycopg.Connection[tuple[Any, ...]]


def _rows_for(records: list[SlowQuery]) -> list[tuple[Any, ...]]:
    ids = new_record_ids(len(records))
    return [to_row(record, ids[index], None, RecorderPolicy()) for index, record in enumerate(records)]


def _sources(conn: Conn) -> list[str]:
    return [row[0] for row in conn.execute("SELECT source FROM queryopt.slow_queries ORDER BY source")]


def test_resending_a_committed_batch_writes_nothing_twice(dsn: str, conn: Conn) -> None:
    migrate(dsn)
    table = SlowQueryTable("queryopt")
    committed = _rows_for([slow_query(n) for n in range(5)])
    never_arrived = _rows_for([slow_query(n) for n in range(5, 8)])
    with psycopg.connect(dsn) as writer:
        first = table.write(writer, committed, resend=False)
        again = table.write(writer, committed, resend=True)  # as after a lost commit acknowledgement
        fresh = table.write(writer, never_arrived, resend=True)  # as after a COPY that failed mid-way
    assert (first.stored, first.already_present) == (5, 0)
    assert (again.stored, again.already_present) == (5, 5)
    assert (fresh.stored, fresh.already_present) == (3, 0)
    assert _sources(conn) == sorted(f"call-{n}" for n in range(8))


class CommitAcknowledgementCutter:
    """A TCP proxy in front of PostgreSQL. The first COMMIT that follows a COPY reaches the server and
    commits, then both sides are disconnected before the acknowledgement reaches the client."""

    def __init__(self, dsn: str) -> None:
        params = conninfo_to_dict(dsn)
        host, port = str(params.get("host") or "/tmp"), str(params.get("port") or "5432")
        if host.startswith("/"):
            self._upstream: tuple[int, Any] = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        else:
            self._upstream = (socket.AF_INET, (host, int(port)))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=str(self._listener.getsockname()[1]))
        self.armed = True
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the other thread
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(self._upstream[0], socket.SOCK_STREAM)
            server.connect(self._upstream[1])
            self._sockets += [client, server]
            state = {"copy_seen": False, "cut_next_reply": False}
            for target in (self._client_to_server, self._server_to_client):
                thread = threading.Thread(target=target, args=(client, server, state), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _client_to_server(self, client: socket.socket, server: socket.socket, state: dict[str, bool]) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.armed and b"COPY " in data:
                    state["copy_seen"] = True
                if self.armed and state["copy_seen"] and b"COMMIT" in data:
                    self.armed = False
                    state["cut_next_reply"] = True  # set before forwarding: the next reply is the COMMIT's
                server.sendall(data)

    def _server_to_client(self, client: socket.socket, server: socket.socket, state: dict[str, bool]) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if state["cut_next_reply"]:
                    for sock in (client, server):
                        sock.shutdown(socket.SHUT_RDWR)
                    self.cut.set()
                    return
                client.sendall(data)


def test_a_lost_commit_acknowledgement_does_not_duplicate_rows(dsn: str, conn: Conn) -> None:
    migrate(dsn)
    proxy = CommitAcknowledgementCutter(dsn)
    try:
        # One batch: the writer wakes only for flush() (no timer, batch_size not reached).
        policy = RecorderPolicy(retry_max_backoff=0.1, max_per_fingerprint=100, flush_interval=600)
        with SlowQueryRecorder(proxy.dsn, policy) as recorder:
            for number in range(20):
                assert recorder.submit(slow_query(number))
            assert recorder.flush(30)
            stats = recorder.stats()
    finally:
        proxy.close()
    assert proxy.cut.is_set(), "the proxy never cut a commit acknowledgement"
    assert stats["write_failures"] == 1
    assert stats["resent_duplicates"] == 20  # the resend found the committed batch
    assert stats["recorded"] == 20
    assert _sources(conn) == sorted(f"call-{n}" for n in range(20))


def _insert_aged(dsn: str, ages: dict[str, timedelta]) -> None:
    now = datetime.now(UTC)
    records = [slow_query(index, started_at=now - age, source=name) for index, (name, age) in enumerate(ages.items())]
    with psycopg.connect(dsn) as writer:
        SlowQueryTable("queryopt").write(writer, _rows_for(records), resend=False)


def test_prune_deletes_only_rows_older_than_the_cutoff_in_batches(dsn: str, conn: Conn) -> None:
    migrate(dsn)
    ages = {f"old-{n:02d}": timedelta(days=40 + n) for n in range(25)}
    ages |= {"recent": timedelta(days=29, hours=23), "today": timedelta(minutes=5)}
    _insert_aged(dsn, ages)
    assert prune(dsn, 30 * 86400, batch_size=10) == 25
    assert _sources(conn) == ["recent", "today"]
    assert prune(dsn, 30 * 86400) == 0


def test_prune_errors_are_clear(dsn: str) -> None:
    with pytest.raises(RecorderError, match="run `queryopt migrate`"):
        prune(dsn, 86400)
    with pytest.raises(RecorderError, match="older_than"):
        prune(dsn, 0)
    with pytest.raises(RecorderError, match="not a lower-case identifier"):
        prune(dsn, 86400, schema="x; DROP")
