"""Plan identity and pin hints, from EXPLAIN (FORMAT JSON) documents (no database)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from queryopt.errors import HintError
from queryopt.hints.plan_shape import pin_hints, plan_shape


def scan(node_type: str, relation: str, alias: str | None = None, index: str | None = None, **extra: Any) -> Any:
    node: dict[str, Any] = {"Node Type": node_type, "Relation Name": relation, "Alias": alias or relation}
    if index:
        node["Index Name"] = index
    node.update({"Total Cost": 12.5, "Plan Rows": 40, "Plan Width": 8, **extra})
    return node


def join(node_type: str, outer: Any, inner: Any, join_type: str = "Inner") -> Any:
    return {"Node Type": node_type, "Join Type": join_type, "Total Cost": 99.0, "Plan Rows": 7, "Plans": [outer, inner]}


def bitmap(relation: str, alias: str, *indexes: str) -> Any:
    children = [{"Node Type": "Bitmap Index Scan", "Index Name": name, "Plan Rows": 3} for name in indexes]
    inner: Any = children[0] if len(children) == 1 else {"Node Type": "BitmapOr", "Plans": children}
    return {**scan("Bitmap Heap Scan", relation, alias), "Plans": [inner]}


THREE_TABLES = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Strategy": "Plain",
            "Plans": [
                join(
                    "Hash Join",
                    join("Nested Loop", scan("Seq Scan", "customers", "c"), bitmap("orders", "o", "orders_cust_idx")),
                    {"Node Type": "Hash", "Plans": [scan("Index Scan", "regions", "r", "regions_pkey")]},
                )
            ],
        },
        "Planning Time": 0.3,
    }
]


def test_the_hash_ignores_estimates_and_conditions() -> None:
    other = copy.deepcopy(THREE_TABLES)
    root = other[0]["Plan"]["Plans"][0]
    root["Total Cost"], root["Plan Rows"], root["Hash Cond"] = 1e6, 123456, "(o.region_id = r.id)"
    root["Plans"][0]["Plans"][0]["Filter"] = "(c.name = 'x'::text)"
    assert plan_shape(other).plan_hash == plan_shape(THREE_TABLES).plan_hash
    assert plan_shape(json.dumps(THREE_TABLES)).plan_hash == plan_shape(THREE_TABLES).plan_hash


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["Plans"][0].update({"Node Type": "Merge Join"}),  # join method
        lambda p: p["Plans"][0]["Plans"].reverse(),  # join order
        lambda p: p["Plans"][0]["Plans"][1]["Plans"][0].update({"Index Name": "regions_name_idx"}),  # index
        lambda p: p.update({"Strategy": "Hashed"}),  # aggregate strategy
        lambda p: p["Plans"][0].update({"Join Type": "Left"}),  # join type
    ],
)
def test_the_hash_changes_with_what_the_planner_chose(change: Any) -> None:
    other = copy.deepcopy(THREE_TABLES)
    change(other[0]["Plan"])
    assert plan_shape(other).plan_hash != plan_shape(THREE_TABLES).plan_hash


def test_pin_hints_fix_the_join_tree_methods_and_scans() -> None:
    hints = pin_hints(plan_shape(THREE_TABLES))
    assert hints.render() == (
        "Leading(((c o) r)) Set(max_parallel_workers_per_gather 0) NestLoop(c o) HashJoin(c o r) SeqScan(c) "
        "BitmapScan(o orders_cust_idx) IndexScan(r regions_pkey)"
    )


def test_a_parallel_plan_keeps_its_workers_free() -> None:
    gather = {"Node Type": "Gather", "Workers Planned": 2, "Plans": [scan("Seq Scan", "t", **{"Parallel Aware": True})]}
    assert pin_hints(plan_shape([{"Plan": gather}])).render() == "SeqScan(t)"


def test_a_bitmap_or_pins_every_index_it_combines() -> None:
    plan = [{"Plan": bitmap("orders", "o", "orders_a_idx", "orders_b_idx")}]
    expected = "Set(max_parallel_workers_per_gather 0) BitmapScan(o orders_a_idx orders_b_idx)"
    assert pin_hints(plan_shape(plan)).render() == expected


def test_the_tree_lines_show_the_plan() -> None:
    lines = plan_shape(THREE_TABLES).lines()
    assert lines[0] == "Aggregate (Plain)"
    assert "    -> Nested Loop (Inner)" in lines
    assert "      -> Bitmap Heap Scan on orders o" in lines
    assert "        -> Bitmap Index Scan using orders_cust_idx" in lines


def test_the_difference_names_the_first_node_that_differs() -> None:
    other = copy.deepcopy(THREE_TABLES)
    other[0]["Plan"]["Plans"][0]["Plans"][0]["Node Type"] = "Merge Join"
    message = plan_shape(THREE_TABLES).differences(plan_shape(other))
    assert message == "node 3: '-> Nested Loop (Inner)' became '-> Merge Join (Inner)'"


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        (join("Nested Loop", scan("Seq Scan", "t"), scan("Index Scan", "t", index="t_pkey")), "scanned twice"),
        ({"Node Type": "Append", "Plans": [scan("Seq Scan", "a"), scan("Seq Scan", "b")]}, "combines 2 inputs"),
        ({"Node Type": "Result"}, "scans no table"),
        (join("Hash Join", scan("Seq Scan", "a"), {"Node Type": "Function Scan", "Alias": "f"}), "not a table"),
    ],
)
def test_plans_pg_hint_plan_cannot_name_are_refused_with_the_reason(plan: Any, reason: str) -> None:
    with pytest.raises(HintError, match=reason):
        pin_hints(plan_shape([{"Plan": plan}]))


def test_a_subplan_scan_is_pinned_but_a_second_join_tree_is_refused() -> None:
    sub = {**scan("Index Scan", "items", "i", "items_pkey"), "Parent Relationship": "SubPlan"}
    plan = {**scan("Seq Scan", "orders", "o"), "Plans": [sub]}
    expected = "Set(max_parallel_workers_per_gather 0) IndexScan(i items_pkey) SeqScan(o)"
    assert pin_hints(plan_shape([{"Plan": plan}])).render() == expected
    sub_join = {**join("Hash Join", scan("Seq Scan", "x"), scan("Seq Scan", "y")), "Parent Relationship": "InitPlan"}
    two = join("Nested Loop", scan("Seq Scan", "a"), {**scan("Seq Scan", "b"), "Plans": [sub_join]})
    with pytest.raises(HintError, match="joins in 2 query blocks"):
        pin_hints(plan_shape([{"Plan": two}]))


@pytest.mark.parametrize("document", [[], {}, [{"Plan": "x"}], "not json at all"])
def test_not_a_plan_is_a_hint_error(document: Any) -> None:
    with pytest.raises((HintError, ValueError)):
        plan_shape(document)
