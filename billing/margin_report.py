"""Margin reports over the ledger: revenue, upstream cost, gross margin and margin % per customer,
model, provider, day, week or month, and the customers whose margin is negative.

- **Revenue** comes from invoices (drafts, finalized and paid; never void) in the report currency
  whose billing month starts in the window. A usage line is attributed to the events it covers —
  the line's own recorded selection: meter, customer, window and ingestion sequence bounds — in
  proportion to their metered quantity: the line's ``(model, provider, day)`` groups
  (:mod:`spanledger.billing.line_weights`: stored when the invoice was finalized, computed from the
  rollups for drafts) are summed by the report's key and the amount is split over those keys with
  :func:`spanledger.billing.margins.allocate` (exact to the cent: the parts add up to the line; a tie
  for the last cent goes to the earlier key). Other lines (base fee, seats, credit packs, credits)
  belong to the customer and to the invoice's month; by model or provider they are grouped under
  ``(base fee)``, ``(credit packs)`` or ``(credits)``.
- **Upstream cost** is the stored cost of every event that occurred in the window (billed or not),
  so usage nobody pays for shows as a loss. Events with an unknown (NULL) cost are counted, never
  taken as 0. It is read from the daily and hourly rollups
  (:func:`spanledger.billing.rollups.queries.daily_costs`; the events of ragged edge hours and of
  costs in another currency only), so a report costs O(invoice lines + rollup cells), not O(events).

The arithmetic is the pure :mod:`spanledger.billing.margins`; this module only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.line_weights import USAGE_KINDS, LineSelection, WeightGroup, revenue_line_weights
from spanledger.billing.margins import MarginRow, TimeBucket, allocate, bucket_start, margin_rows
from spanledger.billing.models import Customer, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.pricing import normalize_currency
from spanledger.billing.rollups.queries import daily_costs

__all__ = ["MarginGrouping", "margin_report", "negative_margin_customers"]

_ZERO = Decimal(0)
_customers = Customer.__table__.c
_lines = InvoiceLineRecord.__table__.c
_invoices = InvoiceRecord.__table__.c
_NON_USAGE_KEYS = {"base_fee": "(base fee)", "seats": "(base fee)", "credit_pack": "(credit packs)"}


class MarginGrouping(StrEnum):
    CUSTOMER = "customer"
    MODEL = "model"
    PROVIDER = "provider"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _group_key(by: MarginGrouping, customer: str, model: str | None, provider: str | None, day: str) -> str:
    if by is MarginGrouping.CUSTOMER:
        return customer
    if by is MarginGrouping.MODEL:
        return model or "(unknown model)"
    if by is MarginGrouping.PROVIDER:
        return provider or "(unknown provider)"
    return bucket_start(datetime.fromisoformat(day).replace(tzinfo=UTC), TimeBucket(by.value)).isoformat()


def _line_key(by: MarginGrouping, customer: str, kind: str, period_start: datetime) -> str:
    if by is MarginGrouping.CUSTOMER:
        return customer
    if by in (MarginGrouping.MODEL, MarginGrouping.PROVIDER):
        return _NON_USAGE_KEYS.get(kind, f"({kind.replace('_', ' ')})")
    return bucket_start(period_start, TimeBucket(by.value)).isoformat()


def _cost_items(
    session: Session, by: MarginGrouping, currency: str, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, Decimal, Decimal, int]]:
    """Per rollup group: its cost in ``currency`` and unknown-cost events (a group whose events all
    have a cost in another currency contributes nothing, as those events never did)."""
    for (customer, model, provider, day), (cost, unknown, _count, priced) in daily_costs(
        session, currency, start, end
    ).items():
        if unknown or priced:
            yield _group_key(by, customer, model, provider, day), _ZERO, cost, unknown


def _revenue_items(
    session: Session, by: MarginGrouping, currency: str, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, Decimal, Decimal, int]]:
    statement = (
        select(
            _lines.id, _lines.kind, _lines.amount, _lines.meter_snapshot, _customers.external_id,
            _invoices.period_start, _invoices.status, _invoices.customer_id, _lines.window_start,
            _lines.window_end, _lines.after_sequence, _lines.max_sequence,
        )
        .select_from(
            InvoiceLineRecord.__table__.join(InvoiceRecord.__table__, _invoices.id == _lines.invoice_id)
            .join(Customer.__table__, _customers.id == _invoices.customer_id)
        )
        .where(_invoices.currency == currency, _invoices.status != "void", _lines.amount != 0)
        .order_by(_invoices.id, _lines.position)
    )  # fmt: skip
    if start is not None:
        statement = statement.where(_invoices.period_start >= start)
    if end is not None:
        statement = statement.where(_invoices.period_start < end)
    rows = session.execute(statement).all()
    weights: dict[int, list[WeightGroup]] = {}
    if by is not MarginGrouping.CUSTOMER:
        drafts, finalized = [], []
        for row in rows:
            if row.meter_snapshot and row.kind in USAGE_KINDS:
                if row.status == "draft":
                    drafts.append(LineSelection(
                        row.id, row.customer_id, row.meter_snapshot, row.window_start, row.window_end,
                        row.after_sequence, row.max_sequence,
                    ))  # fmt: skip
                else:
                    finalized.append(row.id)
        weights = revenue_line_weights(session, drafts, finalized)
    for row in rows:
        groups: dict[str, Decimal] = {}
        for group in weights.get(row.id, []):
            key = _group_key(by, row.external_id, group.model, group.provider, group.day)
            groups[key] = groups.get(key, _ZERO) + group.weight
        if not groups:
            yield _line_key(by, row.external_id, row.kind, row.period_start), row.amount, _ZERO, 0
            continue
        keys = sorted(groups)
        for key, part in zip(keys, allocate(row.amount, [groups[k] for k in keys], currency), strict=True):
            yield key, part, _ZERO, 0


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
