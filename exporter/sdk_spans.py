"""OpenTelemetry SDK spans (``ReadableSpan``) → :class:`~spanledger.exporter.spans.SpanRecord`.

The in-process exporter reads spans straight from the SDK; this applies the same attribute-length rule as
OTLP decoding, so both ways in map a span identically.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from spanledger.exporter.spans import AttributeValue, SpanRecord

__all__ = ["span_record_from_sdk"]

_STATUS_CODES = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


def span_record_from_sdk(span: ReadableSpan, max_attribute_length: int) -> SpanRecord:
    """The record of a finished SDK span; string values over ``max_attribute_length`` are set aside."""
    context = span.context
    scope = span.instrumentation_scope
    attributes, oversized = _bounded(span.attributes or {}, max_attribute_length)
    resource, resource_oversized = _bounded(
        span.resource.attributes if span.resource else {}, max_attribute_length
    )
    return SpanRecord(
        trace_id=f"{context.trace_id:032x}" if context else "",
        span_id=f"{context.span_id:016x}" if context else "",
        name=span.name,
        start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or 0,
        attributes=attributes,
        resource_attributes=resource,
        scope_name=scope.name if scope else "",
        scope_version=(scope.version or "") if scope else "",
        status_code=_STATUS_CODES.get(span.status.status_code, 0),
        oversized_attributes=oversized,
        oversized_resource_attributes=resource_oversized,
    )


def _bounded(
    attributes: Mapping[str, object], max_length: int
) -> tuple[Mapping[str, AttributeValue], frozenset[str]]:
    oversized = frozenset(
        key for key, value in attributes.items() if isinstance(value, str) and len(value) > max_length
    )
    if not oversized:
        return attributes, oversized  # type: ignore[return-value]  # SDK attributes are AttributeValues
    kept = {key: value for key, value in attributes.items() if key not in oversized}
    return kept, oversized  # type: ignore[return-value]
