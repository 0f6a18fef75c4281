"""Real OTLP round trips on loopback: opentelemetry-exporter-otlp's exporters against our receivers."""

from __future__ import annotations

import gzip
import logging
import threading

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace.export import SpanExportResult
from receiver_support import FlakyIngest, stored_events
from spanfactory import make_spans, otlp_json, otlp_protobuf

from spanledger.billing.errors import StorageUnavailableError

CALLS = [
    {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "customer.id": "acme",
    },
    {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.output_tokens": 5,
    },
    {"http.request.method": "GET"},  # not billable: ignored
]
BAD = {"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": -1}


def grpc_client(receiver, **kwargs):
    return GrpcExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True, timeout=10, **kwargs)


def http_client(receiver, **kwargs):
    return HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=10, **kwargs)


def raw_grpc_export(receiver, body: bytes, metadata=()):
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        return export(body, metadata=metadata, timeout=10)


def post(receiver, body: bytes, content_type="application/x-protobuf", **headers):
    return httpx.post(
        f"http://127.0.0.1:{receiver.http_port}/v1/traces",
        content=body,
        headers={"content-type": content_type, **headers},
        timeout=10,
    )


@pytest.mark.parametrize("client", [grpc_client, http_client])
def test_round_trip_stores_billable_spans_and_a_resend_is_counted_once(start_receiver, engine, client):
    receiver = start_receiver()
    spans = make_spans(CALLS, resource={"service.name": "shop"})
    exporter = client(receiver)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # a retried export
    exporter.shutdown()
    events = stored_events(engine)
    assert len(events) == 2
    openai_event = events["response:openai:chatcmpl-1"]
    assert (openai_event.input_tokens, openai_event.output_tokens) == (100, 20)
    assert openai_event.event_metadata["service.name"] == "shop"
    anthropic_key = next(key for key in events if key.startswith("span:"))
    assert events[anthropic_key].input_tokens == 50


def test_http_gzip_protobuf_from_the_otlp_exporter(start_receiver, engine):
    receiver = start_receiver()
    exporter = http_client(receiver, compression=Compression.Gzip)
    assert exporter.export(make_spans(CALLS)) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(stored_events(engine)) == 2


def test_grpc_gzip_from_the_otlp_exporter(start_receiver, engine):
    from grpc import Compression as GrpcCompression

    receiver = start_receiver()
    exporter = grpc_client(receiver, compression=GrpcCompression.Gzip)
    assert exporter.export(make_spans(CALLS)) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(stored_events(engine)) == 2


def test_grpc_partial_success_counts_rejected_spans(start_receiver, engine):
    receiver = start_receiver()
    response = raw_grpc_export(receiver, otlp_protobuf(make_spans([*CALLS, BAD])))
    assert response.partial_success.rejected_spans == 1
    assert "negative" in response.partial_success.error_message
    assert len(stored_events(engine)) == 2


def test_http_partial_success_in_json_and_protobuf(start_receiver, engine):
    receiver = start_receiver()
    answer = post(receiver, otlp_json(make_spans([CALLS[0], BAD])), "application/json")
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    answer = post(receiver, otlp_protobuf(make_spans([BAD])))
    parsed = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.content)
    assert parsed.partial_success.rejected_spans == 1
    assert len(stored_events(engine)) == 1


def test_a_fully_successful_request_has_no_partial_success(start_receiver):
    receiver = start_receiver()
    answer = post(receiver, otlp_json(make_spans(CALLS)), "application/json")
    assert (answer.status_code, answer.json()) == (200, {})


@pytest.mark.parametrize(
    "body, content_type, headers, status",
    [
        (b"\xff\xff garbage", "application/x-protobuf", {}, 400),
        (b"{not json", "application/json", {}, 400),
        (b"\x1f\x8b\x08\x00 broken", "application/x-protobuf", {"content-encoding": "gzip"}, 400),
        (b"abc", "text/plain", {}, 415),
    ],
)
def test_http_malformed_payloads_are_not_retryable(
    start_receiver, engine, body, content_type, headers, status
):
    receiver = start_receiver()
    answer = post(receiver, body, content_type, **headers)
    assert answer.status_code == status
    assert "retry-after" not in answer.headers
    assert len(stored_events(engine)) == 0


def test_http_truncated_request_is_400(start_receiver):
    receiver = start_receiver()
    body = otlp_protobuf(make_spans(CALLS))
    assert post(receiver, body[:-7]).status_code == 400


def test_grpc_malformed_and_truncated_payloads_are_invalid_argument(start_receiver, engine):
    receiver = start_receiver()
    body = otlp_protobuf(make_spans(CALLS))
    for payload in (b"\xff\xff garbage", body[:-7]):
        with pytest.raises(grpc.RpcError) as failure:
            raw_grpc_export(receiver, payload)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(stored_events(engine)) == 0


def test_oversized_requests_are_refused_with_the_limit_named(start_receiver, engine):
    from spanledger.exporter.limits import ReceiverLimits

    receiver = start_receiver(limits=ReceiverLimits(max_request_bytes=2000, max_spans_per_request=5))
    many = otlp_protobuf(make_spans([CALLS[0]] * 6))
    answer = post(receiver, many)
    assert answer.status_code == 413
    with pytest.raises(grpc.RpcError) as failure:
        raw_grpc_export(receiver, many)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "6 spans" in failure.value.details()
    huge = post(receiver, b"\0" * 5000)
    assert huge.status_code == 413 and "SPANLEDGER_MAX_REQUEST_BYTES" in huge.text
    assert len(stored_events(engine)) == 0


def test_gzip_bomb_is_refused_over_http_and_grpc(start_receiver, engine):
    from spanledger.exporter.limits import ReceiverLimits

    receiver = start_receiver(limits=ReceiverLimits(max_decompressed_bytes=1024 * 1024))
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    answer = post(receiver, bomb, **{"content-encoding": "gzip"})
    assert answer.status_code == 413 and "decompressed" in answer.text
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export", request_serializer=None
        )
        with pytest.raises(grpc.RpcError) as failure:
            export(b"\0" * (2 * 1024 * 1024), compression=grpc.Compression.Gzip, timeout=10)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The receiver is still healthy afterwards.
    assert post(receiver, otlp_protobuf(make_spans(CALLS))).status_code == 200
    assert len(stored_events(engine)) == 2


def test_auth_on_rejects_missing_or_wrong_tokens_and_stores_nothing(start_receiver, engine):
    receiver = start_receiver(auth_tokens=("s3cret", "other"))
    body = otlp_protobuf(make_spans(CALLS))
    assert post(receiver, body).status_code == 401
    assert post(receiver, body, authorization="Bearer wrong").status_code == 401
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.RpcError) as failure:
            raw_grpc_export(receiver, body, metadata)
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(stored_events(engine)) == 0
    assert post(receiver, body, authorization="Bearer s3cret").status_code == 200
    assert post(receiver, body, **{"x-api-key": "other"}).status_code == 200
    exporter = grpc_client(receiver, headers={"authorization": "Bearer s3cret"})
    assert exporter.export(make_spans(CALLS)) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(stored_events(engine)) == 3  # one shared openai response id, two distinct spans more


@pytest.mark.parametrize("client", [grpc_client, http_client])
def test_database_unavailable_is_retryable_and_the_clients_retry_stores_once(start_receiver, engine, client):
    flaky = FlakyIngest(failures=2, error=StorageUnavailableError("the database is unavailable; retry later"))
    receiver = start_receiver(ingest_function=flaky)
    exporter = client(receiver)
    assert exporter.export(make_spans(CALLS)) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert flaky.calls == 3
    assert len(stored_events(engine)) == 2


def test_storage_down_answers_503_and_unavailable_with_retry_info(start_receiver):
    flaky = FlakyIngest(
        failures=100, error=StorageUnavailableError("the database is unavailable; retry later")
    )
    receiver = start_receiver(ingest_function=flaky, retry_after_seconds=2.5)
    body = otlp_protobuf(make_spans(CALLS))
    answer = post(receiver, body)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "3")
    with pytest.raises(grpc.RpcError) as failure:
        raw_grpc_export(receiver, body)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    from google.rpc.error_details_pb2 import RetryInfo

    trailers = dict(failure.value.trailing_metadata())
    retry = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (2, 500_000_000)
    assert "grpc-status-details-bin" in trailers


def test_a_full_queue_answers_retry_later(start_receiver, engine):
    gate_ingest = FlakyIngest()
    gate_ingest.gate = threading.Event()
    receiver = start_receiver(ingest_function=gate_ingest, max_pending_events=2)
    body = otlp_protobuf(make_spans(CALLS))
    first = threading.Thread(target=post, args=(receiver, body))
    first.start()
    assert gate_ingest.entered.wait(10)  # two events now wait for a commit that is held
    answer = post(receiver, otlp_protobuf(make_spans(CALLS)))
    assert answer.status_code == 429 and "retry-after" in answer.headers
    with pytest.raises(grpc.RpcError) as failure:
        raw_grpc_export(receiver, otlp_protobuf(make_spans(CALLS)))
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    gate_ingest.gate.set()
    first.join(10)
    assert len(stored_events(engine)) == 2


def test_graceful_shutdown_answers_in_flight_requests_after_their_commit(start_receiver, engine):
    gate_ingest = FlakyIngest()
    gate_ingest.gate = threading.Event()
    receiver = start_receiver(ingest_function=gate_ingest)
    answers = []
    client = threading.Thread(target=lambda: answers.append(post(receiver, otlp_protobuf(make_spans(CALLS)))))
    client.start()
    assert gate_ingest.entered.wait(10)
    stopper = threading.Thread(target=receiver.stop)
    stopper.start()
    gate_ingest.gate.set()
    stopper.join(15)
    client.join(15)
    assert answers and answers[0].status_code == 200
    assert len(stored_events(engine)) == 2


def test_concurrent_requests_share_commits(start_receiver, engine, caplog):
    gate_ingest = FlakyIngest()
    gate_ingest.gate = threading.Event()
    receiver = start_receiver(ingest_function=gate_ingest)
    bodies = [otlp_protobuf(make_spans(CALLS)) for _ in range(8)]
    threads = [threading.Thread(target=post, args=(receiver, body)) for body in bodies]
    threads[0].start()
    assert gate_ingest.entered.wait(10)
    for thread in threads[1:]:
        thread.start()
    # Wait until the other seven are queued behind the held commit, then let it go.
    while receiver.committer.pending_events < 2 * len(bodies):
        threading.Event().wait(0.01)
    gate_ingest.gate.set()
    for thread in threads:
        thread.join(10)
    assert receiver.committer.batches_committed == 2
    assert receiver.committer.submissions_committed == 8
    assert receiver.committer.events_committed == 8 * 2  # two billable spans per request
    assert len(stored_events(engine)) == 8 + 1  # the openai call shares one response id
    with caplog.at_level(logging.INFO, logger="spanledger.exporter.server"):
        receiver.stop()
    assert "group commit: 16 events of 8 requests in 2 transactions" in caplog.text
