"""The ways docs/api.md gives to read statistics work as written (there is no ``queryopt.stats()``)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

import queryopt


def test_the_default_optimizer_and_an_instrumented_engine_report_their_numbers(dsn: str) -> None:
    queryopt.configure(dsn, settings=queryopt.Settings(dsn=dsn, recorder=queryopt.RecorderPolicy(enabled=False)))
    try:
        queryopt.optimize_query("SELECT %s::int", [1], use_cache=True)
        queryopt.optimize_query("SELECT %s::int", [1], use_cache=True)
        counters = queryopt.default_optimizer().stats()
        assert (counters["hits"], counters["misses"]) == (1, 1)
        (timings,) = queryopt.metrics_summary().values()
        assert timings["count"] == 1  # the hit is served before any query runs
    finally:
        queryopt.default_optimizer().close()
    assert not callable(getattr(queryopt, "stats", None))

    engine = create_engine(f"postgresql+psycopg://?{_as_url_query(dsn)}")
    instrumentation = queryopt.instrument(
        engine, settings=queryopt.Settings(recorder=queryopt.RecorderPolicy(enabled=False))
    )
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 41 + 1")).scalar() == 42
        assert instrumentation.stats()["prepared"] == 1
        assert [summary["count"] for summary in instrumentation.metrics_summary().values()] == [1]
    finally:
        queryopt.uninstrument(engine)


def _as_url_query(dsn: str) -> str:
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    return "&".join(f"{key}={quote(str(value), safe='')}" for key, value in conninfo_to_dict(dsn).items())
