"""Resolution of the caller's index_hints against a query and a catalog given as plain facts."""

from __future__ import annotations

import pytest

from queryopt.analysis import analyze
from queryopt.errors import HintError
from queryopt.hints import (
    Catalog,
    HintSet,
    IndexInfo,
    JoinHint,
    Leading,
    RelationIndexes,
    ScanHint,
    TableInfo,
    resolve_hints,
)


def index(table: str, name: str, *columns: str, method: str = "btree", valid: bool = True) -> IndexInfo:
    plain = method not in ("gin", "brin")
    return IndexInfo("public", table, name, method, columns, False, False, valid, plain, True)


CATALOG = Catalog.from_tables(
    [
        TableInfo(
            "public",
            "orders",
            (
                index("orders", "orders_pkey", "id"),
                index("orders", "orders_customer_idx", "customer_id"),
                index("orders", "orders_tags_gin", "tags", method="gin"),
                index("orders", "orders_building_idx", "placed_at", valid=False),
            ),
        ),
        TableInfo("public", "customers", (index("customers", "customers_pkey", "id"),)),
        TableInfo("public", "Line Items", (index("Line Items", "line_items_order_idx", "order_id"),)),
        TableInfo("public", "empty", ()),
    ]
)
JOIN = "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = %s"


def resolve(sql: str, index_hints: object) -> str:
    return resolve_hints(analyze(sql), index_hints, CATALOG).render()  # type: ignore[arg-type]


def test_index_name_alone_finds_its_table_and_the_alias_the_query_uses() -> None:
    assert resolve(JOIN, "orders_customer_idx") == "IndexScan(o orders_customer_idx)"
    assert resolve("SELECT * FROM orders WHERE customer_id = 1", ["orders_customer_idx"]) == (
        "IndexScan(orders orders_customer_idx)"
    )


def test_several_indexes_of_one_table_become_one_hint() -> None:
    assert resolve(JOIN, ["orders_customer_idx", "orders_pkey", "customers_pkey"]) == (
        "IndexScan(o orders_customer_idx orders_pkey) IndexScan(c customers_pkey)"
    )


def test_mapping_accepts_table_or_alias() -> None:
    assert resolve(JOIN, {"orders": "orders_customer_idx"}) == "IndexScan(o orders_customer_idx)"
    assert resolve(JOIN, {"c": ["customers_pkey"]}) == "IndexScan(c customers_pkey)"


def test_bitmap_only_index_gets_a_bitmap_scan_not_a_disabled_index_scan() -> None:
    assert resolve(JOIN, "orders_tags_gin") == "BitmapScan(o orders_tags_gin)"
    assert resolve(JOIN, ["orders_tags_gin", "orders_customer_idx"]) == (
        "BitmapScan(o orders_tags_gin orders_customer_idx)"
    )
    with pytest.raises(HintError, match="only bitmap scans"):
        resolve(JOIN, [ScanHint("IndexScan", "o", ("orders_tags_gin",))])


def test_hint_objects_and_text_are_rewritten_to_aliases() -> None:
    hints = [ScanHint("IndexScan", "orders", ("orders_pkey",)), "HashJoin(orders customers)", Leading(("c", "o"))]
    assert resolve(JOIN, hints) == "IndexScan(o orders_pkey) HashJoin(o c) Leading(c o)"


def test_quoted_table_names_are_matched_exactly_and_rendered_quoted() -> None:
    sql = 'SELECT * FROM "Line Items" WHERE order_id = 3'
    assert resolve(sql, "line_items_order_idx") == 'IndexScan("Line Items" line_items_order_idx)'


def test_relation_not_in_query_lists_relations_and_aliases() -> None:
    with pytest.raises(HintError) as error:
        resolve(JOIN, {"items": "orders_pkey"})
    message = str(error.value)
    assert "relation 'items' is not in the query" in message
    assert "orders AS o, customers AS c" in message
    with pytest.raises(HintError, match="did you mean 'o'"):
        resolve(JOIN, [JoinHint("HashJoin", ("O", "c"))])


def test_unknown_index_names_the_tables_real_indexes() -> None:
    with pytest.raises(HintError) as error:
        resolve(JOIN, {"o": "orders_cust_idx"})
    message = str(error.value)
    assert "'orders_cust_idx' is not an index of public.orders" in message
    assert "orders_pkey (btree on id), orders_customer_idx (btree on customer_id)" in message
    with pytest.raises(HintError, match=r"no index named 'orders_cust_idx'.*orders_customer_idx"):
        resolve(JOIN, "orders_cust_idx")


def test_index_of_another_table_is_named_as_such() -> None:
    with pytest.raises(HintError, match=r"'customers_pkey' is on public\.customers.*indexes of public\.orders"):
        resolve(JOIN, {"o": "customers_pkey"})
    with pytest.raises(HintError, match=r"is on public\.Line Items, which the query does not read"):
        resolve(JOIN, "line_items_order_idx")


def test_invalid_index_is_refused() -> None:
    with pytest.raises(HintError, match="not valid"):
        resolve(JOIN, "orders_building_idx")


def test_self_join_needs_the_alias() -> None:
    sql = "SELECT * FROM orders a JOIN orders b ON a.id = b.id"
    with pytest.raises(HintError, match="appears in the query as a, b"):
        resolve(sql, "orders_pkey")
    assert resolve(sql, {"b": "orders_pkey"}) == "IndexScan(b orders_pkey)"
    with pytest.raises(HintError, match="appears in the query as a, b"):
        resolve(sql, {"orders": "orders_pkey"})


def test_same_reference_twice_is_ambiguous_for_pg_hint_plan() -> None:
    sql = "SELECT * FROM orders WHERE customer_id IN (SELECT customer_id FROM orders WHERE id = 1)"
    with pytest.raises(HintError, match="cannot tell them apart"):
        resolve(sql, [ScanHint("SeqScan", "orders")])


def test_table_missing_from_the_catalog() -> None:
    with pytest.raises(HintError, match="not a table of database"):
        resolve("SELECT * FROM ghosts g", {"g": "ghosts_pkey"})
    with pytest.raises(HintError, match="has no indexes"):
        resolve("SELECT * FROM empty", {"empty": "anything"})


def test_without_a_catalog_only_index_free_hints_resolve() -> None:
    analysis = analyze(JOIN)
    assert resolve_hints(analysis, ["NestLoop(orders c)"], None).render() == "NestLoop(o c)"
    with pytest.raises(HintError, match="without a catalog"):
        resolve_hints(analysis, "orders_pkey", None)
    with pytest.raises(HintError, match="without a catalog"):
        resolve_hints(analysis, [ScanHint("IndexScan", "o", ("orders_pkey",))], None)


def test_conflicts_between_forms_are_errors() -> None:
    with pytest.raises(HintError, match="conflicting"):
        resolve(JOIN, ["orders_pkey", ScanHint("SeqScan", "o")])


def test_results_are_cached_and_equal_inputs_give_the_same_object() -> None:
    analysis = analyze(JOIN)
    first = resolve_hints(analysis, ["orders_customer_idx"], CATALOG)
    assert resolve_hints(analysis, ["orders_customer_idx"], CATALOG) is first
    assert resolve_hints(analysis, [RelationIndexes("o", ("orders_customer_idx",))], CATALOG) == first
    assert resolve_hints(analysis, None, CATALOG) == HintSet()


def test_bad_forms_are_rejected() -> None:
    with pytest.raises(HintError):
        resolve(JOIN, [42])
    with pytest.raises(HintError):
        resolve(JOIN, {"o": []})
