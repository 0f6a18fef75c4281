"""The in-process SpanledgerSpanExporter under a real TracerProvider, and its entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from receiver_support import stored_events
from spanfactory import make_spans

from spanledger.billing.db import create_engine_from_url
from spanledger.exporter import SpanledgerSpanExporter

CALL = {
    "gen_ai.provider.name": "openai",
    "gen_ai.response.id": "chatcmpl-in-process",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.usage.output_tokens": 2,
    "customer.id": "acme",
}


def test_entry_point_loads_the_exporter_with_no_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("SPANLEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    [entry] = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "spanledger"]
    exporter = entry.load()()
    assert isinstance(exporter, SpanledgerSpanExporter)
    exporter.shutdown()


def test_tracer_provider_records_usage_through_the_exporter_on_a_fresh_sqlite_ledger(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("SPANLEDGER_DATABASE_URL", url)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(SpanledgerSpanExporter()))
    tracer = provider.get_tracer("my.app")
    with tracer.start_as_current_span("chat gpt-4o", attributes=CALL):
        pass
    with tracer.start_as_current_span("GET /health"):
        pass
    provider.shutdown()  # flushes the batch processor, then shuts the exporter down
    engine = create_engine_from_url(url)  # the exporter migrated the new ledger itself
    events = stored_events(engine)
    engine.dispose()
    assert list(events) == ["response:openai:chatcmpl-in-process"]
    assert events["response:openai:chatcmpl-in-process"].input_tokens == 10


def test_export_is_idempotent_and_returns_results(engine, database_url):
    exporter = SpanledgerSpanExporter(database_url)
    spans = make_spans([CALL, {"gen_ai.usage.input_tokens": -1}])
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # the bad span is logged, not raised
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.force_flush()
    exporter.shutdown()
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert len(stored_events(engine)) == 1


def test_unreachable_database_is_a_failure_not_an_exception(caplog):
    exporter = SpanledgerSpanExporter(
        "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1", timeout_seconds=0.3
    )
    assert exporter.export(make_spans([CALL])) == SpanExportResult.FAILURE
    exporter.shutdown()


def test_a_model_call_without_usage_is_recorded_and_other_spans_are_skipped(engine, database_url):
    exporter = SpanledgerSpanExporter(database_url)
    operation_only = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.response.id": "r",
    }
    spans = make_spans([{"http.request.method": "GET", "customer.id": "acme"}, operation_only])
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    events = stored_events(engine)
    assert list(events) == ["response:openai:r"]
    stored = events["response:openai:r"]
    assert (stored.input_tokens, stored.output_tokens) == (None, None)
