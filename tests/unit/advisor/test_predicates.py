"""How statements search their tables, read from the sqlglot tree."""

from __future__ import annotations

import pytest

from queryopt.advisor.predicates import ColumnUse, TableName, column_uses

SHOP = {
    (None, "orders"): frozenset({"id", "customer_id", "status", "created_at", "total"}),
    (None, "customers"): frozenset({"id", "email", "region"}),
}


def _columns_of(table: TableName) -> frozenset[str] | None:
    return SHOP.get(table)


def _uses(sql: str) -> dict[str, ColumnUse]:
    return {use.table[1]: use for use in column_uses(sql, _columns_of)}


def test_equality_range_and_order_of_one_table() -> None:
    use = _uses(
        "SELECT id FROM orders WHERE customer_id = %s AND created_at >= %s AND created_at < %s "
        "ORDER BY created_at DESC LIMIT 10"
    )["orders"]
    assert use == ColumnUse((None, "orders"), ("customer_id",), ("created_at",), (("created_at", True),), ())


@pytest.mark.parametrize(
    ("where", "equality", "ranges"),
    [
        ("status IN ('open', 'paid')", ("status",), ()),
        ("status IS NULL", ("status",), ()),
        ("total BETWEEN %s AND %s", (), ("total",)),
        ("%s < total", (), ("total",)),
        ("created_at > now() - interval '1 day'", (), ("created_at",)),
        ("(customer_id = $1) AND (status = $2)", ("customer_id", "status"), ()),
        ("lower(status) = %s", (), ()),  # an expression: a plain index on status does not serve it
        ("status::text = %s", (), ()),
        ("customer_id = %s OR status = %s", (), ()),
        ("customer_id = total", (), ()),  # two columns of one row: not a search condition
        ("status IN (SELECT status FROM orders)", (), ()),
    ],
)
def test_conditions(where: str, equality: tuple[str, ...], ranges: tuple[str, ...]) -> None:
    use = _uses(f"SELECT * FROM orders WHERE {where}")["orders"]
    assert (use.equality, use.ranges) == (equality, ranges)


def test_join_keys_and_filters_of_each_side() -> None:
    uses = _uses("SELECT o.id FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email = %s")
    assert uses["customers"].equality == ("email",)
    assert uses["customers"].joins == ("id",)
    assert uses["orders"].joins == ("customer_id",)


def test_unqualified_columns_resolve_through_the_catalog() -> None:
    uses = _uses("SELECT * FROM orders JOIN customers ON customer_id = customers.id WHERE email = %s AND status = %s")
    assert uses["customers"].equality == ("email",)
    assert uses["orders"].equality == ("status",)
    assert uses["orders"].joins == ("customer_id",)
    # Without the catalog an unqualified column of a join belongs to nobody.
    blind = {use.table[1]: use for use in column_uses("SELECT * FROM orders, customers WHERE email = %s")}
    assert blind["customers"].empty
    assert blind["orders"].empty


def test_a_correlated_subquery_is_an_equality_inside_and_a_join_key_outside() -> None:
    uses = column_uses(
        "SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = %s)",
        _columns_of,
    )
    by_table = {use.table[1]: use for use in uses}
    assert by_table["orders"].equality == ("customer_id", "status")
    assert by_table["customers"].joins == ("id",)


def test_update_and_delete_targets() -> None:
    update = _uses("UPDATE orders SET status = %s WHERE customer_id = %s")["orders"]
    assert update.equality == ("customer_id",)
    delete = _uses("DELETE FROM orders WHERE created_at < %s")["orders"]
    assert delete.ranges == ("created_at",)


def test_order_by_only_when_one_table_gives_every_key() -> None:
    assert _uses("SELECT * FROM orders ORDER BY created_at, id DESC")["orders"].order == (
        ("created_at", False),
        ("id", True),
    )
    assert _uses("SELECT * FROM orders ORDER BY created_at + interval '1 day'")["orders"].order == ()
    two = _uses("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.created_at, c.email")
    assert two["orders"].order == ()
    assert two["customers"].order == ()


def test_subqueries_in_from_and_ctes_are_scopes_of_their_own() -> None:
    uses = column_uses(
        "WITH recent AS (SELECT * FROM orders WHERE created_at > %s) "
        "SELECT * FROM (SELECT * FROM customers WHERE region = %s) AS c JOIN recent r ON r.customer_id = c.id",
        _columns_of,
    )
    by_table = {use.table[1]: use for use in uses if not use.empty}
    assert by_table["orders"].ranges == ("created_at",)
    assert by_table["customers"].equality == ("region",)
