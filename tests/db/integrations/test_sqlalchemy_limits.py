"""Per-fingerprint concurrency limits on instrumented SQLAlchemy engines, sync and async."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text

from queryopt import LimitMode, LimitPolicy, QueryRejected, RecorderPolicy, Settings
from queryopt.integrations.sqlalchemy import instrument, uninstrument
from tests.db.integrations.sqlalchemy_app import async_engine, sync_engine

SLOW = text("SELECT pg_sleep(0.3)")


def one_at_a_time(dsn: str) -> Settings:
    return Settings(
        dsn=dsn,
        recorder=RecorderPolicy(enabled=False),
        limits=LimitPolicy(LimitMode.STATIC, concurrency=1, max_wait=0.0),
    )


def test_an_instrumented_engine_turns_away_a_query_shape_over_its_limit(dsn: str) -> None:
    engine = sync_engine(dsn, pool_size=4, max_overflow=1)
    instrumentation = instrument(engine, settings=one_at_a_time(dsn))
    try:
        assert instrumentation.limiter is not None
        assert instrumentation.limiter.pool_size == 5  # the pool's size and its overflow
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def call() -> None:
            with engine.connect() as conn:
                start.wait()
                try:
                    conn.execute(SLOW)
                    outcomes.append("ran")
                except QueryRejected as exc:
                    outcomes.append(f"rejected at limit {exc.limit}")

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["ran", "rejected at limit 1"]
        with engine.connect() as conn:  # another shape meanwhile, and the rejected call's connection is fine
            assert conn.execute(text("SELECT 41 + 1")).scalar() == 42
        stats = instrumentation.stats()
        assert (stats["limit_rejections"], stats["limit_in_flight"]) == (1, 0)
    finally:
        uninstrument(engine)
        engine.dispose()


def test_an_instrumented_async_engine_turns_away_a_query_shape_over_its_limit(dsn: str) -> None:
    async def scenario() -> tuple[list[str], dict[str, int]]:
        engine = async_engine(dsn, pool_size=4, max_overflow=0)
        instrumentation = instrument(engine, settings=one_at_a_time(dsn))
        try:

            async def call() -> str:
                async with engine.connect() as conn:
                    try:
                        await conn.execute(SLOW)
                    except QueryRejected:
                        return "rejected"
                    return "ran"

            outcomes = await asyncio.gather(call(), call(), call())
            return sorted(outcomes), instrumentation.stats()
        finally:
            uninstrument(engine)
            await engine.dispose()

    outcomes, stats = asyncio.run(scenario())
    assert outcomes == ["ran", "rejected", "rejected"]
    assert (stats["limit_rejections"], stats["limit_in_flight"]) == (2, 0)
