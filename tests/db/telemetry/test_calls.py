"""Calls through Optimizer, AsyncOptimizer and an instrumented SQLAlchemy engine, seen by an OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from queryopt import (
    AsyncOptimizer,
    LimitMode,
    LimitPolicy,
    Optimizer,
    QueryRejected,
    QueryTimeout,
    RecorderPolicy,
    RetryPolicy,
    Settings,
)
from queryopt.integrations.sqlalchemy import instrument, uninstrument
from queryopt.schema import migrate
from tests.telemetry_sdk import Collected

SECRET = "secret-parameter-9137"
LOOKUP = "SELECT id, owner FROM items WHERE owner = %s"
ON = Settings(telemetry=True, recorder=RecorderPolicy(enabled=False))


@pytest.fixture
def items(conn: psycopg.Connection[Any]) -> str:
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, owner text NOT NULL)")
    conn.execute("INSERT INTO items VALUES (1, %s), (2, 'someone else')", [SECRET])
    return str(conn.info.dbname)


def _stable(attributes: Any) -> dict[str, Any]:
    names = ("db.system.name", "db.namespace", "db.operation.name", "db.collection.name", "db.query.summary")
    return {name: attributes.get(name) for name in names}


def test_optimizer_calls_emit_the_histogram_and_a_span(dsn: str, items: str, collected: Collected) -> None:
    with Optimizer(dsn, settings=ON) as db:
        assert db.query(LOOKUP, [SECRET]) == [(1, SECRET)]
        assert db.query(LOOKUP, [SECRET], use_cache=True) == [(1, SECRET)]
        assert db.query(LOOKUP, [SECRET], use_cache=True) == [(1, SECRET)]
    expected = {
        "db.system.name": "postgresql",
        "db.namespace": f"{items}|public",
        "db.operation.name": "SELECT",
        "db.collection.name": "items",
        "db.query.summary": "SELECT items",
    }
    points = collected.histogram_points()
    assert {point.attributes["queryopt.cache.outcome"]: point.count for point in points} == {
        "off": 1,
        "miss": 1,
        "hit": 1,
    }
    for point in points:
        assert _stable(point.attributes) == expected
        assert "error.type" not in point.attributes
    spans = collected.spans()
    assert [span.name for span in spans] == ["SELECT items"] * 3
    assert {span.kind for span in spans} == {SpanKind.CLIENT}
    assert [span.attributes["queryopt.cache.outcome"] for span in spans] == ["off", "miss", "hit"]  # type: ignore[index]
    assert spans[0].attributes["db.query.text"] == "SELECT id, owner FROM items WHERE owner = %s"  # type: ignore[index]
    assert spans[0].attributes["queryopt.source"] == "optimize_query"  # type: ignore[index]
    assert SECRET not in collected.exported()
    hits = collected.points("queryopt.cache.hits")
    assert [point.value for point in hits] == [1]


def test_optimizer_timeout_reports_57014(dsn: str, items: str, collected: Collected) -> None:
    with Optimizer(dsn, settings=ON) as db, pytest.raises(QueryTimeout):
        db.query("SELECT pg_sleep(5) FROM items WHERE owner = %s", [SECRET], timeout=0.1)
    (point,) = collected.histogram_points()
    assert point.attributes is not None
    assert point.attributes["db.response.status_code"] == "57014"
    assert point.attributes["error.type"] == "57014"
    assert 0.1 <= point.sum < 5
    (span,) = collected.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["db.response.status_code"] == "57014"
    assert SECRET not in collected.exported()


def test_async_optimizer_calls_and_timeout(dsn: str, items: str, collected: Collected) -> None:
    async def calls() -> None:
        async with AsyncOptimizer(dsn, settings=ON) as db:
            assert await db.query(LOOKUP, [SECRET]) == [(1, SECRET)]
            with pytest.raises(QueryTimeout):
                await db.query("SELECT pg_sleep(5) FROM items WHERE owner = %s", [SECRET], timeout=0.1)

    asyncio.run(calls())
    by_summary = {span.name: span for span in collected.spans()}
    assert set(by_summary) == {"SELECT items"}
    points = collected.histogram_points()
    assert len(points) == 2
    failed = [p for p in points if "error.type" in p.attributes]
    assert [p.attributes["db.response.status_code"] for p in failed] == ["57014"]
    assert all(_stable(p.attributes)["db.namespace"] == f"{items}|public" for p in points)
    assert {span.attributes["queryopt.source"] for span in collected.spans()} == {"optimize_query_async"}  # type: ignore[index]
    assert SECRET not in collected.exported()


def test_instrumented_sqlalchemy_engine(dsn: str, items: str, collected: Collected) -> None:
    engine = create_engine(f"postgresql+psycopg:///?{dsn.replace(' ', '&')}")
    instrument(engine, settings=ON)
    try:
        with engine.connect() as conn:
            for _ in range(3):  # the sync fast path too, once the statement is known
                rows = conn.execute(text("SELECT id, owner FROM items WHERE owner = :owner"), {"owner": SECRET})
                assert rows.all() == [(1, SECRET)]
            slow = text("SELECT pg_sleep(5) FROM items WHERE owner = :owner").execution_options(
                queryopt={"timeout": 0.1}
            )
            with pytest.raises(OperationalError) as caught:
                conn.execute(slow, {"owner": SECRET})
            assert isinstance(caught.value, QueryTimeout)
    finally:
        uninstrument(engine)
        engine.dispose()
    spans = [span for span in collected.spans() if span.attributes["queryopt.source"] == "sqlalchemy"]  # type: ignore[index]
    assert [span.name for span in spans] == ["SELECT items"] * 4
    assert spans[-1].status.status_code is StatusCode.ERROR
    assert spans[-1].attributes["db.response.status_code"] == "57014"  # type: ignore[index]
    counts = {p.attributes.get("error.type"): p.count for p in collected.histogram_points()}
    assert counts == {None: 3, "57014": 1}
    assert SECRET not in collected.exported()


def test_off_by_default_reports_nothing(dsn: str, items: str, collected: Collected) -> None:
    with Optimizer(dsn, settings=Settings(recorder=RecorderPolicy(enabled=False))) as db:
        assert db.observer.telemetry is None
        db.query(LOOKUP, [SECRET], use_cache=True)
    assert collected.spans() == ()
    assert collected.histogram_points() == []


def test_recorder_counters_and_alerts(dsn: str, items: str, collected: Collected) -> None:
    migrate(dsn)
    settings = Settings(
        telemetry=True,
        recorder=RecorderPolicy(
            threshold=0.0,
            alert_min_samples=2,
            alert_warning_factor=100.0,  # the three real calls never raise one
            alert_critical_factor=1000.0,
        ),
    )
    with Optimizer(dsn, settings=settings) as db:
        for _ in range(3):
            db.query(LOOKUP, [SECRET])
        assert db.recorder is not None
        assert db.recorder.flush(10)
        fingerprint = db.prepare(LOOKUP).analysis.fingerprint
        db.query_stats.observe(fingerprint, 60.0)  # far slower than its recent calls: a critical alert
    values = {name: [p.value for p in collected.points(name)] for name in collected.metrics() if "queryopt" in name}
    assert values["queryopt.recorder.queued"] == [3]
    assert values["queryopt.recorder.written"] == [3]
    assert values["queryopt.alerts"] == [1]
    (alert,) = collected.points("queryopt.alerts")
    assert alert.attributes["queryopt.alert.severity"] == "critical"


def test_a_rejected_call_is_reported_without_a_database_status(dsn: str, items: str, collected: Collected) -> None:
    limits = LimitPolicy(LimitMode.STATIC, concurrency=1, max_wait=0.0)
    settings = Settings(telemetry=True, recorder=RecorderPolicy(enabled=False), limits=limits)
    with Optimizer(dsn, settings=settings) as db:
        assert db.limiter is not None
        held = db.limiter.acquire(db.prepare(LOOKUP).analysis.fingerprint)  # a call of the same shape is running
        try:
            with pytest.raises(QueryRejected):
                db.query(LOOKUP, [SECRET])
        finally:
            db.limiter.release(held, 0.001)
    (point,) = collected.histogram_points()
    assert point.attributes is not None
    assert point.attributes["error.type"] == "queryopt.QueryRejected"
    assert "db.response.status_code" not in point.attributes  # the server never saw it
    (span,) = collected.spans()
    assert span.status.status_code is StatusCode.ERROR


def test_a_span_carries_the_retries_of_its_call(dsn: str, items: str, collected: Collected) -> None:
    settings = Settings(
        dsn=dsn + " options='-c default_transaction_isolation=serializable'",
        telemetry=True,
        recorder=RecorderPolicy(enabled=False),
        retry=RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.01),
    )
    with Optimizer(settings=settings) as db:
        db.query(LOOKUP, [SECRET])  # no retry
        blocker = psycopg.connect(dsn)
        try:
            blocker.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            blocker.execute("UPDATE items SET owner = 'blocker' WHERE id = 2")
            worker = threading.Thread(target=db.execute, args=("UPDATE items SET owner = owner || '!' WHERE id = 2",))
            worker.start()
            threading.Event().wait(0.3)  # the update waits for the blocker, then fails to serialize
            blocker.commit()
            worker.join(10)
        finally:
            blocker.close()
        db.query(LOOKUP, [SECRET])  # none again
        assert db.stats()["retries"] >= 1
    retries = [span.attributes["queryopt.retries"] for span in collected.spans()]  # type: ignore[index]
    assert retries[0] == 0
    assert retries[2] == 0
    assert retries[1] == db.stats()["retries"] >= 1


def test_a_span_carries_the_plan_its_query_last_ran_with(dsn: str, items: str, collected: Collected) -> None:
    migrate(dsn)
    settings = Settings(telemetry=True, recorder=RecorderPolicy(threshold=0.0))  # every call is recorded
    with Optimizer(dsn, settings=settings) as db:
        db.query(LOOKUP, [SECRET])  # no plan captured yet
        assert db.recorder is not None
        assert db.recorder.flush(10)
        db.query(LOOKUP, [SECRET])
    with psycopg.connect(dsn) as conn:
        (stored,) = conn.execute("SELECT DISTINCT plan_hash FROM queryopt.slow_queries WHERE plan_hash IS NOT NULL")
    first, second = (span.attributes or {} for span in collected.spans())
    assert "queryopt.plan.hash" not in first
    assert second["queryopt.plan.hash"] == stored[0]
