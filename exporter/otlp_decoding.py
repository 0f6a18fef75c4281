"""OTLP trace requests (protobuf and JSON) → :class:`~spanledger.exporter.spans.SpanRecord`.

Only the attributes the mapping reads are converted (``span_keys`` / ``resource_keys``); every other
attribute is skipped unread, which keeps decoding cheap on spans full of prompts. Given
``candidate_keys`` (:func:`~spanledger.exporter.mapping.candidate_attribute_keys`), a span carrying none
of them cannot be billable and is not turned into a record at all: it is only counted, in
:attr:`DecodedSpans.skipped`. Most spans of a trace (HTTP, database) are such spans.

:func:`decode_protobuf` validates a request by parsing it whole, then reads its spans at the wire level
(:mod:`~spanledger.exporter.otlp_wire`): a span whose bytes do not contain a candidate key is skipped
without being looked at further, and attributes are read from their bytes. It returns exactly what
:func:`spans_from_request` returns for the parsed request (the reference, tested against it).

OTLP/JSON differs from protobuf's canonical JSON mapping (OTLP specification, "JSON Protobuf Encoding"):
trace and span ids are hex strings, not base64; enums are integers; 64-bit integers may arrive as decimal
strings or as numbers; keys are lowerCamelCase (we also accept the proto field names); unknown fields are
ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.exporter.errors import PayloadError, PayloadTooLargeError
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.otlp_wire import (
    LeanRequest,
    LeanSpan,
    attribute_reader,
    contains_any,
    key_substrings,
    proto_value,
)
from spanledger.exporter.spans import AttributeValue, SpanRecord

__all__ = [
    "DecodedSpans",
    "count_spans",
    "decode_json",
    "decode_protobuf",
    "parse_protobuf",
    "spans_from_request",
]

# ASCII digits only, at most 20 (int64 has 19): str.isdigit() also accepts "²", which int() refuses.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,20}")
_EMPTY: Mapping[str, AttributeValue] = {}
_NONE: frozenset[str] = frozenset()


class DecodedSpans(list[SpanRecord]):
    """The decoded spans of a request, plus how many were ``skipped`` as not billable (not decoded)."""

    __slots__ = ("skipped",)

    def __init__(self, records: Iterable[SpanRecord] = (), skipped: int = 0) -> None:
        super().__init__(records)
        self.skipped = skipped


def parse_protobuf(payload: bytes) -> ExportTraceServiceRequest:
    """Parse a protobuf ``ExportTraceServiceRequest``; :class:`PayloadError` when it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise PayloadError(f"the body is not a protobuf ExportTraceServiceRequest: {exc}") from exc


def count_spans(request: ExportTraceServiceRequest) -> int:
    """How many spans ``request`` carries."""
    return sum(len(scope_spans.spans) for rs in request.resource_spans for scope_spans in rs.scope_spans)


def decode_protobuf(
    payload: bytes,
    limits: ReceiverLimits,
    span_keys: frozenset[str],
    resource_keys: frozenset[str],
    *,
    candidate_keys: frozenset[str] | None = None,
) -> DecodedSpans:
    """The spans of a protobuf-encoded request (already decompressed)."""
    request = parse_protobuf(payload)
    _check_span_count(count_spans(request), limits)
    # The wire-level reading relies on every candidate key being a key it reads.
    if candidate_keys is None or candidate_keys <= span_keys:
        try:
            records = _spans_from_wire(
                request, LeanRequest.FromString(payload), limits, span_keys, resource_keys, candidate_keys
            )
        except DecodeError:  # not expected once the real parse succeeded; the reference path decides
            records = None
        if records is not None:
            return records
    return spans_from_request(request, limits, span_keys, resource_keys, candidate_keys=candidate_keys)


def spans_from_request(
    request: ExportTraceServiceRequest,
    limits: ReceiverLimits,
    span_keys: frozenset[str],
    resource_keys: frozenset[str],
    *,
    candidate_keys: frozenset[str] | None = None,
) -> DecodedSpans:
    """The spans of a parsed request; :class:`PayloadTooLargeError` over the span-count limit."""
    _check_span_count(count_spans(request), limits)
    max_length = limits.max_attribute_length
    records = DecodedSpans()
    not_candidate = candidate_keys.isdisjoint if candidate_keys is not None else None
    for resource_spans in request.resource_spans:
        resource, resource_oversized = _proto_attributes(
            resource_spans.resource.attributes, resource_keys, max_length
        )
        for scope_spans in resource_spans.scope_spans:
            scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
            for span in scope_spans.spans:
                key_values = span.attributes
                if not_candidate is not None and not_candidate(kv.key for kv in key_values):
                    records.skipped += 1
                    continue
                attributes, oversized = _proto_attributes(key_values, span_keys, max_length)
                records.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        name=span.name,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        attributes=attributes,
                        resource_attributes=resource,
                        scope_name=scope_name,
                        scope_version=scope_version,
                        status_code=span.status.code,
                        oversized_attributes=oversized,
                        oversized_resource_attributes=resource_oversized,
                    )
                )
    return records


def _check_span_count(count: int, limits: ReceiverLimits) -> None:
    if count > limits.max_spans_per_request:
        raise PayloadTooLargeError(
            f"request carries {count} spans; the limit is {limits.max_spans_per_request} "
            "(SPANLEDGER_MAX_SPANS_PER_REQUEST); lower the exporter's batch size"
        )


def _proto_attributes(
    key_values: Any, wanted: frozenset[str], max_length: int
) -> tuple[Mapping[str, AttributeValue], frozenset[str]]:
    attributes: dict[str, AttributeValue] = {}
    oversized: set[str] = set()
    for kv in key_values:
        key = kv.key
        if key not in wanted:
            continue
        value = proto_value(kv.value)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > max_length:
            oversized.add(key)
            continue
        attributes[key] = value
    return (attributes or _EMPTY), (frozenset(oversized) if oversized else _NONE)


def _spans_from_wire(
    request: ExportTraceServiceRequest,
    lean: Any,
    limits: ReceiverLimits,
    span_keys: frozenset[str],
    resource_keys: frozenset[str],
    candidate_keys: frozenset[str] | None,
) -> DecodedSpans | None:
    """:func:`spans_from_request` read from the lean parse of the same payload (``None`` if the two parses
    disagree on the request's shape, which a valid payload never makes them do)."""
    max_length = limits.max_attribute_length
    records = DecodedSpans()
    append = records.append
    # A span whose bytes contain none of the candidate keys' substrings carries none of the keys. Usually two
    # substrings ("gen_ai.", "llm."), tested inline; more go through contains_any.
    needles = key_substrings(candidate_keys) if candidate_keys is not None else ()
    first, second = (needles * 2)[:2] if needles else (b"", b"")
    more = contains_any(needles) if len(needles) > 2 else None
    filtered = bool(needles)
    read_attributes = attribute_reader(span_keys, candidate_keys, max_length).read
    every_resource, every_lean_resource = request.resource_spans, lean.resource_spans
    if len(every_resource) != len(every_lean_resource):
        return None
    for resource_spans, lean_resource in zip(every_resource, every_lean_resource, strict=True):
        resource, resource_oversized = _proto_attributes(
            resource_spans.resource.attributes, resource_keys, max_length
        )
        every_scope, every_lean_scope = resource_spans.scope_spans, lean_resource.scope_spans
        if len(every_scope) != len(every_lean_scope):
            return None
        for scope_spans, lean_scope in zip(every_scope, every_lean_scope, strict=True):
            scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
            raw_spans = lean_scope.spans
            if len(raw_spans) != len(scope_spans.spans):
                return None
            for raw in raw_spans:
                if filtered and first not in raw and second not in raw and (more is None or not more(raw)):
                    records.skipped += 1
                    continue
                span = LeanSpan.FromString(raw)
                attributes, oversized, candidate = read_attributes(span.attributes)
                if not candidate:
                    records.skipped += 1
                    continue
                append(
                    SpanRecord(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.name,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        attributes or _EMPTY,
                        resource,
                        scope_name,
                        scope_version,
                        span.status.code,
                        frozenset(oversized) if oversized else _NONE,
                        resource_oversized,
                    )
                )
    return records


# --- OTLP/JSON -----------------------------------------------------------------------------------------


def decode_json(
    payload: bytes,
    limits: ReceiverLimits,
    span_keys: frozenset[str],
    resource_keys: frozenset[str],
    *,
    candidate_keys: frozenset[str] | None = None,
) -> DecodedSpans:
    """The spans of an OTLP/JSON request (already decompressed)."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from exc
    except ValueError as exc:  # json's own limits, e.g. an integer of more than 4300 digits
        raise PayloadError(f"the body is not usable JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadError("the JSON body is nested too deeply") from exc
    if not isinstance(document, dict):
        raise PayloadError("an OTLP/JSON trace request must be a JSON object with resourceSpans")
    resource_spans_list = _list(document, "resourceSpans", "resource_spans")
    count = 0
    for resource_spans in resource_spans_list:
        for scope_spans in _list(_object(resource_spans, "resourceSpans[]"), "scopeSpans", "scope_spans"):
            count += len(_list(_object(scope_spans, "scopeSpans[]"), "spans", "spans"))
    _check_span_count(count, limits)
    max_length = limits.max_attribute_length
    records = DecodedSpans()
    for resource_spans in resource_spans_list:
        resource_object = _object(resource_spans.get("resource") or {}, "resource")
        resource, resource_oversized = _json_attributes(resource_object, resource_keys, max_length)
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            scope = _object(scope_spans.get("scope") or {}, "scope")
            scope_name, scope_version = str(scope.get("name") or ""), str(scope.get("version") or "")
            for span in _list(scope_spans, "spans", "spans"):
                span = _object(span, "span")
                if candidate_keys is not None and not _has_json_key(span, candidate_keys):
                    records.skipped += 1
                    continue
                attributes, oversized = _json_attributes(span, span_keys, max_length)
                status = span.get("status") or {}
                records.append(
                    SpanRecord(
                        trace_id=_hex_id(_get(span, "traceId", "trace_id"), 16),
                        span_id=_hex_id(_get(span, "spanId", "span_id"), 8),
                        name=str(span.get("name") or ""),
                        start_time_unix_nano=_json_int(
                            _get(span, "startTimeUnixNano", "start_time_unix_nano")
                        ),
                        end_time_unix_nano=_json_int(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
                        attributes=attributes,
                        resource_attributes=resource,
                        scope_name=scope_name,
                        scope_version=scope_version,
                        status_code=_json_int(status.get("code")) if isinstance(status, dict) else 0,
                        oversized_attributes=oversized,
                        oversized_resource_attributes=resource_oversized,
                    )
                )
    return records


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], camel: str, snake: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{camel} must be a JSON array, not {type(value).__name__}")
    return value


def _json_int(value: Any) -> int:
    """An OTLP/JSON 64-bit integer: a number or a decimal string. Anything else counts as absent (0)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE_NUMBER.fullmatch(text):
            return int(text)
    return 0


def _hex_id(value: Any, size: int) -> str:
    """A trace or span id as lowercase hex; invalid ids become "" and the mapping decides what that costs."""
    if not isinstance(value, str) or not value:
        return ""
    if len(value) == size * 2:
        try:
            return bytes.fromhex(value).hex()
        except ValueError:
            pass
    # Some exporters send protobuf's canonical JSON (base64 ids); accept it rather than lose the span.
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == size else ""


def _json_attributes(
    obj: Mapping[str, Any], wanted: frozenset[str], max_length: int
) -> tuple[Mapping[str, AttributeValue], frozenset[str]]:
    key_values = obj.get("attributes")
    if not key_values:
        return _EMPTY, _NONE
    if not isinstance(key_values, list):
        raise PayloadError("attributes must be a JSON array of {key, value} objects")
    attributes: dict[str, AttributeValue] = {}
    oversized: set[str] = set()
    for key, raw in _key_values(key_values):
        if key not in wanted:
            continue
        value = _json_value(raw)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > max_length:
            oversized.add(key)
            continue
        attributes[key] = value
    return (attributes or _EMPTY), (frozenset(oversized) if oversized else _NONE)


def _has_json_key(span: Mapping[str, Any], keys: frozenset[str]) -> bool:
    key_values = span.get("attributes")
    if not key_values:
        return False
    if not isinstance(key_values, list):
        return True  # decoded in full, so the malformed attributes are reported
    return not keys.isdisjoint(key for key, _ in _key_values(key_values))


def _key_values(items: list[Any]) -> Iterator[tuple[str, Any]]:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            yield item["key"], item.get("value")


def _json_value(value: Any) -> AttributeValue | None:
    if not isinstance(value, dict):
        return None
    for camel, snake in (("stringValue", "string_value"), ("boolValue", "bool_value")):
        found = _get(value, camel, snake)
        if isinstance(found, str | bool):
            return found
    found = _get(value, "intValue", "int_value")
    if isinstance(found, str):
        # A malformed string stays a string, so the mapping can reject a count it cannot read.
        return int(found.strip()) if _WHOLE_NUMBER.fullmatch(found.strip()) else found
    if isinstance(found, int) and not isinstance(found, bool):
        return found
    found = _get(value, "doubleValue", "double_value")
    if isinstance(found, int | float) and not isinstance(found, bool):
        return float(found)
    found = _get(value, "arrayValue", "array_value")
    if isinstance(found, dict) and isinstance(found.get("values"), list):
        return tuple(v for v in (_json_value(item) for item in found["values"]) if v is not None)
    return None
