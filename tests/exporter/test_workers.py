"""``spanledger serve --workers N``: several receiver processes behind the same ports, one ledger."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from receiver_support import start_serve, stored_events
from spanfactory import make_spans

from spanledger.billing.errors import ConfigurationError
from spanledger.exporter.server import Receiver, ReceiverSettings, freeze_startup_objects


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _specs(count: int) -> list[dict[str, object]]:
    return [
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.response.id": f"chatcmpl-w{n}",
            "gen_ai.usage.input_tokens": n + 1,
            "gen_ai.usage.output_tokens": 1,
            "customer.id": f"c{n % 5}",
        }
        for n in range(count)
    ]


@pytest.mark.slow
def test_workers_share_both_ports_and_store_every_span_once(engine, database_url):
    spans = make_spans(_specs(240))
    batches = [spans[i : i + 20] for i in range(0, len(spans), 20)]
    process, grpc_port, http_port = start_serve(database_url, "--workers", "2")
    try:
        workers = _children(process.pid)
        assert len(workers) == 2
        results: list[SpanExportResult] = []

        def send(number: int) -> None:
            # Each exporter opens connections of its own, which the kernel spreads over the workers;
            # every batch is sent twice (a retried export) over both protocols.
            grpc_exporter = GrpcExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=30)
            http_exporter = HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces", timeout=30)
            for batch in batches[number::4]:
                results.append(grpc_exporter.export(batch))
                results.append(http_exporter.export(batch))
            grpc_exporter.shutdown()
            http_exporter.shutdown()

        threads = [threading.Thread(target=send, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not any(Path(f"/proc/{worker}").exists() for worker in workers)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert results == [SpanExportResult.SUCCESS] * (2 * len(batches))
    events = stored_events(engine)
    assert sorted(event.input_tokens for event in events.values()) == list(range(1, 241))


@pytest.mark.slow
def test_a_worker_that_dies_stops_serve_with_an_error(engine, database_url):
    process, _, _ = start_serve(database_url, "--workers", "2", "--http", "off")
    try:
        workers = _children(process.pid)
        os.kill(workers[0], signal.SIGKILL)
        assert process.wait(60) == 1
        deadline = time.monotonic() + 30
        while Path(f"/proc/{workers[1]}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{workers[1]}").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_workers_come_from_the_environment_and_must_be_positive():
    assert ReceiverSettings.from_environment({"SPANLEDGER_WORKERS": "3"}).workers == 3
    assert ReceiverSettings.from_environment({}).workers == 1
    with pytest.raises(ConfigurationError, match="workers must be at least 1"):
        ReceiverSettings(workers=0)


def test_a_second_receiver_on_a_port_in_use_fails_clearly(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = Receiver(ReceiverSettings(database_url=url, grpc_endpoint="127.0.0.1:0", http_endpoint=None))
    first.start()
    try:
        taken = f"127.0.0.1:{first.grpc_port}"
        second = Receiver(
            ReceiverSettings(database_url=url, grpc_endpoint=taken, http_endpoint=None, migrate=False)
        )
        with pytest.raises(ConfigurationError, match=r"in use or not available.*--workers"):
            second.start()
        second.stop(grace=1)
    finally:
        first.stop(grace=1)


def test_startup_objects_are_frozen_out_of_the_collectors_sight():
    long_lived = [{"allocated": "while starting"}]
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= len(long_lived)
        assert not any(obj is long_lived for obj in gc.get_objects())  # a collection no longer scans it
    finally:
        gc.unfreeze()
    assert any(obj is long_lived for obj in gc.get_objects())
