"""docs/telemetry.md names what the code emits: metric names as OpenTelemetry and Prometheus see them, attributes,
and every key of ``queryopt top --format json``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, generate_latest

from queryopt import QueryTimeout
from queryopt.analysis import analyze
from queryopt.report.live import LiveView, RecentQuery, RecentRegression, RunningStatement
from queryopt.report.live_render import live_json
from queryopt.report.model import ReportWindow, Severity, SortKey
from queryopt.telemetry.instruments import Telemetry
from tests.telemetry_sdk import Collected

DOCS = (Path(__file__).parents[3] / "docs" / "telemetry.md").read_text(encoding="utf-8")
DOCUMENTED = set(re.findall(r"`([a-z_.0-9]+)(?:\[\])?`", DOCS))


@dataclass
class _Stats:
    counters: dict[str, int]

    def stats(self) -> dict[str, int]:
        return self.counters


@dataclass
class _Alert:
    fingerprint: str = "0123456789abcdef"
    severity: str = "warning"
    duration: float = 1.0
    baseline: float = 0.1


def _exercise(telemetry: Telemetry) -> tuple[_Stats, _Stats]:
    cache = _Stats({"hits": 1, "misses": 1, "evictions": 0})
    recorder = _Stats({"queued": 1, "recorded": 1, "dropped": 0, "sampled_out": 0})
    telemetry.watch_cache(cache)
    telemetry.watch_recorder(recorder)
    analysis = analyze("SELECT * FROM orders WHERE id = %s")
    telemetry.record_call(
        analysis, 0.2, database="shop", search_path="public", cache_outcome="off", error=QueryTimeout("cancelled")
    )
    telemetry.record_alert(_Alert())
    return cache, recorder  # kept alive until collected


def test_every_metric_and_attribute_is_documented(collected: Collected) -> None:
    kept = _exercise(collected.telemetry)
    metrics = collected.metrics()
    assert len(metrics) == 8
    assert set(metrics) - DOCUMENTED == set()
    attributes = {name for metric in metrics.values() for p in metric.data.data_points for name in p.attributes}
    attributes |= {name for span in collected.spans() for name in span.attributes or {}}
    assert attributes - DOCUMENTED == set()
    del kept


def test_prometheus_names_are_the_documented_ones() -> None:
    reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        kept = _exercise(Telemetry(meter_provider=provider))
        exposition = generate_latest(REGISTRY).decode()
    finally:
        provider.shutdown()
    exposed = set(re.findall(r"^((?:db|queryopt)_[a-z_]+)[{ ]", exposition, re.MULTILINE))
    documented = set(re.findall(r"`((?:db|queryopt)_[a-z_]+)`", DOCS))
    assert "db_client_operation_duration_seconds_bucket" in exposed
    expected = {name for name in exposed if not name.endswith(("_bucket", "_sum", "_count"))}
    expected.add("db_client_operation_duration_seconds")
    assert expected <= documented
    del kept


def test_every_top_json_key_is_documented() -> None:
    now = datetime(2024, 5, 2, 12, tzinfo=UTC)
    view = LiveView(
        schema="queryopt",
        generated_at=now,
        window=ReportWindow(now - timedelta(minutes=5), now, now - timedelta(minutes=10), 300),
        sort=SortKey.P95,
        slowest=(RecentQuery("0123456789abcdef", "select", "SELECT 1", 1, 1.0, 1.0, 1.0, 1.0, 0, 0, now),),
        running=(RunningStatement(1, "shop", "app", "web", "active", None, 1.5, None, "SELECT …"),),
        regressions=(RecentRegression("0123456789abcdef", Severity.CRITICAL, 9.0, 9.0, 1.0, 1.0, 9.0, 9.0),),
    )
    document = json.loads(live_json(view))

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for item in value.values() for k in keys(item)}
        if isinstance(value, list):
            return {k for item in value for k in keys(item)}
        return set()

    assert keys(document) - DOCUMENTED == set()
    assert '"schema_version": 1' in DOCS
