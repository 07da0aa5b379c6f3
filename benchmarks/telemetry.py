"""What telemetry costs: optimize_query with QUERYOPT_TELEMETRY off and on, against raw psycopg.

Run: ``python -m benchmarks.telemetry [--unpinned] [--quick]``. It starts its own
throwaway PostgreSQL, pins client and server to one CPU and measures in
interleaved rounds of one run. "On" is the OpenTelemetry SDK as an application
would set it up: a meter provider with a reader that is collected rarely (a
Prometheus scrape or a periodic export: what a call pays is the histogram
update) and a tracer provider with a ``BatchSpanProcessor`` whose exporter drops
the batches (so the number is queryopt's and the SDK's cost, not a network's).
Targets: off ≤ 1.10x raw (the telemetry check itself must not show); on, the
cost per call is stated, not bounded.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import psycopg
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from psycopg_pool import ConnectionPool

from benchmarks._harness import Case, format_seconds, measure, pin, print_table
from queryopt.analysis import analyze
from queryopt.config import RecorderPolicy, Settings
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.optimizer.blocking import Optimizer
from queryopt.telemetry import telemetry_for

PK_QUERY = "SELECT id, name, balance FROM accounts WHERE id = %s"


class _DroppingExporter(SpanExporter):
    """Takes every batch and throws it away."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _install_sdk() -> tuple[MeterProvider, TracerProvider]:
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DroppingExporter()))
    metrics.set_meter_provider(meter_provider)
    trace.set_tracer_provider(tracer_provider)
    return meter_provider, tracer_provider


def run(quick: bool = False, pinned: bool = True) -> list[dict[str, object]]:
    rounds, min_time = (3, 0.05) if quick else (9, 0.3)
    meter_provider, tracer_provider = _install_sdk()
    with EmbeddedPostgres() as server:
        conninfo = server.conninfo()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL)")
            conn.execute("INSERT INTO accounts SELECT g, 'account ' || g, g * 10 FROM generate_series(1, 100000) g")
            conn.execute("VACUUM ANALYZE")
        is_pinned = pinned and pin(0, server.pid)
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True
        )
        pool.wait()
        quiet = RecorderPolicy(enabled=False)
        off = Optimizer(pool=pool, settings=Settings(dsn=conninfo, recorder=quiet))
        on = Optimizer(pool=pool, settings=Settings(dsn=conninfo, recorder=quiet, telemetry=True))
        try:
            rows = _compare(pool, off, on, rounds=rounds, min_time=min_time)
        finally:
            off.close()
            on.close()
            pool.close()
            tracer_provider.shutdown()
            meter_provider.shutdown()
    for row in rows:
        row["pinned"] = "yes" if is_pinned else "no"
    return rows


def _compare(
    pool: ConnectionPool[psycopg.Connection[Any]], off: Optimizer, on: Optimizer, *, rounds: int, min_time: float
) -> list[dict[str, object]]:
    params = [4242]

    def raw() -> list[tuple[Any, ...]]:
        with pool.connection() as conn:
            return conn.execute(PK_QUERY, params).fetchall()

    telemetry = telemetry_for(on.settings)
    assert telemetry is not None
    assert on.observer.telemetry is telemetry
    assert off.observer.telemetry is None
    analysis = analyze(PK_QUERY)

    def record_call() -> None:
        telemetry.record_call(analysis, 0.0001, database="bench", search_path="public", cache_outcome="off")

    assert raw() == off.query(PK_QUERY, params) == on.query(PK_QUERY, params)
    cases = [
        Case("raw psycopg (pool)", raw),
        Case("optimize_query, telemetry off", lambda: off.query(PK_QUERY, params)),
        Case("optimize_query, telemetry on", lambda: on.query(PK_QUERY, params)),
        Case("cache hit, telemetry off", lambda: off.execute(PK_QUERY, params, use_cache=True)),
        Case("cache hit, telemetry on", lambda: on.execute(PK_QUERY, params, use_cache=True)),
        Case("Telemetry.record_call alone", record_call),
    ]
    measure(cases, rounds=rounds, min_time=min_time)
    base = cases[0].median
    by_name = {case.name: case.median for case in cases}
    targets: dict[str, tuple[str, bool | None]] = {
        "optimize_query, telemetry off": ("≤ 1.10x raw", by_name["optimize_query, telemetry off"] / base <= 1.10),
        "optimize_query, telemetry on": (
            f"+{format_seconds(by_name['optimize_query, telemetry on'] - by_name['optimize_query, telemetry off'])}"
            " per call (stated)",
            None,
        ),
        "cache hit, telemetry on": (
            f"+{format_seconds(by_name['cache hit, telemetry on'] - by_name['cache hit, telemetry off'])}"
            " per hit (stated)",
            None,
        ),
    }
    rows = []
    for case in cases:
        target, met = targets.get(case.name, ("baseline" if case is cases[0] else "", None))
        rows.append(
            {
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs raw": f"{case.median / base:.3f}x",
                "target": target,
                "met": met,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--unpinned", action="store_true", help="let client and server run on any CPU")
    args = parser.parse_args()
    print_table("telemetry", run(quick=args.quick, pinned=not args.unpinned))


if __name__ == "__main__":
    main()
