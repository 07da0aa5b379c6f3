from __future__ import annotations

import psycopg
import pytest

from queryopt import QueryError, QueryTimeout
from queryopt.analysis import analyze
from queryopt.telemetry.conventions import (
    describe,
    error_type,
    namespace,
    operation_name,
    query_summary,
    sqlstate_of,
)


@pytest.mark.parametrize(
    ("sql", "summary"),
    [
        ("SELECT id, total FROM orders WHERE customer_id = %s", "SELECT orders"),
        ("select * from public.songs s, artists a where s.artist_id = a.id", "SELECT public.songs artists"),
        (
            "SELECT * FROM (SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id) x",
            "SELECT orders customers",
        ),
        ("INSERT INTO shipping (order_id) SELECT o.id FROM orders o WHERE o.id = %s", "INSERT shipping SELECT orders"),
        ("UPDATE orders SET paid = true WHERE id = %s", "UPDATE orders"),
        ("DELETE FROM orders WHERE id = %s", "DELETE orders"),
        ("SELECT 1", "SELECT"),
        ("TRUNCATE orders", "TRUNCATE orders"),
        ("VACUUM orders", "VACUUM"),
        ('/*+ SeqScan(o) */ /* app=shop */ SELECT * FROM "Orders" o', "SELECT Orders"),
    ],
)
def test_summary_is_the_operation_and_its_tables(sql: str, summary: str) -> None:
    assert query_summary(analyze(sql)) == summary


def test_summary_is_at_most_255_characters_cut_between_words() -> None:
    tables = [f"table_with_a_rather_long_name_{i}" for i in range(20)]
    sql = "SELECT 1 FROM " + ", ".join(tables)
    summary = query_summary(analyze(sql))
    assert len(summary) <= 255
    assert summary.split(" ")[-1] in tables  # no table name cut in half
    assert summary.startswith("SELECT table_with_a_rather_long_name_0 ")


def test_operation_of_a_with_query_and_of_utility_statements() -> None:
    assert operation_name(analyze("WITH t AS (SELECT 1) SELECT * FROM t")) == "SELECT"
    assert operation_name(analyze("create index orders_idx on orders (customer_id)")) == "CREATE"
    assert operation_name(analyze("SET statement_timeout = 5")) == "SET"


def test_description_holds_placeholders_never_constants() -> None:
    description = describe(analyze("SELECT * FROM users WHERE email = 'alice@example.com' AND id = 42"))
    text = description.span["db.query.text"]
    assert "alice" not in text
    assert "42" not in text
    assert "%s" in text
    assert description.span_name == "SELECT users"
    assert description.metric["db.collection.name"] == "users"
    assert description.metric["db.system.name"] == "postgresql"
    assert "db.query.text" not in description.metric  # high cardinality: spans only


def test_collection_only_for_a_single_table() -> None:
    assert "db.collection.name" not in describe(analyze("SELECT * FROM a JOIN b ON a.id = b.id")).metric
    assert describe(analyze("SELECT * FROM a x JOIN a y ON x.id = y.parent")).metric["db.collection.name"] == "a"


@pytest.mark.parametrize(
    ("database", "search_path", "expected"),
    [
        ("shop", '"$user", public', "shop|public"),
        ("shop", "sales, public", "shop|sales"),
        ("shop", '"Sales"', "shop|Sales"),
        ("shop", '"$user"', "shop"),
        ("", "public", "public"),
    ],
)
def test_namespace_is_database_and_first_schema(database: str, search_path: str, expected: str) -> None:
    assert namespace(database, search_path) == expected


def test_error_type_is_the_sqlstate_when_there_is_one() -> None:
    timeout = QueryTimeout("cancelled", limit=1.0, elapsed=1.0)
    assert sqlstate_of(timeout) == "57014"
    assert error_type(timeout, sqlstate_of(timeout)) == "57014"


def test_error_type_without_sqlstate_names_the_driver_error() -> None:
    try:
        try:
            raise psycopg.OperationalError("connection lost")
        except psycopg.OperationalError as exc:
            raise QueryError("lost") from exc
    except QueryError as wrapped:
        error = wrapped
    assert sqlstate_of(error) is None
    assert error_type(error, None) == "psycopg.OperationalError"
    stalled = QueryTimeout("no answer", sqlstate=None)
    assert error_type(stalled, sqlstate_of(stalled)) == "timeout"
