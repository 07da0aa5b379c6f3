from __future__ import annotations

import psycopg
import pytest

from queryopt.hints import Catalog, database_identity, hint_plan_active
from queryopt.hints.identifiers import RESERVED_KEYWORDS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shop(conn: psycopg.Connection[tuple[object, ...]]) -> psycopg.Connection[tuple[object, ...]]:
    conn.execute("CREATE SCHEMA sales")
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    conn.execute('CREATE TABLE "Orders" (id int PRIMARY KEY, customer_id int, tags text[])')
    conn.execute('CREATE INDEX orders_customer_idx ON "Orders" (customer_id)')
    conn.execute('CREATE INDEX orders_tags_gin ON "Orders" USING gin (tags)')
    conn.execute("CREATE INDEX customers_lower_name_idx ON customers (lower(name))")
    conn.execute("CREATE TABLE sales.customers (id int PRIMARY KEY)")
    return conn


def test_catalog_lists_tables_and_indexes_with_their_facts(shop: psycopg.Connection[tuple[object, ...]]) -> None:
    catalog = Catalog.load(shop)
    orders = catalog.table(None, "Orders")
    assert orders is not None
    assert orders.index_names == ("Orders_pkey", "orders_customer_idx", "orders_tags_gin")
    gin = orders.index("orders_tags_gin")
    assert gin is not None
    assert (gin.method, gin.index_scan, gin.bitmap_scan, gin.columns) == ("gin", False, True, ("tags",))
    btree = orders.index("orders_customer_idx")
    assert btree is not None
    assert (btree.index_scan, btree.valid, btree.unique) == (True, True, False)
    lowered = catalog.table(None, "customers")
    assert lowered is not None
    assert lowered.index("customers_lower_name_idx").columns == ("lower(name)",)  # type: ignore[union-attr]
    # Unqualified names resolve through the search path; qualified ones do not need it.
    assert catalog.table(None, "customers") is lowered
    assert catalog.table("sales", "customers") is not lowered
    assert catalog.table(None, "orders") is None  # case matters: the table is "Orders"
    assert [index.table for index in catalog.indexes_named("customers_pkey")] == ["customers", "customers"]


def test_database_identity_is_asked_once_per_connection_and_tells_databases_apart(
    shop: psycopg.Connection[tuple[object, ...]], pg_server: object
) -> None:
    identity = database_identity(shop)
    assert identity.dbname == shop.info.dbname
    assert database_identity(shop) is identity
    with psycopg.connect(pg_server.conninfo("postgres"), autocommit=True) as other:  # type: ignore[attr-defined]
        other_identity = database_identity(other)
    assert other_identity.system_identifier == identity.system_identifier
    assert other_identity != identity


def test_shared_catalog_is_one_per_database(shop: psycopg.Connection[tuple[object, ...]], dsn: str) -> None:
    first = Catalog.for_connection(shop)
    with psycopg.connect(dsn, autocommit=True) as second_conn:
        assert Catalog.for_connection(second_conn) is first


def test_unknown_name_reloads_once_then_waits(shop: psycopg.Connection[tuple[object, ...]]) -> None:
    clock = FakeClock()
    catalog = Catalog.load(shop, clock=clock)
    shop.execute("CREATE INDEX customers_name_idx ON customers (name)")
    assert catalog.table(None, "customers").index("customers_name_idx") is None  # type: ignore[union-attr]
    assert catalog.refresh_for(["index:customers_name_idx"], shop)
    assert catalog.table(None, "customers").index("customers_name_idx") is not None  # type: ignore[union-attr]
    assert catalog.version == 2
    # A name still missing after a reload does not reload again until recheck_after has passed.
    assert catalog.refresh_for(["index:typo_idx"], shop)
    assert not catalog.refresh_for(["index:typo_idx"], shop)
    clock.now += Catalog.recheck_after + 1
    assert catalog.refresh_for(["index:typo_idx"], shop)
    assert not catalog.refresh_for(["index:anything"], None)  # no connection, no reload


def test_stale_shared_catalog_is_reloaded_after_max_age(shop: psycopg.Connection[tuple[object, ...]]) -> None:
    catalog = Catalog.for_connection(shop)
    shop.execute("DROP INDEX orders_customer_idx")
    assert Catalog.for_connection(shop, max_age=3600).table(None, "Orders").index("orders_customer_idx")  # type: ignore[union-attr]
    refreshed = Catalog.for_connection(shop, max_age=0)
    assert refreshed is catalog
    assert refreshed.table(None, "Orders").index("orders_customer_idx") is None  # type: ignore[union-attr]


def test_keywords_that_need_quotes_cover_the_servers(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    server = {row[0] for row in conn.execute("SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'")}
    assert server <= RESERVED_KEYWORDS
    quoted = conn.execute("SELECT word FROM pg_get_keywords() WHERE quote_ident(word) <> word").fetchall()
    assert {row[0] for row in quoted} <= RESERVED_KEYWORDS


def test_reading_the_catalog_leaves_a_non_autocommit_connection_idle(
    shop: psycopg.Connection[tuple[object, ...]], dsn: str
) -> None:
    with psycopg.connect(dsn) as conn:
        catalog = Catalog.load(conn)
        assert hint_plan_active(conn, recheck=True) in (True, False)
        assert catalog.table(None, "customers") is not None
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
