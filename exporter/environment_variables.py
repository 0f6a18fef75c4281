"""Every environment variable the exporter reads, each documented where it is named.

Configuration follows OpenTelemetry's order: a constructor or command-line argument, else the
environment variable, else the default. A bad environment value is logged and the default is used; a bad
argument raises :class:`~spanledger.billing.errors.ConfigurationError`. The database itself is configured by
``SPANLEDGER_DATABASE_URL`` (see :mod:`spanledger.billing.db`), shared with the rest of spanledger.
"""

from __future__ import annotations

__all__ = [
    "SPANLEDGER_AUTH_TOKENS",
    "SPANLEDGER_COMMIT_MAX_BATCH_EVENTS",
    "SPANLEDGER_COMMIT_MAX_WAIT_MS",
    "SPANLEDGER_CUSTOMER_ATTRIBUTES",
    "SPANLEDGER_DATABASE_URL",
    "SPANLEDGER_GRPC_ENDPOINT",
    "SPANLEDGER_HTTP_ENDPOINT",
    "SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES",
    "SPANLEDGER_MAX_ATTRIBUTE_LENGTH",
    "SPANLEDGER_MAX_DECOMPRESSED_BYTES",
    "SPANLEDGER_MAX_PENDING_EVENTS",
    "SPANLEDGER_MAX_REQUEST_BYTES",
    "SPANLEDGER_MAX_SPANS_PER_REQUEST",
    "SPANLEDGER_RETRY_AFTER_SECONDS",
    "SPANLEDGER_SHUTDOWN_GRACE_SECONDS",
    "SPANLEDGER_TLS_CERT_FILE",
    "SPANLEDGER_TLS_KEY_FILE",
    "SPANLEDGER_WORKERS",
]

SPANLEDGER_DATABASE_URL = "SPANLEDGER_DATABASE_URL"
"""SQLAlchemy URL of the ledger (default ``sqlite:///spanledger.db``); see :mod:`spanledger.billing.db`."""

SPANLEDGER_GRPC_ENDPOINT = "SPANLEDGER_GRPC_ENDPOINT"
"""``host:port`` the OTLP/gRPC receiver listens on (default ``0.0.0.0:4317``); ``off`` disables it."""

SPANLEDGER_HTTP_ENDPOINT = "SPANLEDGER_HTTP_ENDPOINT"
"""``host:port`` the OTLP/HTTP receiver listens on (default ``0.0.0.0:4318``); ``off`` disables it."""

SPANLEDGER_AUTH_TOKENS = "SPANLEDGER_AUTH_TOKENS"
"""Comma-separated bearer tokens / API keys. When set, every export must carry one of them in the
``authorization`` header or gRPC metadata (``Bearer <token>``) or the ``x-api-key`` header. Empty: no auth."""

SPANLEDGER_TLS_CERT_FILE = "SPANLEDGER_TLS_CERT_FILE"
"""PEM certificate chain for both listeners. With :data:`SPANLEDGER_TLS_KEY_FILE` it turns TLS on."""

SPANLEDGER_TLS_KEY_FILE = "SPANLEDGER_TLS_KEY_FILE"
"""PEM private key matching :data:`SPANLEDGER_TLS_CERT_FILE`."""

SPANLEDGER_MAX_REQUEST_BYTES = "SPANLEDGER_MAX_REQUEST_BYTES"
"""Largest request body accepted as sent on the wire, compressed or not (default 8 MiB)."""

SPANLEDGER_MAX_DECOMPRESSED_BYTES = "SPANLEDGER_MAX_DECOMPRESSED_BYTES"
"""Largest request after decompression (default 64 MiB); a gzip bomb stops here, never inflated further."""

SPANLEDGER_MAX_SPANS_PER_REQUEST = "SPANLEDGER_MAX_SPANS_PER_REQUEST"
"""Most spans one export request may carry (default 20000); larger requests are refused whole."""

SPANLEDGER_MAX_ATTRIBUTE_LENGTH = "SPANLEDGER_MAX_ATTRIBUTE_LENGTH"
"""Longest string value spanledger reads from an attribute it uses (default 4096 characters). A billable span
whose customer, model or id attribute is longer is rejected (counted in ``partial_success``)."""

SPANLEDGER_MAX_PENDING_EVENTS = "SPANLEDGER_MAX_PENDING_EVENTS"
"""Most usage events waiting for a commit (default 100000). Beyond it requests are answered "retry later"
(gRPC ``RESOURCE_EXHAUSTED`` with ``RetryInfo``, HTTP 429 with ``Retry-After``)."""

SPANLEDGER_COMMIT_MAX_BATCH_EVENTS = "SPANLEDGER_COMMIT_MAX_BATCH_EVENTS"
"""Most events committed in one group-commit transaction (default 5000)."""

SPANLEDGER_COMMIT_MAX_WAIT_MS = "SPANLEDGER_COMMIT_MAX_WAIT_MS"
"""Longest a request waits for other requests to share its transaction (default 5 ms)."""

SPANLEDGER_RETRY_AFTER_SECONDS = "SPANLEDGER_RETRY_AFTER_SECONDS"
"""Delay advertised to clients in ``Retry-After`` / ``RetryInfo`` when storage is down or the queue full
(default 1; whole seconds on HTTP, fractions allowed on gRPC)."""

SPANLEDGER_SHUTDOWN_GRACE_SECONDS = "SPANLEDGER_SHUTDOWN_GRACE_SECONDS"
"""How long a graceful shutdown waits for in-flight requests and queued commits (default 10)."""

SPANLEDGER_CUSTOMER_ATTRIBUTES = "SPANLEDGER_CUSTOMER_ATTRIBUTES"
"""Comma-separated attribute keys tried, on the span then on the resource, when neither carries
``customer.id`` (e.g. ``enduser.id,tenant.id``). Default: none."""

SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES = "SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES"
"""Comma-separated instrumentation scope names whose ``input_tokens`` exclude cached tokens for
Anthropic-style providers (Anthropic's API convention), added to the built-in list;
see :mod:`spanledger.exporter.mapping`."""

SPANLEDGER_WORKERS = "SPANLEDGER_WORKERS"
"""Receiver processes sharing the listeners' ports (default 1; ``spanledger serve --workers``)."""
