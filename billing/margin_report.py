"""Margin reports over the ledger: revenue, upstream cost, gross margin and margin % per customer,
model, provider, day, week or month, and the customers whose margin is negative.

- **Revenue** comes from invoices (drafts, finalized and paid; never void) in the report currency
  whose billing month starts in the window. A usage line is attributed to the events it covers —
  the line's own recorded selection: meter, customer, window and ingestion sequence bounds — in
  proportion to each event's metered quantity, with :func:`spanledger.billing.margins.allocate`
  (exact to the cent: the parts add up to the line). Other lines (base fee, seats, credit packs,
  credits) belong to the customer and to the invoice's month; by model or provider they are
  grouped under ``(base fee)``, ``(credit packs)`` or ``(credits)``.
- **Upstream cost** is the stored cost of every event that occurred in the window (billed or not),
  so usage nobody pays for shows as a loss. Events with an unknown (NULL) cost are counted, never
  taken as 0.

The arithmetic is the pure :mod:`spanledger.billing.margins`; this module only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.invoices.selection import event_value_column
from spanledger.billing.margins import MarginRow, TimeBucket, allocate, bucket_start, margin_rows
from spanledger.billing.meters import MeterDefinition, compile_filter
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.models import Customer, EventRecord, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.pricing import normalize_currency

__all__ = ["MarginGrouping", "margin_report", "negative_margin_customers"]

_ZERO = Decimal(0)
_events = EventRecord.__table__.c
_customers = Customer.__table__.c
_NON_USAGE_KEYS = {"base_fee": "(base fee)", "seats": "(base fee)", "credit_pack": "(credit packs)"}


class MarginGrouping(StrEnum):
    CUSTOMER = "customer"
    MODEL = "model"
    PROVIDER = "provider"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _event_key(
    by: MarginGrouping, customer: str, model: str | None, provider: str | None, at: datetime
) -> str:
    if by is MarginGrouping.CUSTOMER:
        return customer
    if by is MarginGrouping.MODEL:
        return model or "(unknown model)"
    if by is MarginGrouping.PROVIDER:
        return provider or "(unknown provider)"
    return bucket_start(at, TimeBucket(by.value)).isoformat()


def _line_key(by: MarginGrouping, customer: str, kind: str, period_start: datetime) -> str:
    if by is MarginGrouping.CUSTOMER:
        return customer
    if by in (MarginGrouping.MODEL, MarginGrouping.PROVIDER):
        return _NON_USAGE_KEYS.get(kind, f"({kind.replace('_', ' ')})")
    return bucket_start(period_start, TimeBucket(by.value)).isoformat()


def _cost_items(
    session: Session, by: MarginGrouping, currency: str, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, Decimal, Decimal, int]]:
    statement = select(
        _customers.external_id,
        _events.response_model,
        _events.request_model,
        _events.provider,
        _events.occurred_at,
        _events.upstream_cost,
        _events.upstream_cost_currency,
    ).select_from(EventRecord.__table__.join(Customer.__table__, _customers.id == _events.customer_id))
    if start is not None:
        statement = statement.where(_events.occurred_at >= start)
    if end is not None:
        statement = statement.where(_events.occurred_at < end)
    for customer, response_model, request_model, provider, at, cost, cost_currency in session.execute(
        statement.execution_options(yield_per=5000)
    ):
        key = _event_key(by, customer, response_model or request_model, provider, at)
        if cost is None:
            yield key, _ZERO, _ZERO, 1
        elif cost_currency in (None, currency):
            yield key, _ZERO, cost, 0


def _line_events(session: Session, invoice: InvoiceRecord, line: InvoiceLineRecord) -> list[Any]:
    """The events a usage line covers (its recorded selection), with each one's metered quantity."""
    snapshot = dict(line.meter_snapshot or {})
    definition = MeterDefinition.parse(
        snapshot.get("name", "meter"),
        snapshot["aggregation"],
        snapshot.get("field"),
        event_name=snapshot.get("event_name"),
        filter=snapshot.get("filter"),
    )
    counted = definition.aggregation is Aggregation.COUNT
    value = None if counted else event_value_column(definition)
    columns = [_events.response_model, _events.request_model, _events.provider, _events.occurred_at]
    statement = select(*columns, *([] if value is None else [value])).where(
        _events.customer_id == invoice.customer_id, _events.event_name == definition.event_name
    )
    if line.window_start is not None:
        statement = statement.where(_events.occurred_at >= line.window_start)
    if line.window_end is not None:
        statement = statement.where(_events.occurred_at < line.window_end)
    if line.after_sequence is not None:
        statement = statement.where(_events.sequence > line.after_sequence)
    if line.max_sequence is not None:
        statement = statement.where(_events.sequence <= line.max_sequence)
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    rows = []
    for row in session.execute(statement.order_by(_events.sequence)):
        weight = Decimal(1) if counted else Decimal(row[4] or 0)
        rows.append((row[0] or row[1], row[2], row[3], weight))
    return rows


def _revenue_items(
    session: Session, by: MarginGrouping, currency: str, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, Decimal, Decimal, int]]:
    statement = (
        select(InvoiceRecord, _customers.external_id)
        .join(Customer.__table__, _customers.id == InvoiceRecord.customer_id)
        .where(InvoiceRecord.currency == currency, InvoiceRecord.status != "void")
        .order_by(InvoiceRecord.id)
    )
    if start is not None:
        statement = statement.where(InvoiceRecord.period_start >= start)
    if end is not None:
        statement = statement.where(InvoiceRecord.period_start < end)
    for invoice, customer in session.execute(statement).all():
        lines = session.scalars(
            select(InvoiceLineRecord)
            .where(InvoiceLineRecord.invoice_id == invoice.id)
            .order_by(InvoiceLineRecord.position)
        )
        for line in lines:
            if line.amount == 0:
                continue
            events = _line_events(session, invoice, line) if line.meter_snapshot else []
            if by is MarginGrouping.CUSTOMER or not events:
                yield _line_key(by, customer, line.kind, invoice.period_start), line.amount, _ZERO, 0
                continue
            parts = allocate(line.amount, [weight for *_, weight in events], currency)
            for (model, provider, at, _weight), part in zip(events, parts, strict=True):
                yield _event_key(by, customer, model, provider, at), part, _ZERO, 0


def margin_report(
    session: Session,
    by: MarginGrouping | str = MarginGrouping.CUSTOMER,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    currency: str = "USD",
) -> list[MarginRow]:
    """Revenue, upstream cost and margin grouped ``by``, over ``[start, end)`` (both optional)."""
    try:
        grouping = MarginGrouping(by)
    except ValueError:
        choices = ", ".join(g.value for g in MarginGrouping)
        raise ConfigurationError(f"cannot group margins by {by!r}; choose one of {choices}") from None
    currency = normalize_currency(currency)
    with storage_errors():
        items = [
            *_revenue_items(session, grouping, currency, start, end),
            *_cost_items(session, grouping, currency, start, end),
        ]
    return margin_rows(items)


def negative_margin_customers(
    session: Session, *, start: datetime | None = None, end: datetime | None = None, currency: str = "USD"
) -> list[MarginRow]:
    """The customers whose upstream cost exceeds their revenue, worst first."""
    rows = margin_report(session, MarginGrouping.CUSTOMER, start=start, end=end, currency=currency)
    return sorted((row for row in rows if row.negative), key=lambda row: (row.gross_margin, row.key))
