"""The exporter's errors, all under :class:`~spanledger.billing.errors.SpanledgerError`.

::

    SpanledgerError
    ├── PayloadError (ValueError)      the request cannot be decoded → HTTP 400 / INVALID_ARGUMENT
    │   └── PayloadTooLargeError       over a size or span-count limit → HTTP 413 / INVALID_ARGUMENT
    ├── AuthenticationError            no valid token → HTTP 401 / UNAUTHENTICATED
    ├── ReceiverBusyError              the commit queue is full → HTTP 429 / RESOURCE_EXHAUSTED (retry)
    └── ReceiverClosedError            shutting down → HTTP 503 / UNAVAILABLE (retry)

:class:`~spanledger.billing.errors.StorageUnavailableError` (database down or locked) becomes HTTP 503 /
``UNAVAILABLE`` with a retry delay. All of these leave nothing stored from the request.
"""

from __future__ import annotations

from spanledger.billing.errors import SpanledgerError

__all__ = [
    "AuthenticationError",
    "PayloadError",
    "PayloadTooLargeError",
    "ReceiverBusyError",
    "ReceiverClosedError",
]


class PayloadError(SpanledgerError, ValueError):
    """The export request is not a valid OTLP trace request; sending it again will not help."""


class PayloadTooLargeError(PayloadError):
    """The request is over a configured limit (bytes, decompressed bytes or spans); send smaller batches."""


class AuthenticationError(SpanledgerError):
    """The request carries no token, or one that is not configured."""


class ReceiverBusyError(SpanledgerError):
    """Too many events are waiting for a commit; retry after the advertised delay."""


class ReceiverClosedError(SpanledgerError):
    """The receiver is shutting down and accepts no new requests; retry (another receiver may answer)."""
