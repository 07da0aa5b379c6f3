"""Candidate indexes: equality columns first, then one range or the sort; prefixes of existing indexes excluded."""

from __future__ import annotations

from queryopt.advisor.candidates import IndexCandidate, candidate_indexes, covers
from queryopt.advisor.predicates import ColumnUse

ORDERS = (None, "orders")


def _labels(use: ColumnUse, distinct: dict[str, float] | None = None) -> list[str]:
    return [candidate.label for candidate in candidate_indexes(use, distinct)]


def test_equality_columns_lead_most_distinct_first() -> None:
    use = ColumnUse(ORDERS, equality=("status", "customer_id"))
    assert _labels(use, {"status": 4, "customer_id": 20_000}) == ["customer_id", "status", "customer_id, status"]
    assert _labels(use) == ["status", "customer_id", "status, customer_id"]  # without statistics: text order


def test_a_range_column_follows_the_equalities() -> None:
    use = ColumnUse(ORDERS, equality=("customer_id",), ranges=("created_at",))
    assert _labels(use) == ["customer_id", "customer_id, created_at", "created_at"]


def test_the_sort_follows_the_equalities_and_reads_backwards_for_free() -> None:
    use = ColumnUse(ORDERS, equality=("customer_id",), order=(("created_at", True),))
    assert _labels(use) == ["customer_id", "customer_id, created_at", "created_at"]
    mixed = ColumnUse(ORDERS, order=(("created_at", True), ("id", False)))
    assert _labels(mixed) == ["created_at, id DESC"]
    fixed = ColumnUse(ORDERS, equality=("status",), order=(("status", False), ("created_at", True)))
    assert "status, created_at" in _labels(fixed)  # the equality column needs no place in the sort


def test_join_keys_alone_and_with_the_equalities() -> None:
    use = ColumnUse(ORDERS, equality=("status",), joins=("customer_id",))
    assert _labels(use) == ["status", "customer_id", "customer_id, status"]


def test_no_fixed_limit_on_width() -> None:
    use = ColumnUse(ORDERS, equality=("a", "b", "c", "d"), ranges=("e",))
    assert "a, b, c, d, e" in _labels(use)


def test_an_existing_index_covers_its_prefixes_in_either_direction() -> None:
    candidate = IndexCandidate(ORDERS, ("customer_id", "created_at"), (False, False))
    assert covers(["customer_id", "created_at", "id"], [False, False, False], candidate)
    assert covers(["customer_id", "created_at"], [True, True], candidate)  # read backwards
    assert not covers(["customer_id", "created_at"], [False, True], candidate)
    assert not covers(["created_at", "customer_id"], [False, False], candidate)
    assert not covers(["customer_id"], [False], candidate)
    assert not covers([None, "created_at"], [False, False], candidate)  # an expression index
