"""The database goes away under a running receiver: PostgreSQL cut off (a loopback proxy between the
receiver and the shared server is cut, the server itself keeps running for the other tests) and SQLite
locked by another connection holding ``BEGIN IMMEDIATE``.

While the database is away the receivers answer "retry later" (HTTP 503 with ``Retry-After``, gRPC
``UNAVAILABLE`` with ``RetryInfo``); once it is back the OTLP exporter's retries get everything stored,
nothing lost and nothing doubled.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time

import grpc
import httpx
import pytest
from fault_load import CuttableProxy, LoadGenerator, ledger_books, postgres_target, postgres_url_through
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace.export import SpanExportResult

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.migrate import upgrade
from spanledger.exporter.server import Receiver, ReceiverSettings

pytestmark = pytest.mark.slow

RETRY_AFTER = 1.5


def _receiver(database_url: str) -> Receiver:
    settings = ReceiverSettings(
        database_url=database_url,
        grpc_endpoint="127.0.0.1:0",
        http_endpoint="127.0.0.1:0",
        migrate=False,
        retry_after_seconds=RETRY_AFTER,
        shutdown_grace_seconds=5.0,
    )
    receiver = Receiver(settings)
    receiver.start()
    return receiver


def _migrated(database_url: str) -> None:
    engine = create_engine_from_url(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _post(receiver: Receiver, body: bytes) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{receiver.http_port}/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf"},
        timeout=30,
    )


def _grpc_export(receiver: Receiver, body: bytes) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        export(body, timeout=30)


def _assert_retry_later(receiver: Receiver, body: bytes) -> None:
    answer = _post(receiver, body)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"  # 1.5 s rounded up: HTTP counts whole seconds
    with pytest.raises(grpc.RpcError) as failure:
        _grpc_export(receiver, body)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unavailable" in (failure.value.details() or "")
    retry = RetryInfo.FromString(dict(failure.value.trailing_metadata())["google.rpc.retryinfo-bin"])
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 500_000_000)


def _export_in_background(exporter, spans, results: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(exporter.export(spans)))
    thread.start()
    return thread


def _assert_ledger(database_url: str, generator: LoadGenerator) -> None:
    stored_ids, totals = ledger_books(database_url)
    assert len(stored_ids) == len(set(stored_ids)), "an event is stored twice"
    assert sorted(stored_ids) == sorted(generator.acknowledged_ids)
    assert totals == generator.expected_totals()


@pytest.mark.postgres
def test_postgresql_cut_off_answers_retry_later_then_recovers_exactly(postgres_url):
    _migrated(postgres_url)
    proxy = CuttableProxy(postgres_target(postgres_url))
    receiver = _receiver(postgres_url_through(postgres_url, proxy.port))
    generator = LoadGenerator(seed=21)
    try:
        before, before_books = generator.batch(10)
        assert _post(receiver, encode_spans(before).SerializeToString()).status_code == 200
        generator.acknowledge(before_books)

        proxy.cut()
        during, during_books = generator.batch(10)
        _assert_retry_later(receiver, encode_spans(during).SerializeToString())
        assert _post(receiver, encode_spans(before).SerializeToString()).status_code == 503

        # The real exporter keeps retrying (UNAVAILABLE + RetryInfo) until the database is back.
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True, timeout=20)
        results: list[SpanExportResult] = []
        sender = _export_in_background(exporter, during, results)
        time.sleep(1.0)
        proxy.restore()
        sender.join(30)
        exporter.shutdown()
        assert results == [SpanExportResult.SUCCESS]
        generator.acknowledge(during_books)
        # A resend of what was stored before the outage is acknowledged and counted once.
        assert _post(receiver, encode_spans(before).SerializeToString()).status_code == 200
    finally:
        receiver.stop()
        proxy.close()
    _assert_ledger(postgres_url, generator)


@pytest.mark.postgres
def test_postgresql_cut_while_commits_are_in_flight_loses_and_doubles_nothing(postgres_url):
    _migrated(postgres_url)
    proxy = CuttableProxy(postgres_target(postgres_url))
    receiver = _receiver(postgres_url_through(postgres_url, proxy.port))
    generator = LoadGenerator(seed=22)
    batches = [generator.batch(25) for _ in range(16)]
    stop_cutting = threading.Event()

    def cut_repeatedly() -> None:
        for _ in range(6):  # bounded: six short outages while the load runs
            if stop_cutting.wait(0.15):
                return
            proxy.cut()
            time.sleep(0.2)
            proxy.restore()

    cutter = threading.Thread(target=cut_repeatedly)
    try:
        cutter.start()
        exporter = HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=20)
        for spans, books in batches:
            for _attempt in range(20):
                if exporter.export(spans) == SpanExportResult.SUCCESS:
                    generator.acknowledge(books)
                    break
            else:
                pytest.fail("a batch was never acknowledged")
        exporter.shutdown()
    finally:
        stop_cutting.set()
        cutter.join(10)
        proxy.restore()
        receiver.stop()
        proxy.close()
    assert len(generator.acknowledged_ids) == 16 * 25
    _assert_ledger(postgres_url, generator)


def test_locked_sqlite_answers_retry_later_then_recovers_exactly(tmp_path, monkeypatch):
    # The shipped busy timeout is 30 s (a writer waits for the lock rather than fail); a short one keeps
    # the test fast and shows what a client sees once the wait is over.
    monkeypatch.setattr(
        "spanledger.exporter.server.create_engine_from_url",
        functools.partial(create_engine_from_url, sqlite_busy_timeout=0.2),
    )
    path = tmp_path / "ledger.db"
    database_url = f"sqlite:///{path}"
    _migrated(database_url)
    receiver = _receiver(database_url)
    generator = LoadGenerator(seed=23)
    locker = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        before, before_books = generator.batch(10)
        assert _post(receiver, encode_spans(before).SerializeToString()).status_code == 200
        generator.acknowledge(before_books)

        locker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        during, during_books = generator.batch(10)
        _assert_retry_later(receiver, encode_spans(during).SerializeToString())

        exporter = HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=20)
        results: list[SpanExportResult] = []
        sender = _export_in_background(exporter, during, results)
        time.sleep(1.0)
        locker.execute("ROLLBACK")
        sender.join(30)
        exporter.shutdown()
        assert results == [SpanExportResult.SUCCESS]
        generator.acknowledge(during_books)
        assert _post(receiver, encode_spans(before).SerializeToString()).status_code == 200
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
        receiver.stop()
    _assert_ledger(database_url, generator)
