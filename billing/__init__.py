"""spanledger.billing: the usage-event ledger, meters, prices, credits, invoices and the CLI.

The public API of the billing side, in one place. Names load on first use (PEP 562), so
``import spanledger.billing`` stays cheap and the CLI imports only what a command needs. Each
concept has its own subpackage with a fuller API (``spanledger.billing.pricing``, ``.meters``,
``.credits``, ``.invoices``, ``.stripe`` …)::

    from spanledger.billing import UsageEvent, create_engine_from_url, ingest, make_session_factory

    engine = create_engine_from_url()          # SPANLEDGER_DATABASE_URL, default sqlite:///spanledger.db
    with make_session_factory(engine)() as session, session.begin():
        result = ingest(session, [UsageEvent(dedupe_key="call-1", occurred_at=now, ...)])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_EVENT_NAME",
    "UNATTRIBUTED_CUSTOMER",
    "ConfigurationError",
    "ConflictError",
    "ImmutableInvoiceError",
    "IngestResult",
    "InvalidEventError",
    "InvalidMeterError",
    "MeterDefinition",
    "NotFoundError",
    "Price",
    "RejectedEvent",
    "SpanledgerError",
    "StorageUnavailableError",
    "UsageEvent",
    "UsageRow",
    "create_engine_from_url",
    "finalize",
    "ingest",
    "make_session_factory",
    "meter_usage",
    "price_usage",
    "round_line_amount",
    "run_invoices",
    "upgrade",
]

_SOURCES: dict[str, str] = {
    "DEFAULT_EVENT_NAME": "usage_event",
    "UNATTRIBUTED_CUSTOMER": "usage_event",
    "UsageEvent": "usage_event",
    "ConfigurationError": "errors",
    "ConflictError": "errors",
    "ImmutableInvoiceError": "errors",
    "InvalidEventError": "errors",
    "InvalidMeterError": "errors",
    "NotFoundError": "errors",
    "SpanledgerError": "errors",
    "StorageUnavailableError": "errors",
    "IngestResult": "ingest",
    "RejectedEvent": "ingest",
    "ingest": "ingest",
    "create_engine_from_url": "db",
    "make_session_factory": "db",
    "upgrade": "migrate",
    "MeterDefinition": "meters",
    "UsageRow": "meters",
    "meter_usage": "meters",
    "Price": "pricing",
    "price_usage": "pricing",
    "round_line_amount": "pricing",
    "finalize": "invoices",
    "run_invoices": "invoices",
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'spanledger.billing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"spanledger.billing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from spanledger.billing.db import create_engine_from_url, make_session_factory
    from spanledger.billing.errors import (
        ConfigurationError,
        ConflictError,
        ImmutableInvoiceError,
        InvalidEventError,
        InvalidMeterError,
        NotFoundError,
        SpanledgerError,
        StorageUnavailableError,
    )
    from spanledger.billing.ingest import IngestResult, RejectedEvent, ingest
    from spanledger.billing.invoices import finalize, run_invoices
    from spanledger.billing.meters import MeterDefinition, UsageRow, meter_usage
    from spanledger.billing.migrate import upgrade
    from spanledger.billing.pricing import Price, price_usage, round_line_amount
    from spanledger.billing.usage_event import DEFAULT_EVENT_NAME, UNATTRIBUTED_CUSTOMER, UsageEvent
