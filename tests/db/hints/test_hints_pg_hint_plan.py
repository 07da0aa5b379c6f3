"""Behaviour that needs pg_hint_plan itself (skipped when the server does not preload it)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from queryopt.analysis import analyze
from queryopt.errors import HintError
from queryopt.hints import Catalog, HintSet, ScanHint, apply_hint_block, hint_plan_active, resolve_hints

pytestmark = pytest.mark.pg_hint_plan

Conn = psycopg.Connection[tuple[object, ...]]
QUERY = "SELECT * FROM items WHERE v < %s"
SEQ_PLAN_QUERY = "SELECT * FROM items WHERE v < 5"


@pytest.fixture
def items(conn: Conn) -> Conn:
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, payload text)")
    conn.execute("INSERT INTO items SELECT g, g % 10, repeat('x', 40) FROM generate_series(1, 5000) AS g")
    conn.execute("CREATE INDEX items_v_idx ON items (v)")
    conn.execute('CREATE INDEX "Items%V" ON items (v)')
    conn.execute("ANALYZE items")
    return conn


def plan_of(conn: Conn, sql: str, params: Any = None) -> dict[str, Any]:
    # EXPLAIN goes in front of the text: pg_hint_plan still reads a block right after "EXPLAIN (FORMAT JSON) ".
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def scan(conn: Conn, sql: str, params: Any = None) -> tuple[str, str | None]:
    plan = plan_of(conn, sql, params)
    return plan["Node Type"], plan.get("Index Name")


def test_detected_as_active(items: Conn) -> None:
    assert hint_plan_active(items, recheck=True)


def test_placed_block_is_honoured(items: Conn) -> None:
    hints = HintSet.of(ScanHint("IndexScan", "items", ("items_v_idx",)))
    assert scan(items, SEQ_PLAN_QUERY) == ("Seq Scan", None)
    assert scan(items, apply_hint_block(SEQ_PLAN_QUERY, hints, has_params=False)) == ("Index Scan", "items_v_idx")


def test_a_tracing_comment_first_kills_the_hint_and_placement_revives_it(items: Conn) -> None:
    dead = "/* traceparent=00-abc */ /*+ IndexScan(items items_v_idx) */ " + SEQ_PLAN_QUERY
    assert scan(items, dead) == ("Seq Scan", None)  # the trap, as measured
    revived = apply_hint_block(dead, HintSet(), has_params=False)
    assert revived.startswith("/*+ IndexScan(items items_v_idx) */ /* traceparent=00-abc */")
    assert scan(items, revived) == ("Index Scan", "items_v_idx")


def test_quoted_index_name_with_percent_works_through_server_side_parameters(items: Conn) -> None:
    hints = HintSet.of(ScanHint("IndexScan", "items", ("Items%V",)))
    hinted = apply_hint_block(QUERY, hints, has_params=True)
    assert '"Items%%V"' in hinted
    assert scan(items, hinted, [5]) == ("Index Scan", "Items%V")
    for _ in range(6):  # past psycopg's automatic preparation threshold, and explicitly prepared
        assert items.execute(hinted, [5]).fetchall()
    assert items.execute(hinted, [5], prepare=True).fetchall()
    assert scan(items, hinted, [5]) == ("Index Scan", "Items%V")


def test_table_name_of_an_aliased_relation_is_rewritten_to_the_alias(items: Conn) -> None:
    sql = "SELECT * FROM items it WHERE it.v < 5"
    naive = HintSet.of(ScanHint("IndexScan", "items", ("items_v_idx",)))
    assert scan(items, apply_hint_block(sql, naive, has_params=False)) == ("Seq Scan", None)  # silently ignored
    resolved = resolve_hints(analyze(sql), [ScanHint("IndexScan", "items", ("items_v_idx",))], Catalog.load(items))
    assert resolved.render() == "IndexScan(it items_v_idx)"
    assert scan(items, apply_hint_block(sql, resolved, has_params=False)) == ("Index Scan", "items_v_idx")


def test_gin_index_named_alone_becomes_a_bitmap_scan_not_a_disabled_plan(items: Conn) -> None:
    items.execute("ALTER TABLE items ADD COLUMN tags text[]")
    items.execute("UPDATE items SET tags = ARRAY['t' || (id % 50)]")
    items.execute("CREATE INDEX items_tags_gin ON items USING gin (tags)")
    items.execute("ANALYZE items")
    sql = "SELECT * FROM items WHERE tags @> ARRAY['t7']"
    forced = HintSet.of(ScanHint("IndexScan", "items", ("items_tags_gin",)))
    assert plan_of(items, apply_hint_block(sql, forced, has_params=False))["Total Cost"] >= 1e10  # the trap
    resolved = resolve_hints(analyze(sql), "items_tags_gin", Catalog.load(items))
    assert resolved.render() == "BitmapScan(items items_tags_gin)"
    plan = plan_of(items, apply_hint_block(sql, resolved, has_params=False))
    assert plan["Node Type"] == "Bitmap Heap Scan"
    assert plan["Total Cost"] < 1e10


def test_misspelt_index_would_force_a_disabled_plan_and_is_refused(items: Conn) -> None:
    typo = HintSet.of(ScanHint("IndexScan", "items", ("items_v_idz",)))
    assert plan_of(items, apply_hint_block(SEQ_PLAN_QUERY, typo, has_params=False))["Total Cost"] >= 1e10
    with pytest.raises(HintError, match="items_v_idz"):
        resolve_hints(analyze(SEQ_PLAN_QUERY), [ScanHint("IndexScan", "items", ("items_v_idz",))], Catalog.load(items))
