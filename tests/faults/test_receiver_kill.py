"""kill -9 of ``spanledger serve`` in the middle of a load from opentelemetry-exporter-otlp's exporters.

Four senders export batches concurrently, each with the real OTLP exporter (which retries UNAVAILABLE with
backoff) inside a bounded loop that re-exports a batch the exporter gave up on. The receiver is killed
with SIGKILL twice while requests are in flight and restarted on the same ledger and ports. Requests that
were committed but never answered are sent again by the client; the ledger must count them once.
"""

from __future__ import annotations

import threading
import time

import pytest
from fault_load import LoadGenerator, ServeProcess, ledger_books
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

pytestmark = pytest.mark.slow

SENDERS = 4
BATCHES_PER_SENDER = 12
BATCH_SIZE = 20
#: Kill when this many batches have been acknowledged (others are in flight at that moment).
KILL_AT_ACKNOWLEDGED = (8, 28)
MAX_ATTEMPTS_PER_BATCH = 40
DEADLINE_SECONDS = 240


def _exporter(protocol: str, server: ServeProcess):
    if protocol == "grpc":
        return GrpcExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, timeout=5)
    return HttpExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", timeout=5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_kill_9_mid_load_loses_nothing_acknowledged_and_counts_nothing_twice(
    database_url, tmp_path, protocol
):
    server = ServeProcess(database_url, tmp_path)
    server.start()
    generator = LoadGenerator(seed=11)
    lock = threading.Lock()
    acknowledged_batches = [0]
    kill_now = threading.Condition(lock)
    failures: list[str] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    with lock:  # batches are prepared up front so the generator's books never race
        work = [[generator.batch(BATCH_SIZE) for _ in range(BATCHES_PER_SENDER)] for _ in range(SENDERS)]

    def send(batches) -> None:
        exporter = _exporter(protocol, server)
        try:
            for spans, books in batches:
                for _attempt in range(MAX_ATTEMPTS_PER_BATCH):
                    if time.monotonic() > deadline:
                        failures.append("deadline passed")
                        return
                    if exporter.export(spans) == SpanExportResult.SUCCESS:
                        with lock:
                            generator.acknowledge(books)
                            acknowledged_batches[0] += 1
                            kill_now.notify_all()
                        break
                    time.sleep(0.1)
                else:
                    failures.append(f"a batch was never acknowledged in {MAX_ATTEMPTS_PER_BATCH} attempts")
                    return
        finally:
            exporter.shutdown()

    kills = []

    def killer() -> None:
        for threshold in KILL_AT_ACKNOWLEDGED:
            with lock:
                if not kill_now.wait_for(lambda t=threshold: acknowledged_batches[0] >= t, timeout=120):
                    failures.append(f"load never reached {threshold} acknowledged batches")
                    return
            server.kill()
            kills.append(threshold)
            time.sleep(0.5)  # clients now see connection refused and back off
            server.start()

    threads = [threading.Thread(target=send, args=(batches,)) for batches in work]
    threads.append(threading.Thread(target=killer))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE_SECONDS + 30)
    finally:
        server.stop()

    assert failures == []
    assert kills == list(KILL_AT_ACKNOWLEDGED)
    assert acknowledged_batches[0] == SENDERS * BATCHES_PER_SENDER
    stored_ids, stored_totals = ledger_books(database_url)
    assert len(stored_ids) == len(set(stored_ids)), "an event is stored twice"
    assert sorted(stored_ids) == sorted(generator.acknowledged_ids), "an acknowledged span is missing"
    assert stored_totals == generator.expected_totals()
