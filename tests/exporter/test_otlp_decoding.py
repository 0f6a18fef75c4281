"""OTLP protobuf and JSON decoding, request limits and bounded decompression."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from spanfactory import make_spans, otlp_json, otlp_json_document, otlp_protobuf

from spanledger.exporter.errors import PayloadError, PayloadTooLargeError
from spanledger.exporter.limits import ReceiverLimits, decompress
from spanledger.exporter.mapping import (
    MappingSettings,
    candidate_attribute_keys,
    map_spans,
    relevant_attribute_keys,
)
from spanledger.exporter.otlp_decoding import decode_json, decode_protobuf

SPAN_KEYS, RESOURCE_KEYS = relevant_attribute_keys(MappingSettings())
USAGE = {
    "gen_ai.provider.name": "openai",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.prompt.0.content": "a long prompt we never read",
    "gen_ai.response.finish_reasons": ("stop",),
}


def _decode_both(spans, limits=None):
    limits = limits or ReceiverLimits()
    from_proto = decode_protobuf(otlp_protobuf(spans), limits, SPAN_KEYS, RESOURCE_KEYS)
    from_json = decode_json(otlp_json(spans), limits, SPAN_KEYS, RESOURCE_KEYS)
    return from_proto, from_json


def test_protobuf_and_json_decode_to_the_same_records():
    spans = make_spans(
        [USAGE, {"http.method": "GET"}], resource={"service.name": "svc", "customer.id": "acme"}
    )
    from_proto, from_json = _decode_both(spans)
    assert from_proto == from_json
    first = from_proto[0]
    assert first.trace_id == f"{spans[0].context.trace_id:032x}"
    assert first.span_id == f"{spans[0].context.span_id:016x}"
    assert first.attributes == {
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
    }
    assert first.resource_attributes == {"service.name": "svc", "customer.id": "acme"}
    assert (first.scope_name, first.scope_version) == ("test.scope", "1.0")
    assert first.end_time_unix_nano == spans[0].end_time


def test_json_accepts_int64_as_numbers_snake_case_keys_and_base64_ids():
    document = otlp_json_document(make_spans([USAGE]))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    trace_hex = span["traceId"]
    span["traceId"] = __import__("base64").b64encode(bytes.fromhex(trace_hex)).decode()
    span["end_time_unix_nano"] = int(span.pop("endTimeUnixNano"))
    for kv in span["attributes"]:
        if kv["key"] == "gen_ai.usage.input_tokens":
            kv["value"] = {"int_value": 12}
    [record] = decode_json(json.dumps(document).encode(), ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)
    assert record.trace_id == trace_hex
    assert record.end_time_unix_nano > 0
    assert record.attributes["gen_ai.usage.input_tokens"] == 12


def test_json_keeps_an_unreadable_count_so_the_mapping_can_reject_it():
    document = otlp_json_document(make_spans([USAGE]))
    for kv in document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]:
        if kv["key"] == "gen_ai.usage.input_tokens":
            kv["value"] = {"intValue": "twelve"}
    [record] = decode_json(json.dumps(document).encode(), ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)
    assert record.attributes["gen_ai.usage.input_tokens"] == "twelve"


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\xff\x00 not protobuf at all", "protobuf"),
        (b"\x0a\x05\x0a\x03", "protobuf"),  # truncated
    ],
)
def test_malformed_and_truncated_protobuf_is_a_payload_error(body, message):
    with pytest.raises(PayloadError, match=message):
        decode_protobuf(body, ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)


def test_a_truncated_real_request_is_a_payload_error():
    body = otlp_protobuf(make_spans([USAGE] * 3))
    with pytest.raises(PayloadError):
        decode_protobuf(body[: len(body) // 2], ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"resourceSpans": {"a": 1}}', "JSON array"),
        (b'{"resourceSpans": [7]}', "JSON object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": ["x"]}]}]}', "JSON object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": 5}]}]}]}', "attributes"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_json_is_a_payload_error(body, message):
    with pytest.raises(PayloadError, match=message):
        decode_json(body, ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)


def test_unknown_json_fields_are_ignored_and_an_empty_request_is_valid():
    assert (
        decode_json(b'{"resourceSpans": [], "future": 1}', ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS) == []
    )
    assert decode_json(b"{}", ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS) == []
    assert decode_protobuf(b"", ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS) == []


def test_too_many_spans_are_refused_whole():
    spans = make_spans([USAGE] * 4)
    limits = ReceiverLimits(max_spans_per_request=3)
    for body, decode in ((otlp_protobuf(spans), decode_protobuf), (otlp_json(spans), decode_json)):
        with pytest.raises(PayloadTooLargeError, match="4 spans; the limit is 3"):
            decode(body, limits, SPAN_KEYS, RESOURCE_KEYS)


def test_overlong_attribute_values_are_set_aside_not_truncated():
    spans = make_spans([{**USAGE, "customer.id": "c" * 50}], resource={"service.name": "s" * 50})
    for record in _decode_both(spans, ReceiverLimits(max_attribute_length=20)):
        [span] = record
        assert "customer.id" not in span.attributes and span.oversized_attributes == {"customer.id"}
        assert span.oversized_resource_attributes == {"service.name"}


# --- limits and decompression ---------------------------------------------------------------------


def test_gzip_and_deflate_bodies_are_inflated():
    body = otlp_protobuf(make_spans([USAGE]))
    assert decompress(gzip.compress(body), "gzip", ReceiverLimits()) == body
    assert decompress(zlib.compress(body), "deflate", ReceiverLimits()) == body
    raw = zlib.compressobj(wbits=-15)
    assert decompress(raw.compress(body) + raw.flush(), "deflate", ReceiverLimits()) == body
    assert decompress(body, None, ReceiverLimits()) == body


def test_a_gzip_bomb_is_refused_without_inflating_it_all(monkeypatch):
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # 50 MiB of zeros in ~50 KiB
    limits = ReceiverLimits(max_decompressed_bytes=1024 * 1024)
    produced = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args):
            self._inner = real(*args)

        def decompress(self, data, max_length=0):
            out = self._inner.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Spy)
    with pytest.raises(PayloadTooLargeError, match="once decompressed"):
        decompress(bomb, "gzip", limits)
    assert sum(produced) <= limits.max_decompressed_bytes + 1


@pytest.mark.parametrize(
    "body, encoding, message",
    [
        (b"not gzip", "gzip", "corrupt"),
        (gzip.compress(b"x" * 1000)[:20], "gzip", "truncated"),
        (b"abc", "br", "not supported"),
    ],
)
def test_corrupt_truncated_or_unknown_encodings_are_payload_errors(body, encoding, message):
    with pytest.raises(PayloadError, match=message):
        decompress(body, encoding, ReceiverLimits())


def test_an_uncompressed_body_over_the_limit_is_refused():
    with pytest.raises(PayloadTooLargeError):
        decompress(b"x" * 11, None, ReceiverLimits(max_decompressed_bytes=10))
    with pytest.raises(PayloadTooLargeError, match="SPANLEDGER_MAX_REQUEST_BYTES"):
        ReceiverLimits(max_request_bytes=10).check_request_size(11)


def test_limits_from_the_environment_fall_back_on_bad_values(caplog):
    limits = ReceiverLimits.from_environment(
        {"SPANLEDGER_MAX_REQUEST_BYTES": "1000", "SPANLEDGER_MAX_SPANS_PER_REQUEST": "lots"}
    )
    assert limits.max_request_bytes == 1000
    assert limits.max_spans_per_request == ReceiverLimits().max_spans_per_request
    assert "SPANLEDGER_MAX_SPANS_PER_REQUEST" in caplog.text


def test_bad_limit_arguments_raise():
    from spanledger.billing.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_spans_per_request"):
        ReceiverLimits(max_spans_per_request=0)


SKIPPABLE_OR_NOT = [
    {"http.request.method": "GET"},
    {"server.address": "shop.internal", "customer.id": "acme"},
    {"gen_ai.provider.name": "openai", "gen_ai.response.id": "resp-1"},
    {"gen_ai.operation.name": "chat"},
    {"llm.request.type": "chat"},
    {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 5},
    {"gen_ai.operation.name": True},
    {"gen_ai.operation.name": "x" * 50},
    {"gen_ai.usage.input_tokens": "many"},
    {"customer.id": "c" * 50, "gen_ai.usage.output_tokens": 3},
    {"gen_ai.usage.total_tokens": 3},
    {"llm.usage.total_tokens": 9, "gen_ai.usage.input_tokens": 4},
    USAGE,
]


@pytest.mark.parametrize("encode, decode", [(otlp_protobuf, decode_protobuf), (otlp_json, decode_json)])
def test_skipping_spans_without_candidate_keys_changes_no_outcome(encode, decode):
    body = encode(make_spans(SKIPPABLE_OR_NOT))
    limits = ReceiverLimits(max_attribute_length=20)
    full = decode(body, limits, SPAN_KEYS, RESOURCE_KEYS)
    filtered = decode(body, limits, SPAN_KEYS, RESOURCE_KEYS, candidate_keys=candidate_attribute_keys())
    assert (full.skipped, filtered.skipped) == (0, 3)
    assert len(filtered) == len(SKIPPABLE_OR_NOT) - 3
    everything, candidates = map_spans(full), map_spans(filtered)
    assert candidates.events == everything.events
    assert [r.reason for r in candidates.rejected] == [r.reason for r in everything.rejected]
    assert len(everything.rejected) == 4  # bool and oversized operation, unreadable count, long customer
    assert candidates.ignored + filtered.skipped == everything.ignored
