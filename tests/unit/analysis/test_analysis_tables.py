"""Tables and aliases, checked by hand: what pg_hint_plan names and what invalidation bumps."""

from __future__ import annotations

import pytest

from queryopt.analysis import TableRef, analyze

T = TableRef

CASES: list[tuple[str, list[TableRef], list[TableRef]]] = [
    ("SELECT * FROM orders", [T(None, "orders", None)], []),
    ("SELECT * FROM Shop.Orders AS O", [T("shop", "orders", "o")], []),
    ('SELECT * FROM "Shop"."Orders" "O"', [T("Shop", "Orders", "O")], []),
    (
        "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id LEFT JOIN nations ON true",
        [T(None, "orders", "o"), T(None, "customers", "c"), T(None, "nations", None)],
        [],
    ),
    (  # self-join: two occurrences, two aliases
        "SELECT * FROM employees e JOIN employees m ON m.id = e.manager_id",
        [T(None, "employees", "e"), T(None, "employees", "m")],
        [],
    ),
    (  # CTE names are not tables; the CTE body's tables are
        "WITH recent AS (SELECT * FROM orders WHERE day > %s) SELECT * FROM recent r JOIN customers c ON true",
        [T(None, "orders", None), T(None, "customers", "c")],
        [],
    ),
    (  # a non-recursive CTE cannot see itself: the inner name is the real table
        "WITH orders AS (SELECT * FROM orders WHERE open) SELECT * FROM orders",
        [T(None, "orders", None)],
        [],
    ),
    (  # RECURSIVE: the CTE sees itself; a schema-qualified name is never a CTE
        "WITH RECURSIVE tree AS (SELECT id FROM nodes"
        " UNION ALL SELECT n.id FROM nodes n JOIN tree t ON t.id = n.parent) SELECT * FROM tree, archive.tree",
        [T(None, "nodes", None), T(None, "nodes", "n"), T("archive", "tree", None)],
        [],
    ),
    (  # a CTE is in scope only inside its own statement
        "SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) q, c",
        [T(None, "c", None)],
        [],
    ),
    (  # later CTEs see earlier ones
        "WITH a AS (SELECT * FROM t1), b AS (SELECT * FROM a JOIN t2 ON true) SELECT * FROM b",
        [T(None, "t1", None), T(None, "t2", None)],
        [],
    ),
    (
        "SELECT * FROM orders o WHERE o.total > (SELECT avg(total) FROM orders)"
        " AND o.id IN (SELECT order_id FROM lines)",
        [T(None, "orders", "o"), T(None, "orders", None), T(None, "lines", None)],
        [],
    ),
    (
        "SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cid = c.id)"
        " AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.cid = c.id)",
        [T(None, "customers", "c"), T(None, "orders", "o"), T(None, "refunds", "r")],
        [],
    ),
    (
        "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.uid = u.id ORDER BY day DESC LIMIT 1) last",
        [T(None, "users", "u"), T(None, "orders", "o")],
        [],
    ),
    (  # table functions are not tables
        "SELECT * FROM generate_series(1, 3) g, unnest(ARRAY[1, 2]) u, jsonb_each(%s) j, events e",
        [T(None, "events", "e")],
        [],
    ),
    (  # FOR UPDATE OF names an alias, not another table
        "SELECT * FROM jobs j FOR UPDATE OF j SKIP LOCKED",
        [T(None, "jobs", "j")],
        [],
    ),
    (
        "UPDATE accounts AS a SET balance = a.balance - t.amount FROM transfers t WHERE t.src = a.id",
        [T(None, "accounts", "a"), T(None, "transfers", "t")],
        [T(None, "accounts", "a")],
    ),
    (
        "DELETE FROM sessions s USING users u WHERE s.uid = u.id AND u.banned RETURNING s.id",
        [T(None, "sessions", "s"), T(None, "users", "u")],
        [T(None, "sessions", "s")],
    ),
    (
        "INSERT INTO archive.orders (id, total) SELECT id, total FROM orders WHERE day < %s",
        [T("archive", "orders", None), T(None, "orders", None)],
        [T("archive", "orders", None)],
    ),
    (
        "INSERT INTO counters AS c (k, n) VALUES (%s, 1) ON CONFLICT (k) DO UPDATE SET n = c.n + 1",
        [T(None, "counters", "c")],
        [T(None, "counters", "c")],
    ),
    (  # writes inside CTEs are writes too
        "WITH moved AS (DELETE FROM inbox WHERE done RETURNING *) INSERT INTO outbox SELECT * FROM moved",
        [T(None, "inbox", None), T(None, "outbox", None)],
        [T(None, "inbox", None), T(None, "outbox", None)],
    ),
    (
        "MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty"
        " WHEN NOT MATCHED THEN INSERT (item, qty) VALUES (d.item, d.qty)",
        [T(None, "stock", "s"), T(None, "deliveries", "d")],
        [T(None, "stock", "s")],
    ),
    (
        "SELECT * INTO TEMP snapshot FROM orders",
        [T(None, "snapshot", None), T(None, "orders", None)],
        [T(None, "snapshot", None)],
    ),
    (
        "TRUNCATE a, public.b",
        [T(None, "a", None), T("public", "b", None)],
        [T(None, "a", None), T("public", "b", None)],
    ),
    (
        "CREATE TABLE totals AS SELECT cid, sum(x) FROM orders GROUP BY cid",
        [T(None, "totals", None), T(None, "orders", None)],
        [T(None, "totals", None)],
    ),
    ("CREATE INDEX ON shop.orders (day)", [T("shop", "orders", None)], [T("shop", "orders", None)]),
    ("ALTER TABLE orders RENAME TO orders_old", [T(None, "orders", None)], [T(None, "orders", None)]),
    ("DROP TABLE IF EXISTS a, b", [T(None, "a", None), T(None, "b", None)], [T(None, "a", None), T(None, "b", None)]),
    ("DROP SEQUENCE order_ids", [], []),
    ("COPY orders FROM STDIN", [T(None, "orders", None)], [T(None, "orders", None)]),
    ("COPY (SELECT * FROM orders) TO STDOUT", [T(None, "orders", None)], []),
    (
        "REFRESH MATERIALIZED VIEW CONCURRENTLY reports.daily",
        [T("reports", "daily", None)],
        [T("reports", "daily", None)],
    ),
]


@pytest.mark.parametrize(("sql", "tables", "written"), CASES, ids=[case[0][:60] for case in CASES])
def test_tables_and_aliases(sql: str, tables: list[TableRef], written: list[TableRef]) -> None:
    analysis = analyze(sql)
    assert list(analysis.tables) == tables
    assert list(analysis.written_tables) == written


def test_reference_is_what_pg_hint_plan_matches() -> None:
    refs = [table.reference for table in analyze('SELECT * FROM public.t a JOIN "U" ON true').tables]
    assert refs == ["a", "U"]


def test_tables_come_in_text_order_even_when_the_tree_stores_them_otherwise() -> None:
    sql = (
        "WITH w AS (SELECT * FROM first_t)"
        " SELECT (SELECT 1 FROM second_t), * FROM third_t LIMIT (SELECT 1 FROM fourth_t)"
    )
    assert [t.name for t in analyze(sql).tables] == ["first_t", "second_t", "third_t", "fourth_t"]
