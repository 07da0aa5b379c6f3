"""A hand-built :class:`Advice` with every part filled in, for renderer and documentation tests."""

from __future__ import annotations

from datetime import UTC, datetime

from queryopt.advisor import (
    Advice,
    IndexAdvice,
    QueryEffect,
    SkippedQuery,
    UnusedIndex,
    Verification,
    VerifiedQuery,
)

HOSTILE = "SELECT * FROM orders WHERE note = '<script>x</script> | `tick` [bold]red[/bold]'"


def sample_advice(*, verified: bool = False) -> Advice:
    effect = QueryEffect("0123456789abcdef", HOSTILE, 30, 1350.0, 6419.3, 79.8, 0.4)
    index = IndexAdvice(
        table="public.orders",
        columns=("customer_id", "created_at"),
        descending=(False, True),
        name="orders_customer_id_created_at_idx",
        create_statement="CREATE INDEX CONCURRENTLY orders_customer_id_created_at_idx "
        "ON public.orders (customer_id, created_at DESC)",
        size_bytes=12_533_760,
        queries=(effect,),
        share=0.4,
        saved_ms_per_hour=3182.2,
        write_cost_ms_per_hour=12.5,
        writes_per_second=0.35,
    )
    return Advice(
        generated_at=datetime(2024, 5, 2, 12, tzinfo=UTC),
        database="shop",
        window_start=datetime(2024, 5, 1, 12, tzinfo=UTC),
        window_end=datetime(2024, 5, 2, 12, tzinfo=UTC),
        sources=("slow_queries",),
        fingerprints=3,
        workload_ms_per_hour=8000.0,
        estimated_saving=0.39,
        budget_bytes=None,
        max_indexes=10,
        indexes=(index,),
        unused_indexes=(UnusedIndex("public.orders", "orders_total_idx", "CREATE INDEX …", 9_000_000, 0),),
        skipped=(SkippedQuery("fedcba9876543210", "SELECT * FROM t WHERE a = :a", "named placeholders …"),),
        notes=("a note",),
        verification=Verification(
            True,
            ("orders_customer_id_created_at_idx",),
            (("other_idx", "could not create"),),
            (VerifiedQuery("0123456789abcdef", 6419.3, 79.8, 80.1, ("orders_customer_id_created_at_idx",)),),
        )
        if verified
        else None,
        plans=42,
    )
