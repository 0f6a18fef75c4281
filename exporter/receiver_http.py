"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, gzip or deflate (default port 4318).

Built on Starlette so the customer portal and the Stripe webhook can be mounted on the same server:
:func:`trace_routes` gives the routes, :func:`create_http_app` an app with them plus any extra routes.

Responses follow the OTLP specification, encoded like the request (protobuf or JSON):

- 200 with ``ExportTraceServiceResponse`` (``partial_success`` when some spans were rejected);
- 400 (undecodable), 413 (over a size limit), 415 (unknown content type): not retryable, body is a
  ``google.rpc.Status`` with the reason;
- 401 when tokens are configured and none is presented;
- 429 (commit queue full) and 503 (storage down, shutting down) with ``Retry-After``: retryable.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from spanledger.billing.errors import StorageUnavailableError
from spanledger.exporter.auth import TokenAuthenticator
from spanledger.exporter.errors import (
    AuthenticationError,
    PayloadError,
    PayloadTooLargeError,
    ReceiverBusyError,
    ReceiverClosedError,
)
from spanledger.exporter.limits import decompress
from spanledger.exporter.trace_intake import ExportOutcome, PayloadFormat, TraceIntake

__all__ = ["TRACES_PATH", "create_http_app", "trace_routes"]

_log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
# gRPC status codes used in the google.rpc.Status bodies.
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE, _UNAUTHENTICATED, _INTERNAL = 3, 8, 14, 16, 13


class _TracesEndpoint:
    def __init__(self, intake: TraceIntake, authenticator: TokenAuthenticator, retry_after_seconds: float):
        self._intake = intake
        self._authenticator = authenticator
        self._retry_after = str(max(0, math.ceil(retry_after_seconds)))

    async def handle(self, request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        payload_format = PayloadFormat.JSON if media_type == _JSON else PayloadFormat.PROTOBUF
        try:
            self._authenticator.check(request.headers.get("authorization"), request.headers.get("x-api-key"))
        except AuthenticationError as exc:
            return _error(401, _UNAUTHENTICATED, str(exc), payload_format, {"WWW-Authenticate": "Bearer"})
        if media_type not in (_PROTOBUF, _JSON):
            message = f"Content-Type {media_type or '(none)'!r} is not supported; use {_PROTOBUF} or {_JSON}"
            return _error(415, _INVALID_ARGUMENT, message, payload_format)
        try:
            body = await self._read_body(request)
            payload = decompress(body, request.headers.get("content-encoding"), self._intake.limits)
            outcome = await self._intake.export_async(payload, payload_format)
        except PayloadTooLargeError as exc:
            return _error(413, _INVALID_ARGUMENT, str(exc), payload_format)
        except PayloadError as exc:
            return _error(400, _INVALID_ARGUMENT, str(exc), payload_format)
        except ReceiverBusyError as exc:
            return _error(
                429, _RESOURCE_EXHAUSTED, str(exc), payload_format, {"Retry-After": self._retry_after}
            )
        except (StorageUnavailableError, ReceiverClosedError) as exc:
            return _error(503, _UNAVAILABLE, str(exc), payload_format, {"Retry-After": self._retry_after})
        except Exception:
            _log.exception("OTLP/HTTP export failed")
            return _error(500, _INTERNAL, "internal error; see the receiver's log", payload_format)
        return _success(outcome, payload_format)

    async def _read_body(self, request: Request) -> bytes:
        limits = self._intake.limits
        declared = request.headers.get("content-length")
        if declared and declared.isdigit():
            limits.check_request_size(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            limits.check_request_size(size)  # stop reading a body that lied about its length
            chunks.append(chunk)
        return b"".join(chunks)


def _success(outcome: ExportOutcome, payload_format: PayloadFormat) -> Response:
    if payload_format is PayloadFormat.JSON:
        document: dict[str, object] = {}
        if outcome.rejected_spans:
            # int64 fields are strings in protobuf's JSON mapping.
            document["partialSuccess"] = {
                "rejectedSpans": str(outcome.rejected_spans),
                "errorMessage": outcome.error_message,
            }
        return Response(json.dumps(document), media_type=_JSON)
    response = ExportTraceServiceResponse()
    if outcome.rejected_spans:
        response.partial_success.rejected_spans = outcome.rejected_spans
        response.partial_success.error_message = outcome.error_message
    return Response(response.SerializeToString(), media_type=_PROTOBUF)


def _error(
    status: int,
    code: int,
    message: str,
    payload_format: PayloadFormat,
    headers: dict[str, str] | None = None,
) -> Response:
    if payload_format is PayloadFormat.JSON:
        body = json.dumps({"code": code, "message": message}).encode()
        return Response(body, status_code=status, media_type=_JSON, headers=headers)
    body = status_pb2.Status(code=code, message=message).SerializeToString()
    return Response(body, status_code=status, media_type=_PROTOBUF, headers=headers)


def trace_routes(
    intake: TraceIntake,
    *,
    authenticator: TokenAuthenticator | None = None,
    retry_after_seconds: float = 1.0,
) -> list[BaseRoute]:
    """The OTLP/HTTP routes, to mount on any Starlette application."""
    endpoint = _TracesEndpoint(intake, authenticator or TokenAuthenticator(), retry_after_seconds)
    return [Route(TRACES_PATH, endpoint.handle, methods=["POST"])]


def create_http_app(
    intake: TraceIntake,
    *,
    authenticator: TokenAuthenticator | None = None,
    retry_after_seconds: float = 1.0,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """A Starlette app serving ``POST /v1/traces`` and ``extra_routes`` (the portal, webhooks …)."""
    routes = trace_routes(intake, authenticator=authenticator, retry_after_seconds=retry_after_seconds)
    return Starlette(routes=[*routes, *extra_routes])
