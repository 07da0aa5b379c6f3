"""An OpenTelemetry SDK wired to an in-memory metric reader and span exporter, and a Telemetry reporting to them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from queryopt.telemetry.instruments import Telemetry


@dataclass
class Collected:
    telemetry: Telemetry
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    tracer_provider: TracerProvider

    def metrics(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> list[Any]:
        metric = self.metrics().get(name)
        return [] if metric is None else list(metric.data.data_points)

    def histogram_points(self) -> list[HistogramDataPoint]:
        return self.points("db.client.operation.duration")

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def exported(self) -> str:
        """Every span and metric as the exporters would send them (JSON text), to search for leaks."""
        data = self.reader.get_metrics_data()
        return "".join(span.to_json() for span in self.spans()) + ("" if data is None else data.to_json())


@contextmanager
def collecting() -> Iterator[Collected]:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(meter_provider=meter_provider, tracer_provider=tracer_provider)
    try:
        yield Collected(telemetry, reader, exporter, tracer_provider)
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()
