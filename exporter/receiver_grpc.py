"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` (default port 4317).

The method is served with a raw-bytes handler so the body is decoded by :class:`TraceIntake` with the same
limits and errors as OTLP/HTTP. Status codes follow the OTLP specification:

- ``OK`` with ``partial_success`` (rejected span count and a message) when some spans were bad;
- ``INVALID_ARGUMENT`` for an undecodable or oversized request (not retryable);
- ``UNAUTHENTICATED`` when tokens are configured and none is presented;
- ``UNAVAILABLE`` with ``RetryInfo`` when storage is down or the receiver is shutting down;
- ``RESOURCE_EXHAUSTED`` with ``RetryInfo`` when the commit queue is full.

gRPC itself refuses a message larger than ``max_decompressed_bytes`` once decompressed, while inflating it
(``RESOURCE_EXHAUSTED`` without ``RetryInfo``), so a gzip bomb is never fully inflated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanledger.billing.errors import ConfigurationError, StorageUnavailableError
from spanledger.exporter.auth import TokenAuthenticator
from spanledger.exporter.errors import (
    AuthenticationError,
    PayloadError,
    ReceiverBusyError,
    ReceiverClosedError,
)
from spanledger.exporter.trace_intake import PayloadFormat, TraceIntake

__all__ = ["SERVICE_NAME", "TLSFiles", "create_grpc_server", "export_handler"]

_log = logging.getLogger(__name__)

SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"


class TLSFiles(NamedTuple):
    """PEM certificate chain and private key paths."""

    cert_file: str
    key_file: str


class _Status(NamedTuple):
    """A ``grpc.Status`` for ``context.abort_with_status`` (grpcio-status is not needed for this)."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def _retry_status(code: grpc.StatusCode, message: str, retry_after_seconds: float) -> _Status:
    seconds = int(retry_after_seconds)
    retry_info = error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=seconds, nanos=int((retry_after_seconds - seconds) * 1e9))
    )
    detail = AnyProto()
    detail.Pack(retry_info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return _Status(
        code,
        message,
        (
            # Read by opentelemetry-python's exporter …
            ("google.rpc.retryinfo-bin", retry_info.SerializeToString()),
            # … and by the Collector and other gRPC clients (rich error model).
            ("grpc-status-details-bin", status.SerializeToString()),
        ),
    )


def export_handler(
    intake: TraceIntake, authenticator: TokenAuthenticator, retry_after_seconds: float
) -> Callable[[bytes, grpc.ServicerContext], bytes]:
    """The unary handler of ``Export``: raw request bytes in, serialized response out."""

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        try:
            authenticator.check(metadata.get("authorization"), metadata.get("x-api-key"))
        except AuthenticationError as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        try:
            if len(request) > intake.limits.max_decompressed_bytes:
                raise PayloadError(
                    f"request is {len(request)} bytes; the limit is {intake.limits.max_decompressed_bytes}"
                )
            outcome = intake.export(request, PayloadFormat.PROTOBUF)
        except PayloadError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except ReceiverBusyError as exc:
            context.abort_with_status(
                _retry_status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), retry_after_seconds)
            )
        except (StorageUnavailableError, ReceiverClosedError) as exc:
            context.abort_with_status(
                _retry_status(grpc.StatusCode.UNAVAILABLE, str(exc), retry_after_seconds)
            )
        except Exception:
            _log.exception("OTLP/gRPC export failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the receiver's log")
        response = ExportTraceServiceResponse()
        if outcome.rejected_spans:
            response.partial_success.rejected_spans = outcome.rejected_spans
            response.partial_success.error_message = outcome.error_message
        return response.SerializeToString()

    return export


def create_grpc_server(
    intake: TraceIntake,
    address: str,
    *,
    authenticator: TokenAuthenticator | None = None,
    tls: TLSFiles | None = None,
    retry_after_seconds: float = 1.0,
    max_workers: int = 32,
    reuse_port: bool = False,
) -> tuple[grpc.Server, int]:
    """A started-ready (not yet started) gRPC server bound to ``address``; returns it and the bound port.

    ``reuse_port`` binds with ``SO_REUSEPORT`` (the workers of ``spanledger serve --workers``).
    """
    limit = intake.limits.max_decompressed_bytes
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="spanledger-grpc"),
        # Beyond this many in-flight calls gRPC answers RESOURCE_EXHAUSTED itself: memory stays bounded.
        maximum_concurrent_rpcs=max_workers * 4,
        options=[
            ("grpc.max_receive_message_length", limit + 1),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # Only workers of one `serve --workers` share a port; a second receiver on a port in use
            # must fail to start rather than silently take half of the connections.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    handler: Any = grpc.unary_unary_rpc_method_handler(
        export_handler(intake, authenticator or TokenAuthenticator(), retry_after_seconds),
        request_deserializer=None,
        response_serializer=None,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Export": handler}),)
    )
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            with open(tls.key_file, "rb") as key, open(tls.cert_file, "rb") as cert:
                credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpcio's "Failed to bind to address"
        raise ConfigurationError(
            f"cannot listen for OTLP/gRPC on {address}: the address is in use or not available "
            "(another receiver? use `spanledger serve --workers N` to run several on one port)"
        ) from exc
    return server, port
