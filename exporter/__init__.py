"""spanledger.exporter: turn billable spans into usage events, exactly once, from any tracing setup.

Three ways in, one mapping (:mod:`spanledger.exporter.mapping`):

- the OTLP receivers (:class:`Receiver`; gRPC on 4317, HTTP on 4318; ``spanledger serve``),
- an OpenTelemetry Collector exporting to those receivers (``otel-config.yaml``),
- the in-process :class:`SpanledgerSpanExporter` (``OTEL_TRACES_EXPORTER=otlp,spanledger``).
"""

from spanledger.exporter.auth import TokenAuthenticator
from spanledger.exporter.dialects import ATTRIBUTE_TABLE, AttributeRule
from spanledger.exporter.errors import (
    AuthenticationError,
    PayloadError,
    PayloadTooLargeError,
    ReceiverBusyError,
    ReceiverClosedError,
)
from spanledger.exporter.group_commit import CommitOutcome, GroupCommitter
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import (
    MappingResult,
    MappingSettings,
    RejectedSpan,
    dedupe_key_for,
    map_span,
    map_spans,
)
from spanledger.exporter.receiver_grpc import TLSFiles, create_grpc_server
from spanledger.exporter.receiver_http import create_http_app, trace_routes
from spanledger.exporter.server import Receiver, ReceiverSettings, serve
from spanledger.exporter.span_exporter import SpanledgerSpanExporter
from spanledger.exporter.spans import SpanRecord
from spanledger.exporter.trace_intake import ExportOutcome, PayloadFormat, TraceIntake

__all__ = [
    "ATTRIBUTE_TABLE",
    "AttributeRule",
    "AuthenticationError",
    "CommitOutcome",
    "ExportOutcome",
    "GroupCommitter",
    "MappingResult",
    "MappingSettings",
    "PayloadError",
    "PayloadFormat",
    "PayloadTooLargeError",
    "Receiver",
    "ReceiverBusyError",
    "ReceiverClosedError",
    "ReceiverLimits",
    "ReceiverSettings",
    "RejectedSpan",
    "SpanRecord",
    "SpanledgerSpanExporter",
    "TLSFiles",
    "TokenAuthenticator",
    "TraceIntake",
    "create_grpc_server",
    "create_http_app",
    "dedupe_key_for",
    "map_span",
    "map_spans",
    "serve",
    "trace_routes",
]
