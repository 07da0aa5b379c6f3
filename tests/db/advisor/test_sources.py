"""Where the workload comes from: pg_stat_statements next to the slow-query table, and recorded parameters."""

from __future__ import annotations

import psycopg
import pytest

from queryopt.advisor import advise
from queryopt.analysis import analyze
from queryopt.schema import migrate
from tests.db.advisor import shop

pytestmark = pytest.mark.hypopg


def _prepare(dsn: str, table: str, rows: int, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        for statement in statements:
            conn.execute(statement.encode())
        if rows:
            shop.forget_writes(conn, table, rows)


@pytest.mark.pg_stat_statements
def test_pg_stat_statements_adds_what_was_never_slow_enough_to_record(dsn: str) -> None:
    _prepare(
        dsn,
        "items",
        200_000,
        "CREATE TABLE items (id bigint PRIMARY KEY, sku text NOT NULL, price int NOT NULL)",
        "INSERT INTO items SELECT g, 'sku-' || g, g % 100 FROM generate_series(1, 200000) AS g",
        "ANALYZE items",
    )
    migrate(dsn)  # an empty slow-query table
    lookup = "SELECT id, price FROM items WHERE sku = %s"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
        )
        for number in range(1, 21):
            conn.execute(lookup, [f"sku-{number}"])
    advice = advise(dsn)
    assert advice.sources == ("slow_queries", "pg_stat_statements")
    assert [(i.table, i.columns) for i in advice.indexes] == [("public.items", ("sku",))]
    assert [q.fingerprint for q in advice.indexes[0].queries] == [analyze(lookup).fingerprint]
    assert [q.calls for q in advice.indexes[0].queries] == [20]

    only_recorded = advise(dsn, use_pg_stat_statements=False)
    assert only_recorded.sources == ("slow_queries",)
    assert only_recorded.indexes == ()
    assert any(note.startswith("no statement recorded between") for note in only_recorded.notes)


def test_recorded_parameter_values_are_planned_as_they_ran(dsn: str) -> None:
    # 1 ticket in 1,000 is open: a generic plan assumes half the rows match, the recorded value finds few.
    _prepare(
        dsn,
        "tickets",
        200_000,
        "CREATE TABLE tickets (id bigint PRIMARY KEY, state text NOT NULL, body text)",
        "INSERT INTO tickets SELECT g, CASE WHEN g % 1000 = 0 THEN 'open' ELSE 'closed' END, 'b'"
        " FROM generate_series(1, 200000) AS g",
        "ANALYZE tickets",
    )
    open_tickets = shop.Recorded("open tickets", "SELECT id FROM tickets WHERE state = %s", ("open",), 30, 40.0)
    shop.record(dsn, (open_tickets,))
    generic = advise(dsn, use_pg_stat_statements=False)
    assert generic.indexes == ()

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE queryopt.slow_queries")
    shop.record(dsn, (open_tickets,), capture_params=True)
    custom = advise(dsn, use_pg_stat_statements=False)
    assert [(i.table, i.columns) for i in custom.indexes] == [("public.tickets", ("state",))]
    assert "statements with parameters were planned as generic plans (no recorded values)" not in custom.notes


def test_statements_that_cannot_be_planned_are_listed_not_fatal(dsn: str) -> None:
    _prepare(dsn, "t", 0, "CREATE TABLE t (id bigint PRIMARY KEY, v int)")
    gone = shop.Recorded("gone", "SELECT * FROM dropped_since WHERE v = %s", (1,), 3, 50.0)
    colon = shop.Recorded("colon", "SELECT * FROM t WHERE v = :v", ({"v": 1},), 3, 50.0)
    shop.record(dsn, (gone, colon))
    advice = advise(dsn, use_pg_stat_statements=False)
    reasons = {s.fingerprint: s.reason for s in advice.skipped}
    assert reasons[gone.fingerprint] == "none of its relations is a table of this database (dropped since, or views)"
    assert reasons[colon.fingerprint].startswith("named placeholders cannot be planned")


def test_hypopg_in_a_schema_off_the_search_path_is_still_used(own_shop_dsn: str) -> None:
    with psycopg.connect(own_shop_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA tools")
        conn.execute("ALTER EXTENSION hypopg SET SCHEMA tools")  # search_path stays "$user", public
    advice = advise(own_shop_dsn, since="24h")
    assert advice.indexes, advice.notes
