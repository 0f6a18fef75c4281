"""The one exception hierarchy of spanledger.

Every error a user can cause or fix derives from :class:`SpanledgerError`, and its message is a
sentence that says what to do. Foreign errors (SQLAlchemy, psycopg, YAML, Stripe) are translated at
the boundary with ``raise ... from exc`` so callers never need to import those libraries::

    SpanledgerError
    ├── ConfigurationError        bad database URL, bad setting
    │   ├── pricing.InvalidPriceError   a price that cannot be computed (tiers, places …)
    │   └── catalog.CatalogError        a catalog file error, with its YAML path
    ├── InvalidEventError         a usage event breaks the contract (carries ``reason``)
    ├── InvalidMeterError         a meter filter or aggregation that cannot be computed
    ├── NotFoundError             unknown customer, meter, invoice …
    ├── ConflictError             the thing already exists / the state forbids the change
    │   ├── ImmutableInvoiceError a finalized invoice cannot change
    │   └── FinalizedPeriodError  a change would alter what a finalized invoice billed
    ├── StorageUnavailableError   the database cannot be reached; retry later
    └── stripe.StripeSyncError    Stripe refused or could not be reached (carries ``kind``)

The instrumentation never raises into the app and depends on the OpenTelemetry API only, so it has
no exceptions of its own here; the exporter's receivers turn these errors into OTLP status codes.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "FinalizedPeriodError",
    "ImmutableInvoiceError",
    "InvalidEventError",
    "InvalidMeterError",
    "NotFoundError",
    "SpanledgerError",
    "StorageUnavailableError",
]


class SpanledgerError(Exception):
    """Base class of every error spanledger raises on purpose."""


class ConfigurationError(SpanledgerError, ValueError):
    """A setting (argument or environment variable) has a value spanledger cannot use."""


class InvalidEventError(SpanledgerError, ValueError):
    """A usage event breaks the contract; ``reason`` says how, in one sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidMeterError(SpanledgerError, ValueError):
    """A meter definition (filter, aggregation, field) cannot be computed."""


class NotFoundError(SpanledgerError, LookupError):
    """The named object does not exist."""


class ConflictError(SpanledgerError):
    """The object already exists, or its state forbids the change."""


class ImmutableInvoiceError(ConflictError):
    """A finalized invoice never changes; corrections are new documents."""


class FinalizedPeriodError(ConflictError):
    """A change would take effect inside the billing of an invoice that is no longer a draft.

    ``invoice`` names that invoice (its number, or ``#id`` for a voided draft) and ``earliest`` is
    the first moment a change may take effect; the message says both.
    """

    def __init__(self, message: str, *, invoice: str, earliest: datetime) -> None:
        super().__init__(message)
        self.invoice = invoice
        self.earliest = earliest


class StorageUnavailableError(SpanledgerError):
    """The database could not be reached or is locked; the operation may be retried."""
