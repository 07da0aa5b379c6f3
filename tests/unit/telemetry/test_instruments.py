from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, StatusCode

from queryopt import QueryTimeout
from queryopt.analysis import analyze
from tests.telemetry_sdk import Collected

SECRET = "s3cr3t-value-4711"


def test_a_call_records_the_duration_histogram_with_the_stable_attributes(collected: Collected) -> None:
    analysis = analyze("SELECT id, total FROM orders WHERE customer_id = %s")
    collected.telemetry.record_call(
        analysis, 0.0042, database="shop", search_path='"$user", public', cache_outcome="miss"
    )
    metric = collected.metrics()["db.client.operation.duration"]
    assert metric.unit == "s"
    (point,) = metric.data.data_points
    assert point.count == 1
    assert point.sum == 0.0042
    assert tuple(point.explicit_bounds) == (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
    assert dict(point.attributes) == {
        "db.system.name": "postgresql",
        "db.namespace": "shop|public",
        "db.operation.name": "SELECT",
        "db.collection.name": "orders",
        "db.query.summary": "SELECT orders",
        "queryopt.cache.outcome": "miss",
        "queryopt.hints.applied": False,
    }


def test_a_call_is_a_client_span_named_by_its_summary_with_explicit_times(collected: Collected) -> None:
    analysis = analyze("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = %s")
    collected.telemetry.record_call(
        analysis,
        0.25,
        database="shop",
        search_path="public",
        cache_outcome="off",
        hints="/*+ IndexScan(o orders_pkey) */",
        plan_hash="9f2c",
        retries=1,
        source="optimize_query",
    )
    (span,) = collected.spans()
    assert span.name == "SELECT orders customers"
    assert span.kind is SpanKind.CLIENT
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time - span.start_time == 250_000_000
    attributes = dict(span.attributes or {})
    assert attributes["db.query.text"] == analysis.normalized_sql
    assert attributes["db.query.summary"] == "SELECT orders customers"
    assert attributes["db.namespace"] == "shop|public"
    assert attributes["queryopt.hints"] == "/*+ IndexScan(o orders_pkey) */"
    assert attributes["queryopt.hints.applied"] is True
    assert attributes["queryopt.plan.hash"] == "9f2c"
    assert attributes["queryopt.retries"] == 1
    assert attributes["queryopt.source"] == "optimize_query"
    assert attributes["queryopt.fingerprint"] == analysis.fingerprint
    assert "db.collection.name" not in attributes  # two tables
    assert span.status.status_code is StatusCode.UNSET


def test_a_timeout_reports_sqlstate_57014_as_status_code_and_error_type(collected: Collected) -> None:
    analysis = analyze("SELECT pg_sleep(%s)")
    error = QueryTimeout(f"canceling statement due to statement timeout ({SECRET})", limit=0.1, elapsed=0.1)
    collected.telemetry.record_call(
        analysis, 0.1, database="shop", search_path="public", cache_outcome="off", error=error
    )
    (point,) = collected.histogram_points()
    assert point.attributes is not None
    assert point.attributes["db.response.status_code"] == "57014"
    assert point.attributes["error.type"] == "57014"
    (span,) = collected.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "57014"
    assert SECRET not in repr(span.to_json())  # the server's message (which may quote values) stays out


def test_parameter_values_never_appear(collected: Collected) -> None:
    analysis = analyze(f"SELECT * FROM users WHERE email = '{SECRET}' AND token = %s")
    collected.telemetry.record_call(analysis, 0.01, database="shop", search_path="public", cache_outcome="miss")
    collected.telemetry.record_call(analysis, 0.02, database="shop", search_path="public", cache_outcome="hit")
    exported = "".join(span.to_json() for span in collected.spans())
    exported += collected.reader.get_metrics_data().to_json()  # type: ignore[union-attr]
    assert SECRET not in exported
    assert "users" in exported


def test_calls_of_one_shape_share_one_series_per_outcome(collected: Collected) -> None:
    for value in range(5):
        sql = f"SELECT * FROM orders WHERE id = {value}"  # constants: same fingerprint, same attributes
        collected.telemetry.record_call(
            analyze(sql), 0.001, database="shop", search_path="public", cache_outcome="miss"
        )
    collected.telemetry.record_call(
        analyze("SELECT * FROM orders WHERE id = 9"), 0.0, database="shop", search_path="public", cache_outcome="hit"
    )
    counts = {point.attributes["queryopt.cache.outcome"]: point.count for point in collected.histogram_points()}
    assert counts == {"miss": 5, "hit": 1}


@dataclass
class _Stats:
    counters: dict[str, int]

    def stats(self) -> dict[str, int]:
        return dict(self.counters)


def test_cache_and_recorder_counters_read_stats(collected: Collected) -> None:
    cache = _Stats({"hits": 7, "misses": 3, "evictions": 1, "stores": 3})
    recorder = _Stats({"queued": 5, "recorded": 4, "dropped": 2, "sampled_out": 6, "pending": 1})
    collected.telemetry.watch_cache(cache)
    collected.telemetry.watch_cache(cache)  # a cache shared by two optimizers counts once
    collected.telemetry.watch_recorder(recorder)
    metrics = collected.metrics()
    values = {name: [p.value for p in metrics[name].data.data_points] for name in metrics}
    assert values["queryopt.cache.hits"] == [7]
    assert values["queryopt.cache.misses"] == [3]
    assert values["queryopt.cache.evictions"] == [1]
    assert values["queryopt.recorder.queued"] == [5]
    assert values["queryopt.recorder.written"] == [4]
    dropped = {
        p.attributes["queryopt.recorder.reason"]: p.value for p in metrics["queryopt.recorder.dropped"].data.data_points
    }
    assert dropped == {"queue": 2, "sampled_out": 6}
    assert metrics["queryopt.cache.hits"].data.is_monotonic
    assert metrics["queryopt.recorder.written"].unit == "{record}"


def test_watching_does_not_keep_a_cache_alive(collected: Collected) -> None:
    cache = _Stats({"hits": 7, "misses": 3, "evictions": 0})
    collected.telemetry.watch_cache(cache)
    assert collected.points("queryopt.cache.hits")[0].value == 7
    gone = weakref.ref(cache)
    del cache
    gc.collect()
    assert gone() is None
    collected.reader.get_metrics_data()  # reading counters after the cache went away is fine


@dataclass
class _Alert:
    fingerprint: str
    severity: str
    duration: float
    baseline: float


def test_alerts_are_counted_and_added_to_the_current_span(collected: Collected) -> None:
    tracer = collected.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("GET /orders"):
        collected.telemetry.record_alert(_Alert("0123456789abcdef", "critical", 0.9, 0.1))
    (point,) = collected.points("queryopt.alerts")
    assert point.value == 1
    assert dict(point.attributes) == {"queryopt.alert.severity": "critical"}
    (request,) = collected.spans()
    (event,) = request.events
    assert event.name == "queryopt.alert"
    assert event.attributes is not None
    assert event.attributes["queryopt.fingerprint"] == "0123456789abcdef"
    assert event.attributes["queryopt.alert.baseline"] == 0.1
