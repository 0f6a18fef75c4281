"""The plain span the mapping reads: what OTLP decoding and the in-process exporter both produce.

Only the parts of a span that billing needs are kept: ids, name, times, the instrumentation scope, and the
attributes of the span and its resource. Attribute values are the OpenTelemetry attribute types (``str``,
``bool``, ``int``, ``float`` or a tuple of them). A string value longer than the configured limit is not
kept; its key is listed in ``oversized_attributes`` so the mapping can reject the span with a clear reason
instead of billing a truncated customer id.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["STATUS_ERROR", "AttributeValue", "SpanRecord"]

AttributeValue = str | bool | int | float | tuple[object, ...]

STATUS_ERROR = 2

_NO_ATTRIBUTES: Mapping[str, AttributeValue] = MappingProxyType({})


class SpanRecord(NamedTuple):
    """One finished span, decoded. Ids are lowercase hex (32 and 16 characters).

    Immutable, and a named tuple rather than a frozen dataclass because a receiver builds one per billable
    span: a tuple is built in one step, a frozen dataclass assigns each field through ``object.__setattr__``
    (about four times the cost of the whole tuple).
    """

    trace_id: str
    span_id: str
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Mapping[str, AttributeValue]
    resource_attributes: Mapping[str, AttributeValue] = _NO_ATTRIBUTES
    scope_name: str = ""
    scope_version: str = ""
    #: OTLP status code: 0 unset, 1 ok, 2 error.
    status_code: int = 0
    oversized_attributes: frozenset[str] = frozenset()
    oversized_resource_attributes: frozenset[str] = frozenset()
