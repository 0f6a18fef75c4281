"""Two receiver processes (``spanledger serve``) over one PostgreSQL ledger, fed overlapping batches."""

from __future__ import annotations

import random
import threading

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from receiver_support import start_serve, stored_events
from spanfactory import make_spans

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_two_receivers_on_postgresql_store_overlapping_batches_once(engine, database_url, backend):
    if backend != "postgresql":
        pytest.skip("several receivers share a ledger on PostgreSQL")
    specs = []
    for n in range(300):
        attributes = {
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": n + 1,
            "customer.id": f"c{n % 7}",
        }
        if n % 2 == 0:
            attributes["gen_ai.response.id"] = f"chatcmpl-{n}"
        specs.append(attributes)
    spans = make_spans(specs)
    batches = [spans[i : i + 40] for i in range(0, len(spans), 40)]
    processes = [start_serve(database_url, "--http", "off")[:2] for _ in range(2)]
    try:
        results: list[SpanExportResult] = []

        def send(port: int, seed: int) -> None:
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=30)
            order = batches[:]
            random.Random(seed).shuffle(order)
            for batch in order:
                results.append(exporter.export(batch))
            exporter.shutdown()

        threads = [
            threading.Thread(target=send, args=(port, seed)) for seed, (_, port) in enumerate(processes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(30)
    assert results == [SpanExportResult.SUCCESS] * (2 * len(batches))
    events = stored_events(engine)
    assert len(events) == len(spans)
    assert sorted(event.input_tokens for event in events.values()) == list(range(1, 301))
