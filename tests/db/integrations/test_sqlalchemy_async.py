"""queryopt.instrument() on an engine from create_async_engine (psycopg's AsyncConnection): the same contract as
the sync engine. Each test runs its coroutine with asyncio.run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from queryopt import CachePolicy, HintMode, HintRules, QueryTimeout, RecorderPolicy, Settings, SlowQueryRecorder
from queryopt.integrations.sqlalchemy import Instrumentation, instrument, uninstrument
from queryopt.schema.migrator import migrate
from tests.db.integrations.sqlalchemy_app import (
    BOOKS_OF_AUTHOR_INDEX,
    Author,
    Book,
    async_engine,
    drop_sync,
    run_async,
    seed_sync,
    sync_engine,
)

QUIET = Settings(recorder=RecorderPolicy(enabled=False), cache=CachePolicy(ttl=60))
CACHE = {"queryopt": {"cache": True}}
T = TypeVar("T")


def run(dsn: str, scenario: Callable[[AsyncEngine, Instrumentation], Awaitable[T]], **options: Any) -> T:
    """Run ``scenario`` on an instrumented async engine, uninstrumented and disposed afterwards."""

    async def main() -> T:
        engine = async_engine(dsn)
        instrumentation = instrument(engine, **{"settings": QUIET, **options})
        try:
            return await scenario(engine, instrumentation)
        finally:
            uninstrument(engine)
            await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def seeded(dsn: str) -> Engine:
    engine = sync_engine(dsn)
    seed_sync(engine)
    engine.dispose()
    return engine


def test_orm_application_gives_identical_results(dsn: str) -> None:
    async def plain_run() -> list[Any]:
        engine = async_engine(dsn)
        try:
            return await run_async(engine)
        finally:
            await engine.dispose()

    expected = asyncio.run(plain_run())
    engine = sync_engine(dsn)
    drop_sync(engine)
    engine.dispose()

    async def instrumented(engine: AsyncEngine, instrumentation: Instrumentation) -> list[Any]:
        seen = await run_async(engine.execution_options(**CACHE))
        assert len(instrumentation.metrics_summary()) > 8
        assert instrumentation.stats()["misses"] > 0
        return seen

    assert run(dsn, instrumented) == expected


def test_hint_rules_reach_the_server_first(dsn: str, seeded: Engine, conn: psycopg.Connection[Any]) -> None:
    query = select(Book.title).where(Book.author_id == 6).order_by(Book.id)
    rules = HintRules()
    rules.add(str(query.compile(dialect=sync_engine(dsn).dialect)), [BOOKS_OF_AUTHOR_INDEX])
    settings = Settings(recorder=RecorderPolicy(enabled=False), hint_mode=HintMode.PG_HINT_PLAN)

    async def scenario(engine: AsyncEngine, _: Instrumentation) -> tuple[list[str], str]:
        async with AsyncSession(engine) as session:
            titles = list((await session.scalars(query)).all())
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            pid = raw.driver_connection.info.backend_pid  # type: ignore[union-attr]
            row = conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            assert row is not None
            return titles, str(row[0])

    titles, received = run(dsn, scenario, settings=settings, hint_rules=rules)
    assert titles == ["book 6.1", "book 6.2", "book 6.3"]
    assert received.startswith(f"/*+ IndexScan(books {BOOKS_OF_AUTHOR_INDEX}) */ SELECT books.title")


def test_slow_queries_are_recorded_and_timeouts_cancel_on_the_server(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    migrate(dsn)
    recorder = SlowQueryRecorder(dsn, RecorderPolicy(threshold=0.1, flush_interval=0.05, capture_plans=False))

    async def scenario(engine: AsyncEngine, instrumentation: Instrumentation) -> None:
        async with AsyncSession(engine) as session:
            assert (await session.execute(select(Author.name, func.pg_sleep(0.15)).where(Author.id == 1))).one()[0]
            runaway = select(Author.name, func.pg_sleep(5), text("'async-runaway'")).where(Author.id == 1)
            with pytest.raises(OperationalError) as caught:
                await session.execute(runaway.execution_options(queryopt={"timeout": 0.2}))
            assert isinstance(caught.value, QueryTimeout)
            assert caught.value.limit == 0.2
            await session.rollback()
            active = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%async-runaway%' AND state = 'active'"
                " AND pid <> pg_backend_pid()"
            ).fetchone()
            assert active == (0,)
            assert await session.scalar(select(Author.name).where(Author.id == 2)) == "author 2"
            assert await session.scalar(text("SHOW statement_timeout")) == "30s"
        assert instrumentation.stats()["timeouts"] == 1
        assert recorder.flush(10)

    try:
        run(dsn, scenario, recorder=recorder)
    finally:
        recorder.close()
    rows = conn.execute(
        "SELECT kind, timed_out, sqlstate, source FROM queryopt.slow_queries ORDER BY started_at"
    ).fetchall()
    assert rows == [("select", False, None, "sqlalchemy"), ("select", True, "57014", "sqlalchemy")]


def test_cached_orm_query_without_round_trip_invalidated_by_commit_not_rollback(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    query = select(Author).where(Author.id == 7).execution_options(**CACHE)

    async def name(engine: AsyncEngine) -> str:
        async with AsyncSession(engine) as session:
            return (await session.scalars(query)).one().name

    async def scenario(engine: AsyncEngine, instrumentation: Instrumentation) -> None:
        assert await name(engine) == "author 7"
        conn.execute("ALTER TABLE authors RENAME TO authors_away")  # a round trip would now fail
        try:
            assert await name(engine) == "author 7"
        finally:
            conn.execute("ALTER TABLE authors_away RENAME TO authors")
        async with AsyncSession(engine) as session:
            await session.execute(update(Author).where(Author.id == 7).values(name="rolled back"))
            assert (await session.scalars(query)).one().name == "rolled back"  # its own write, not the cache
            await session.rollback()
        assert await name(engine) == "author 7"
        assert instrumentation.stats()["hits"] == 2
        async with AsyncSession(engine) as session:
            await session.execute(update(Author).where(Author.id == 7).values(name="committed"))
            await session.commit()
        assert await name(engine) == "committed"
        counters = instrumentation.stats()
        assert (counters["hits"], counters["misses"]) == (2, 2)

    run(dsn, scenario)


def test_planner_settings_fallback_through_the_async_connection(dsn: str, seeded: Engine) -> None:
    query = text("SELECT current_setting('enable_seqscan') FROM books WHERE author_id = :author LIMIT 1")
    rules = HintRules()
    rules.add(str(query.compile(dialect=sync_engine(dsn).dialect)), [BOOKS_OF_AUTHOR_INDEX])
    settings = Settings(recorder=RecorderPolicy(enabled=False), hint_mode=HintMode.PLANNER_SETTINGS)

    async def scenario(engine: AsyncEngine, _: Instrumentation) -> list[Any]:
        seen = []
        async with engine.connect() as connection:
            seen.append((await connection.execute(query, {"author": 1})).scalar())
            seen.append((await connection.execute(text("SHOW enable_seqscan"))).scalar())
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            seen.append((await autocommit.execute(query, {"author": 1})).scalar())
            seen.append((await autocommit.execute(text("SHOW enable_seqscan"))).scalar())
        return seen

    assert run(dsn, scenario, settings=settings, hint_rules=rules) == ["off", "on", "off", "on"]
