"""``index_hints`` as a list mixing forms, a mapping among them, as the README promises."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from queryopt import HintError, Optimizer, RecorderPolicy, Settings
from queryopt.config import HintMode

QUERY = (
    "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_id > %s ORDER BY o.id LIMIT 3"
)


@pytest.fixture
def shop(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers)")
    conn.execute("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g")
    conn.execute("INSERT INTO orders SELECT g, 1 + g % 50 FROM generate_series(1, 5000) g")
    conn.execute("CREATE INDEX orders_customer_idx ON orders (customer_id)")
    conn.execute("ANALYZE")
    return conn


@pytest.mark.parametrize("mode", [HintMode.PG_HINT_PLAN, HintMode.PLANNER_SETTINGS])
def test_a_list_holding_a_mapping_is_accepted(dsn: str, shop: psycopg.Connection[Any], mode: HintMode) -> None:
    settings = Settings(dsn=dsn, hint_mode=mode, recorder=RecorderPolicy(enabled=False))
    with Optimizer(settings=settings) as optimizer:
        hints = [{"orders": "orders_customer_idx"}, "HashJoin(o c)"]
        call = optimizer.prepare(QUERY, hints)
        if mode is HintMode.PG_HINT_PLAN:
            assert call.statement.text.startswith("/*+ IndexScan(o orders_customer_idx) HashJoin(o c) */")
        else:
            assert ("enable_seqscan", "off") in call.statement.planner_settings
        assert optimizer.query(QUERY, [1], index_hints=hints) == [(1,), (2,), (3,)]
        assert optimizer.query(QUERY, [1], index_hints=[{"o": ["orders_customer_idx"]}]) == [(1,), (2,), (3,)]
        with pytest.raises(HintError, match="payments"):
            optimizer.query(QUERY, [1], index_hints=["HashJoin(o c)", {"payments": "payments_pkey"}])
