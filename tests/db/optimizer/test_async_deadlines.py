"""The asyncio client-side deadline: one timer for the calls in flight, never mistaken for the caller's cancel."""

from __future__ import annotations

import asyncio

import pytest

from queryopt import QueryError, RecorderPolicy, Settings, TimeoutPolicy
from queryopt.optimizer.awaiting import AsyncOptimizer


def settings(dsn: str) -> Settings:
    return Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False), timeout=TimeoutPolicy(statement=30.0))


def test_a_failed_call_leaves_no_deadline_behind(dsn: str) -> None:
    async def main() -> None:
        async with AsyncOptimizer(dsn, settings=settings(dsn), analysis_processes=0) as optimizer:
            with pytest.raises(QueryError):
                await optimizer.execute("SELECT 1 / %s", [0])
            assert not optimizer.executor.deadlines._deadlines, "the failed call's deadline was dropped"
            assert await optimizer.query("SELECT 1", []) == [(1,)]

    asyncio.run(main())


def test_the_callers_cancel_stays_a_cancel(dsn: str) -> None:
    async def main() -> None:
        async with AsyncOptimizer(dsn, settings=settings(dsn), analysis_processes=0) as optimizer:
            call = asyncio.ensure_future(optimizer.execute("SELECT pg_sleep(5)", []))
            await asyncio.sleep(0.2)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert not optimizer.executor.deadlines._deadlines
            assert await optimizer.query("SELECT 2", []) == [(2,)], "the optimizer still serves calls"

    asyncio.run(main())
