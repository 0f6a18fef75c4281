"""The wire-level protobuf reading gives exactly what the real protobuf objects give.

:func:`decode_protobuf` (lean parse, bytes prefilter, attributes read from their bytes) is compared with
:func:`spans_from_request` over the real parse (the reference), on requests built with the real message
classes and on hand-made encodings that no SDK sends: duplicated fields, non-minimal varints, unknown
fields, a KeyValue whose value field appears twice (protobuf merges them), empty values.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from protobuf_encoding import field

from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import (
    MappingSettings,
    candidate_attribute_keys,
    map_spans,
    relevant_attribute_keys,
)
from spanledger.exporter.otlp_decoding import decode_protobuf, parse_protobuf, spans_from_request
from spanledger.exporter.otlp_wire import AttributeReader, key_substrings, proto_value, read_key_value

SETTINGS = MappingSettings(customer_attributes=("enduser.id",))
SPAN_KEYS, RESOURCE_KEYS = relevant_attribute_keys(SETTINGS)
CANDIDATES = candidate_attribute_keys()
# Keys the mapping reads, keys it skips, and keys that merely look alike.
KEYS = [*sorted(SPAN_KEYS), "http.method", "gen_ai.prompt", "llm.foo", "gen_ai", "", "clé.ünïcode", "k" * 200]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _both(payload: bytes, limits: ReceiverLimits, candidate_keys: frozenset[str] | None = CANDIDATES):
    fast = decode_protobuf(payload, limits, SPAN_KEYS, RESOURCE_KEYS, candidate_keys=candidate_keys)
    reference = spans_from_request(
        parse_protobuf(payload), limits, SPAN_KEYS, RESOURCE_KEYS, candidate_keys=candidate_keys
    )
    return fast, reference


def _assert_same(payload: bytes, limits: ReceiverLimits | None = None) -> None:
    limits = limits or ReceiverLimits(max_attribute_length=40)
    for candidate_keys in (CANDIDATES, None):
        fast, reference = _both(payload, limits, candidate_keys)
        assert list(fast) == list(reference)
        assert fast.skipped == reference.skipped
        assert map_spans(fast, SETTINGS) == map_spans(reference, SETTINGS)


any_values = st.recursive(
    st.one_of(
        st.builds(AnyValue, string_value=st.text(max_size=60)),
        st.builds(AnyValue, string_value=st.text(min_size=100, max_size=300)),
        st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1)),
        st.builds(AnyValue, int_value=st.integers(0, 20_000)),
        st.builds(AnyValue, double_value=st.floats(allow_nan=False)),
        st.builds(AnyValue, bool_value=st.booleans()),
        st.builds(AnyValue, bytes_value=st.binary(max_size=10)),
        st.just(AnyValue()),
    ),
    lambda children: st.one_of(
        st.builds(
            lambda values: AnyValue(array_value=ArrayValue(values=values)), st.lists(children, max_size=3)
        ),
        st.builds(
            lambda values: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key="k", value=v) for v in values])
            ),
            st.lists(children, max_size=2),
        ),
    ),
    max_leaves=4,
)
key_values = st.builds(KeyValue, key=st.sampled_from(KEYS), value=any_values)


@st.composite
def odd_key_values(draw: st.DrawFn) -> bytes:
    """A serialized KeyValue as no SDK writes it, but every protobuf parser accepts."""
    key = draw(st.sampled_from(KEYS)).encode()
    # Each value field holds one AnyValue, or several concatenated (its oneof set again: the last wins).
    values = draw(st.lists(st.lists(any_values, min_size=1, max_size=3), max_size=3))
    parts = [field(1, key, draw(st.integers(0, 2)))]
    parts += [
        field(2, b"".join(v.SerializeToString() for v in value), draw(st.integers(0, 2))) for value in values
    ]
    if draw(st.booleans()):
        parts.append(b"\x38\x05")  # unknown varint field 7
    if draw(st.booleans()):
        parts.append(field(1, draw(st.sampled_from(KEYS)).encode()))  # the key set twice: the last wins
    draw(st.randoms()).shuffle(parts)
    return b"".join(parts)


def _request(spans: list[Span], resource: list[KeyValue] | None = None) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": resource or []},
                scope_spans=[
                    ScopeSpans(scope={"name": "s", "version": "1"}, spans=spans[: len(spans) // 2]),
                    ScopeSpans(scope={"name": "t"}, spans=spans[len(spans) // 2 :]),
                ],
            )
        ]
    )


def _span(n: int, attributes: list[KeyValue]) -> Span:
    return Span(
        trace_id=n.to_bytes(16, "big"),
        span_id=n.to_bytes(8, "big"),
        name=f"span {n}",
        start_time_unix_nano=1_790_000_000_000_000_000 + n,
        end_time_unix_nano=1_790_000_000_000_001_000 + n if n % 4 else 0,
        attributes=attributes,
        status=Status(code=n % 3),
    )


@FUZZ
@given(st.lists(st.lists(key_values, max_size=8), max_size=6), st.lists(key_values, max_size=4))
def test_decoding_matches_the_real_protobuf_objects(spans, resource):
    payload = _request([_span(n, attributes) for n, attributes in enumerate(spans)], resource)
    _assert_same(payload.SerializeToString())


@FUZZ
@given(st.lists(st.lists(odd_key_values(), min_size=1, max_size=5), min_size=1, max_size=4))
def test_odd_encodings_read_as_the_real_objects_read_them(attribute_lists):
    spans = []
    for n, raw_attributes in enumerate(attribute_lists):
        raw = _span(n, []).SerializeToString() + b"".join(field(9, kv) for kv in raw_attributes)
        spans.append(raw)
    scope = b"".join(field(2, raw) for raw in spans)
    payload = field(1, field(2, scope))
    try:
        parse_protobuf(payload)
    except Exception:  # e.g. a kvlist value that is not valid UTF-8 after shuffling: refused by both
        return
    _assert_same(payload)
    for raw_attributes in attribute_lists:
        for kv in raw_attributes:
            message = KeyValue.FromString(kv)
            assert read_key_value(kv) == (message.key, proto_value(message.value))


@pytest.mark.parametrize(
    "value",
    [
        AnyValue(string_value=""),
        AnyValue(string_value="é" * 70),  # two-byte length
        AnyValue(string_value="x" * 20_000),  # three-byte length: read by the real type
        AnyValue(int_value=0),
        AnyValue(int_value=-1),
        AnyValue(int_value=2**63 - 1),
        AnyValue(int_value=127),
        AnyValue(int_value=128),
        AnyValue(double_value=-0.0),
        AnyValue(double_value=float("inf")),
        AnyValue(bool_value=False),
        AnyValue(bool_value=True),
        AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="a")])),
        AnyValue(),
    ],
)
def test_each_value_kind_reads_as_the_real_object_reads_it(value):
    raw = KeyValue(key="gen_ai.usage.input_tokens", value=value).SerializeToString()
    assert read_key_value(raw) == ("gen_ai.usage.input_tokens", proto_value(value))
    assert read_key_value(raw) == read_key_value(raw)  # and again from the cache


def test_non_canonical_scalars_read_as_the_real_object_reads_them():
    double = b"\x21" + struct.pack("<d", 2.5)
    for raw_value in (
        b"\x10\x05",
        b"\x10\x80\x00",
        b"\x18\x81\x00",
        b"\x18" + b"\xff" * 9 + b"\x01",
        # The oneof set twice: the last wins.
        b"\x18\x01\x0a\x01a",
        b"\x0a\x01a\x18\x01",
        b"\x10\x01\x18\x02",
        double + b"\x10\x01",
        b"\x18\x01" + double,
    ):
        raw = field(1, b"gen_ai.usage.input_tokens") + field(2, raw_value)
        assert read_key_value(raw) == (
            "gen_ai.usage.input_tokens",
            proto_value(AnyValue.FromString(raw_value)),
        )
    assert read_key_value(field(1, b"k") + field(2, double)) == ("k", 2.5)


def test_a_benchmark_sized_request_decodes_as_the_reference():
    rng = random.Random(7)
    spans = []
    for n in range(300):
        if n % 3:
            attributes = [KeyValue(key="http.route", value=AnyValue(string_value="/items"))]
        else:
            attributes = [
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=rng.randint(0, 10**6))),
                KeyValue(
                    key="gen_ai.input.messages", value=AnyValue(string_value="x" * rng.randint(0, 3000))
                ),
                KeyValue(key="customer.id", value=AnyValue(string_value=f"c-{rng.randint(0, 30)}")),
            ]
        spans.append(_span(n, attributes))
    _assert_same(_request(spans).SerializeToString(), ReceiverLimits())


@given(st.sets(st.text(max_size=12), max_size=6), st.text(max_size=40))
def test_key_substrings_are_in_every_key(keys, text):
    parts = key_substrings(frozenset(keys))
    for key in keys:
        assert any(part in key.encode() for part in parts)
    if not any(part in text.encode() for part in parts):
        assert not any(key in text for key in keys)


def test_a_reader_reads_the_same_cold_and_warm_and_refuses_candidates_it_would_not_read():
    reader = AttributeReader(frozenset({"a", "b", "c"}), frozenset({"b"}), max_length=3)
    raw = [
        KeyValue(key="a", value=AnyValue(string_value="long")).SerializeToString(),  # oversized
        KeyValue(key="b", value=AnyValue()).SerializeToString(),  # valueless, still a candidate
        KeyValue(key="c", value=AnyValue(int_value=5)).SerializeToString(),
        KeyValue(key="z", value=AnyValue(int_value=6)).SerializeToString(),  # not wanted
    ]
    expected = ({"c": 5}, {"a"}, True)
    assert reader.read(raw) == expected
    assert reader.read(raw) == expected
    assert reader.read(raw[2:]) == ({"c": 5}, None, False)
    with pytest.raises(ValueError, match="candidate"):
        AttributeReader(frozenset({"a"}), frozenset({"b"}), max_length=3)


@pytest.mark.parametrize(
    "candidates",
    [
        frozenset(),
        frozenset({"gen_ai.operation.name"}),  # one substring
        frozenset({"gen_ai.operation.name", "http.method", "k" * 200}),  # three
    ],
)
def test_any_candidate_set_skips_what_the_reference_skips(candidates):
    span_keys = SPAN_KEYS | {"http.method", "k" * 200}
    spans = [
        _span(n, [KeyValue(key=key, value=AnyValue(string_value="v"))])
        for n, key in enumerate([*KEYS, "http.method", "gen_ai.operation.name"])
    ]
    payload = _request(spans).SerializeToString()
    limits = ReceiverLimits()
    fast = decode_protobuf(payload, limits, span_keys, RESOURCE_KEYS, candidate_keys=candidates)
    reference = spans_from_request(
        parse_protobuf(payload), limits, span_keys, RESOURCE_KEYS, candidate_keys=candidates
    )
    assert (list(fast), fast.skipped) == (list(reference), reference.skipped)
    assert len(reference) == sum(
        1 for key in [*KEYS, "http.method", "gen_ai.operation.name"] if key in candidates
    )
