"""Fixtures: a fake LLM server on loopback and the instrumentation recording into memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fake_llm_server import FakeLLMServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.instrumentation import SpanledgerInstrumentor

SCOPE = "spanledger.instrumentation"


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(_server: FakeLLMServer) -> FakeLLMServer:
    _server.reset()
    return _server


class Recorded:
    """The spans finished during a test."""

    def __init__(self, exporter: InMemorySpanExporter, provider: TracerProvider) -> None:
        self.exporter = exporter
        self.provider = provider

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def genai(self) -> list[ReadableSpan]:
        return [s for s in self.all() if s.instrumentation_scope and s.instrumentation_scope.name == SCOPE]

    def one(self) -> ReadableSpan:
        spans = self.genai()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def attributes(self) -> dict[str, Any]:
        return dict(self.one().attributes or {})


@pytest.fixture
def tracer_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def instrument(tracer_provider: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[Any]:
    """Call ``instrument(**options)`` to instrument; uninstrumented after the test."""
    provider, exporter = tracer_provider
    instrumentor = SpanledgerInstrumentor()

    def apply(**options: Any) -> Recorded:
        instrumentor.instrument(tracer_provider=provider, **options)
        return Recorded(exporter, provider)

    yield apply
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def spans(instrument: Any) -> Recorded:
    """The instrumentation with default settings."""
    return instrument()
