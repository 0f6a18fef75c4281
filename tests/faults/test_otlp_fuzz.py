"""Fuzzing OTLP decoding and span mapping: random and mutated protobuf and JSON, wrong attribute types,
negative, absurd, float and text token counts, NaN, NUL, unpaired surrogates, deep nesting, huge values.

What must hold for every input: decoding either returns spans or raises
:class:`~spanledger.exporter.errors.PayloadError` with a message (never another exception); mapping never
raises; every span is accounted for (event, rejected with a reason, or ignored); every event honours the
contract; a bad span never costs the good spans beside it; memory stays bounded.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import tracemalloc

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from otlp_fuzz_inputs import (
    NESTED_PLACEHOLDER,
    USAGE_KEYS,
    any_json,
    attribute,
    bad_count_values,
    bad_text_values,
    good_span,
    json_bytes,
    nested_array,
    nested_array_json,
    otlp_shaped_json,
    protobuf_request,
    request_document,
    span_document,
)
from protobuf_encoding import field
from sqlalchemy import text

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.usage_event import validate_event
from spanledger.exporter.errors import PayloadError
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import MappingResult, MappingSettings, map_spans, relevant_attribute_keys
from spanledger.exporter.otlp_decoding import decode_json, decode_protobuf
from spanledger.exporter.server import Receiver, ReceiverSettings

SPAN_KEYS, RESOURCE_KEYS = relevant_attribute_keys(MappingSettings())
LIMITS = ReceiverLimits()
# Sized for the default run; SPANLEDGER_FUZZ_EXAMPLES=5000 runs a longer campaign of the same properties.
FUZZ_EXAMPLES = int(os.environ.get("SPANLEDGER_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_and_map(payload: bytes, payload_format: str) -> MappingResult | None:
    """Decode and map like a receiver does, checking the invariants; ``None`` when refused whole."""
    decode = decode_json if payload_format == "json" else decode_protobuf
    try:
        spans = decode(payload, LIMITS, SPAN_KEYS, RESOURCE_KEYS)
    except PayloadError as exc:
        assert str(exc), "a refused request must say why"
        return None
    result = map_spans(spans)
    assert len(result.events) + len(result.rejected) + result.ignored == len(spans)
    for rejected in result.rejected:
        assert rejected.reason and isinstance(rejected.reason, str)
    for event in result.events:
        validate_event(event)
    return result


def _good_spans(start: int, count: int = 3) -> tuple[list[dict], dict[str, tuple[int, int]]]:
    spans, expected = [], {}
    for offset in range(count):
        index = start + offset
        customer = ("acme", "globex", "initech")[offset % 3]
        spans.append(good_span(index, customer, 100 + index, 7 + index))
        expected[f"good-{customer}-{index}"] = (100 + index, 7 + index)
    return spans, expected


def _assert_good_kept(result: MappingResult | None, expected: dict[str, tuple[int, int]]) -> None:
    assert result is not None, "a request with good spans must not be refused whole"
    found = {
        e.response_id: (e.input_tokens, e.output_tokens)
        for e in result.events
        if e.response_id and e.response_id.startswith("good-")
    }
    assert found == expected


# --- random and mutated bytes ------------------------------------------------------------------------


@FUZZ
@given(payload=st.binary(max_size=4096))
def test_random_bytes_are_refused_or_decoded_never_crash(payload):
    decode_and_map(payload, "protobuf")
    decode_and_map(payload, "json")


def _real_request() -> tuple[bytes, bytes]:
    spans, _ = _good_spans(0, 4)
    spans.append(span_document(50, [attribute("gen_ai.usage.input_tokens", {"intValue": "-3"})]))
    return protobuf_request(spans), json_bytes(request_document(spans))


_PROTOBUF_SEED, _JSON_SEED = _real_request()


@st.composite
def mutations(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete" and data:
            del data[position : position + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[position:]
        elif kind == "duplicate" and data:
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
    return bytes(data)


@FUZZ
@given(payload=mutations(_PROTOBUF_SEED))
def test_mutated_protobuf_requests_never_crash(payload):
    decode_and_map(payload, "protobuf")


@FUZZ
@given(payload=mutations(_JSON_SEED))
def test_mutated_json_requests_never_crash(payload):
    decode_and_map(payload, "json")


@FUZZ
@given(document=st.one_of(any_json, otlp_shaped_json))
def test_random_json_documents_never_crash(document):
    decode_and_map(json_bytes(document), "json")


@FUZZ
@given(spans=st.lists(otlp_shaped_json, max_size=4), resource=st.lists(otlp_shaped_json, max_size=3))
def test_otlp_shaped_garbage_inside_a_valid_envelope_never_crashes(spans, resource):
    document = request_document(spans, resource)  # type: ignore[arg-type]
    decode_and_map(json_bytes(document), "json")


# --- bad spans beside good ones ----------------------------------------------------------------------


@FUZZ
@given(key=st.sampled_from(USAGE_KEYS), value=bad_count_values)
def test_an_unusable_token_count_rejects_its_span_and_keeps_the_good_ones(key, value):
    good, expected = _good_spans(0)
    bad = span_document(
        90,
        [
            attribute("gen_ai.provider.name", {"stringValue": "openai"}),
            attribute("gen_ai.response.id", {"stringValue": "bad-count"}),
            attribute(key, value),
        ],
    )
    result = decode_and_map(json_bytes(request_document([good[0], bad, *good[1:]])), "json")
    _assert_good_kept(result, expected)
    assert result is not None
    assert [r.index for r in result.rejected] == [1], f"{key}={value!r} was not rejected"
    assert key in result.rejected[0].reason or "tokens" in result.rejected[0].reason


@FUZZ
@given(value=bad_count_values)
def test_an_unusable_token_count_in_protobuf_is_rejected_too(value):
    try:
        bad_value = protobuf_request([span_document(0, [attribute("x", value)])])
    except (ValueError, TypeError, OverflowError):
        return  # protobuf cannot express this value (a non-numeric intValue, say): JSON-only
    del bad_value
    good, expected = _good_spans(0)
    bad = span_document(
        90,
        [
            attribute("gen_ai.provider.name", {"stringValue": "openai"}),
            attribute("gen_ai.response.id", {"stringValue": "bad-count"}),
            attribute("gen_ai.usage.input_tokens", value),
        ],
    )
    result = decode_and_map(protobuf_request([*good, bad]), "protobuf")
    _assert_good_kept(result, expected)
    assert result is not None and [r.index for r in result.rejected] == [3]


@FUZZ
@given(
    key=st.sampled_from(["customer.id", "gen_ai.request.model", "gen_ai.response.id"]), value=bad_text_values
)
def test_bad_text_in_a_field_rejects_its_span_and_keeps_the_good_ones(key, value):
    good, expected = _good_spans(0)
    bad = span_document(
        90,
        [
            attribute("gen_ai.provider.name", {"stringValue": "openai"}),
            attribute("gen_ai.usage.input_tokens", {"intValue": "5"}),
            attribute(key, {"stringValue": value}),
        ],
    )
    result = decode_and_map(json_bytes(request_document([*good, bad])), "json")
    _assert_good_kept(result, expected)
    assert result is not None and [r.index for r in result.rejected] == [3]


@pytest.mark.parametrize("depth", [5, 60, 400, 3000])
def test_deeply_nested_values_are_refused_or_rejected_never_crash(depth):
    good, expected = _good_spans(0)
    nested = span_document(
        90,
        [
            attribute("gen_ai.provider.name", {"stringValue": "openai"}),
            attribute("gen_ai.usage.input_tokens", NESTED_PLACEHOLDER),  # type: ignore[arg-type]
            attribute("customer.id", NESTED_PLACEHOLDER),  # type: ignore[arg-type]
        ],
    )
    text = json.dumps(request_document([*good, nested])).replace(
        json.dumps(NESTED_PLACEHOLDER), nested_array_json(depth)
    )
    result = decode_and_map(text.encode(), "json")
    if result is not None:  # too deep for the JSON parser is a clean 400; otherwise the span is rejected
        _assert_good_kept(result, expected)
        assert [r.index for r in result.rejected] == [3]
    nested["attributes"][1:] = [
        attribute("gen_ai.usage.input_tokens", nested_array(min(depth, 5))),
        attribute("customer.id", nested_array(min(depth, 5))),
    ]
    _assert_good_kept(decode_and_map(protobuf_request([*good, nested]), "protobuf"), expected)
    if depth > 50:  # protobuf's parser stops at 100 message levels: the whole request is a clean 400
        deep = span_document(91, [attribute("customer.id", nested_array(depth))])
        with pytest.raises(PayloadError):
            decode_protobuf(_deep_protobuf(deep), LIMITS, SPAN_KEYS, RESOURCE_KEYS)


def _deep_protobuf(document: dict) -> bytes:
    """A request whose one attribute nests ``depth`` arrays, serialized by hand: the protobuf runtime
    refuses to build a message that deep, but a hostile client can send the bytes."""
    value = AnyValue(int_value=1).SerializeToString()
    depth = sum(1 for _ in _levels(document["attributes"][0]["value"]))
    for _ in range(depth):
        array = field(1, value)  # ArrayValue.values = 1
        value = field(5, array)  # AnyValue.array_value = 5
    key_value = field(1, b"customer.id") + field(2, value)
    span = field(1, bytes(16)[:-1] + b"\x01") + field(2, bytes(7) + b"\x01") + field(9, key_value)
    return field(1, field(2, field(2, span)))  # ExportTraceServiceRequest.resource_spans.scope_spans.spans


def _levels(value: dict):
    while "arrayValue" in value:
        yield value
        value = value["arrayValue"]["values"][0]


# --- memory ------------------------------------------------------------------------------------------


def test_memory_stays_bounded_for_a_request_full_of_huge_attributes():
    limits = ReceiverLimits()
    prompt = "p" * 200_000  # never read: the mapping only converts the attributes it needs
    spans = []
    for index in range(40):
        spans.append(
            span_document(
                index,
                [
                    attribute("gen_ai.prompt.0.content", {"stringValue": prompt}),
                    attribute("gen_ai.provider.name", {"stringValue": "openai"}),
                    attribute("gen_ai.usage.input_tokens", {"intValue": "10"}),
                    attribute("customer.id", {"stringValue": "c" * 100_000}),  # over the length limit
                ],
            )
        )
    for payload, decode in (
        (json_bytes(request_document(spans)), decode_json),
        (protobuf_request(spans), decode_protobuf),
    ):
        gc.collect()
        tracemalloc.start()
        try:
            records = decode(payload, limits, SPAN_KEYS, RESOURCE_KEYS)
            result = map_spans(records)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(result.rejected) == 40 and all("length limit" in r.reason for r in result.rejected)
        # The parsed JSON document costs about twice the body (measured: 24 MB for 12 MB); nothing may grow
        # beyond a small multiple. tracemalloc sees Python allocations only: protobuf's C arena (upb) is
        # bounded by the request itself, which the receiver caps with max_decompressed_bytes.
        assert peak < 6 * len(payload), f"peak {peak} bytes for a {len(payload)}-byte request"


# --- through a running receiver, into the ledger -----------------------------------------------------


_BAD_SPAN_ATTRIBUTES = st.one_of(
    st.tuples(st.sampled_from(USAGE_KEYS), bad_count_values),
    st.tuples(
        st.sampled_from(["customer.id", "gen_ai.request.model", "gen_ai.response.id"]),
        bad_text_values.map(lambda s: {"stringValue": s}),
    ),
)


def test_the_receiver_stores_good_spans_and_rejects_bad_ones_with_reasons(database_url):
    receiver = Receiver(
        ReceiverSettings(
            database_url=database_url, grpc_endpoint=None, http_endpoint="127.0.0.1:0", migrate=True
        )
    )
    receiver.start()
    counter = [0]
    expected_all: dict[str, tuple[int, int]] = {}
    try:

        @settings(max_examples=max(FUZZ_EXAMPLES // 4, 10), deadline=None)
        @given(bad=_BAD_SPAN_ATTRIBUTES, bad_resource=st.booleans(), in_protobuf=st.booleans())
        def round_trip(bad, bad_resource, in_protobuf):
            counter[0] += 1
            good, expected = _good_spans(counter[0] * 10)
            key, value = bad
            bad_span = span_document(
                counter[0] * 10 + 9,
                [
                    attribute("gen_ai.provider.name", {"stringValue": "openai"}),
                    attribute("gen_ai.usage.output_tokens", {"intValue": "1"}),
                    attribute("gen_ai.response.id", {"stringValue": f"bad-{counter[0]}"}),
                    attribute(key, value),
                ],
            )
            document = request_document([*good, bad_span])
            if bad_resource:  # a second request whose resource (copied into metadata) is bad text
                resource = [attribute("service.name", {"stringValue": "svc\x00\ud800"})]
                more = span_document(
                    counter[0] * 10 + 8,
                    [
                        attribute("gen_ai.provider.name", {"stringValue": "openai"}),
                        attribute("gen_ai.response.id", {"stringValue": f"bad-resource-{counter[0]}"}),
                        attribute("gen_ai.usage.input_tokens", {"intValue": "3"}),
                    ],
                )
                document["resourceSpans"].append(request_document([more], resource)["resourceSpans"][0])
            body, content_type = json_bytes(document), "application/json"
            if in_protobuf and not bad_resource:
                # A value protobuf cannot express (a non-numeric intValue, say) is sent as JSON.
                with contextlib.suppress(ValueError, TypeError, OverflowError):
                    body, content_type = protobuf_request([*good, bad_span]), "application/x-protobuf"
            answer = httpx.post(
                f"http://127.0.0.1:{receiver.http_port}/v1/traces",
                content=body,
                headers={"content-type": content_type},
                timeout=30,
            )
            assert answer.status_code == 200, answer.content
            if content_type == "application/json":
                partial = json.loads(answer.content).get("partialSuccess", {})
                assert int(partial["rejectedSpans"]) >= 1 and partial["errorMessage"].startswith("rejected ")
            expected_all.update(expected)

        round_trip()
    finally:
        receiver.stop()
    engine = create_engine_from_url(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT response_id, input_tokens, output_tokens FROM usage_events "
                    "WHERE response_id LIKE 'good-%'"
                )
            ).all()
            bad_rows = connection.execute(
                text("SELECT count(*) FROM usage_events WHERE response_id LIKE 'bad-%'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert {r[0]: (r[1], r[2]) for r in rows} == expected_all
    assert len(rows) == len(expected_all)
    assert bad_rows == 0
