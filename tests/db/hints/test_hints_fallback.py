"""The planner-settings fallback on vanilla PostgreSQL: no pg_hint_plan needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.hints import HintSet, ScanHint, hint_plan_active, planner_settings, planner_settings_applied

Conn = psycopg.Connection[tuple[object, ...]]
QUERY = "SELECT * FROM items WHERE v < 5"


@pytest.fixture
def items(conn: Conn) -> Conn:
    # Half the rows match: the planner prefers a sequential scan over the index on v.
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, payload text)")
    conn.execute("INSERT INTO items SELECT g, g % 10, repeat('x', 40) FROM generate_series(1, 5000) AS g")
    conn.execute("CREATE INDEX items_v_idx ON items (v)")
    conn.execute("ANALYZE items")
    return conn


def top_scan(conn: Conn, sql: str) -> dict[str, Any]:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def test_index_scan_fallback_turns_a_seq_scan_into_an_index_scan(items: Conn) -> None:
    assert top_scan(items, QUERY)["Node Type"] == "Seq Scan"
    settings = planner_settings(HintSet.of(ScanHint("IndexScan", "items", ("items_v_idx",))))
    with planner_settings_applied(items, settings):
        plan = top_scan(items, QUERY)
        assert items.execute("SHOW enable_seqscan").fetchone() == ("off",)
    assert (plan["Node Type"], plan["Index Name"]) == ("Index Scan", "items_v_idx")
    # In autocommit mode the block was its own transaction: the settings are gone.
    assert items.execute("SHOW enable_seqscan").fetchone() == ("on",)
    assert top_scan(items, QUERY)["Node Type"] == "Seq Scan"


def test_inside_the_callers_transaction_previous_values_come_back(items: Conn) -> None:
    with items.transaction():
        items.execute("SET LOCAL enable_bitmapscan = off")
        with planner_settings_applied(items, [("enable_seqscan", "off"), ("enable_bitmapscan", "off")]):
            assert top_scan(items, QUERY)["Node Type"] == "Index Scan"
        # The caller's next statements in the same transaction see their own settings again.
        assert items.execute("SHOW enable_seqscan").fetchone() == ("on",)
        assert items.execute("SHOW enable_bitmapscan").fetchone() == ("off",)


def test_not_autocommit_connection_keeps_its_transaction_open(items: Conn, dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        with planner_settings_applied(conn, [("enable_seqscan", "off")]):
            conn.execute("SELECT 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("SHOW enable_seqscan").fetchone() == ("on",)
        conn.rollback()


@pytest.fixture
def vanilla_conn(conn: Conn, pg_server: Any) -> Iterator[Conn]:
    """A connection to a server without pg_hint_plan (a second one only when the suite's server has it)."""
    if "pg_hint_plan" not in pg_server.features:
        yield conn
        return
    with EmbeddedPostgres(preload=()) as server, psycopg.connect(server.conninfo(), autocommit=True) as plain:
        yield plain


def test_vanilla_postgresql_has_no_active_pg_hint_plan(vanilla_conn: Conn) -> None:
    # A plain SET of the name fools current_setting(), not the pg_settings check.
    vanilla_conn.execute("SET pg_hint_plan.enable_hint = 'on'")
    assert vanilla_conn.execute("SELECT current_setting('pg_hint_plan.enable_hint', true)").fetchone() == ("on",)
    assert hint_plan_active(vanilla_conn, recheck=True) is False
