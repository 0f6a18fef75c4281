"""Hypothesis strategies and builders for fuzzing OTLP decoding and span mapping.

Requests are built as OTLP/JSON documents (so any value of any type can be put anywhere) and, where the
protobuf schema allows, as protobuf too. "Good" spans carry a response id that starts with ``good-``; the
tests check that each one is stored exactly, whatever bad spans travel beside it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spanledger.billing.usage_event import MAX_TOKENS

START_NANOS = 1_790_000_000_000_000_000  # 2026-09-21: a plausible span time

USAGE_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.total_tokens",
    "llm.usage.total_tokens",
)
TEXT_KEYS = ("gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.id", "customer.id")


def attribute(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def good_span(index: int, customer: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """A billable chat span that must become exactly one event."""
    return span_document(
        index,
        [
            attribute("gen_ai.provider.name", {"stringValue": "openai"}),
            attribute("gen_ai.operation.name", {"stringValue": "chat"}),
            attribute("gen_ai.request.model", {"stringValue": "gpt-4o"}),
            attribute("gen_ai.response.id", {"stringValue": f"good-{customer}-{index}"}),
            attribute("gen_ai.usage.input_tokens", {"intValue": str(input_tokens)}),
            attribute("gen_ai.usage.output_tokens", {"intValue": output_tokens}),
            attribute("customer.id", {"stringValue": customer}),
        ],
    )


def span_document(index: int, attributes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    document = {
        "traceId": f"{index + 1:032x}",
        "spanId": f"{index + 1:016x}",
        "name": "chat gpt-4o",
        "startTimeUnixNano": str(START_NANOS + index),
        "endTimeUnixNano": str(START_NANOS + index + 1000),
        "attributes": attributes,
    }
    document.update(fields)
    return document


def request_document(spans: list[dict[str, Any]], resource: list[dict[str, Any]] | None = None) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource or [attribute("service.name", {"stringValue": "fuzz"})]},
                "scopeSpans": [{"scope": {"name": "fuzz.scope", "version": "1"}, "spans": spans}],
            }
        ]
    }


def json_bytes(document: object) -> bytes:
    # allow_nan: NaN and Infinity are what a sloppy producer sends; the receiver must cope.
    return json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")


# --- values that are not a usable token count --------------------------------------------------------

_not_a_whole_number_text = st.text(max_size=30).filter(
    lambda s: not (s.strip().lstrip("-").isascii() and s.strip().lstrip("-").isdigit())
)

#: OTLP attribute values that can never be a token count; each must get its span rejected.
bad_count_values = st.one_of(
    st.integers(max_value=-1).map(lambda n: {"intValue": str(n)}),
    st.integers(min_value=MAX_TOKENS + 1, max_value=10**30).map(lambda n: {"intValue": str(n)}),
    st.integers(min_value=-(2**63), max_value=-1).map(lambda n: {"intValue": n}),
    st.floats(allow_nan=True, allow_infinity=True)
    .filter(lambda f: not (math.isfinite(f) and f.is_integer()))
    .map(lambda f: {"doubleValue": f}),
    st.floats(min_value=-1e30, max_value=-1).map(lambda f: {"doubleValue": float(math.floor(f))}),
    _not_a_whole_number_text.map(lambda s: {"stringValue": s}),
    _not_a_whole_number_text.map(lambda s: {"intValue": s}),
    st.sampled_from(["--5", "²", "٣", "1e3", "0x10", " 12 34", "9" * 5000, "-" + "9" * 40]).map(
        lambda s: {"intValue": s}
    ),
    st.booleans().map(lambda b: {"boolValue": b}),
    st.lists(st.integers(0, 100), min_size=1, max_size=5).map(
        lambda xs: {"arrayValue": {"values": [{"intValue": str(x)} for x in xs]}}
    ),
)

#: Text that no text field may hold: NUL, unpaired surrogates, longer than a column.
bad_text_values = st.one_of(
    st.text(max_size=20).map(lambda s: s + "\x00" + s),
    st.sampled_from(["\ud800", "a\udfffb", "\udc00" * 3]),
    st.integers(min_value=300, max_value=5000).map(lambda n: "m" * n),
)


def nested_array(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"intValue": "1"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


NESTED_PLACEHOLDER = "@nested@"


def nested_array_json(depth: int) -> str:
    """The JSON text of :func:`nested_array` (built as text: ``json.dumps`` itself stops at ~1000 levels)."""
    return '{"arrayValue": {"values": [' * depth + '{"intValue": "1"}' + "]}}" * depth


# --- random OTLP-shaped JSON -------------------------------------------------------------------------

_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
any_json = st.recursive(
    _json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
otlp_keys = st.sampled_from(
    [
        "resourceSpans",
        "resource_spans",
        "scopeSpans",
        "spans",
        "attributes",
        "resource",
        "scope",
        "traceId",
        "spanId",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "status",
        "code",
        "name",
        "key",
        "value",
        "intValue",
        "stringValue",
        "doubleValue",
        "arrayValue",
        "values",
    ]
)
otlp_shaped_json = st.recursive(
    _json_leaves | st.sampled_from(list(USAGE_KEYS + TEXT_KEYS)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(otlp_keys, children, max_size=5),
    max_leaves=40,
)


def protobuf_request(documents: list[dict[str, Any]]) -> bytes:
    """A protobuf request with the spans of ``documents`` (values protobuf can express only)."""
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = "fuzz.scope"
    for document in documents:
        span = scope_spans.spans.add()
        span.trace_id = bytes.fromhex(document["traceId"])
        span.span_id = bytes.fromhex(document["spanId"])
        span.name = document["name"]
        span.start_time_unix_nano = int(document["startTimeUnixNano"])
        span.end_time_unix_nano = int(document["endTimeUnixNano"])
        for item in document["attributes"]:
            span.attributes.append(KeyValue(key=item["key"], value=_any_value(item["value"])))
    return request.SerializeToString()


def _any_value(value: dict[str, Any]) -> AnyValue:
    if "stringValue" in value:
        return AnyValue(string_value=value["stringValue"])
    if "intValue" in value:
        number = value["intValue"]
        if isinstance(number, str) and not re.fullmatch(r"-?[0-9]+", number):
            raise ValueError(f"protobuf has no int64 for {number!r}")
        return AnyValue(int_value=int(number))
    if "doubleValue" in value:
        return AnyValue(double_value=value["doubleValue"])
    if "boolValue" in value:
        return AnyValue(bool_value=value["boolValue"])
    array = AnyValue()
    for item in value["arrayValue"]["values"]:
        array.array_value.values.append(_any_value(item))
    return array
