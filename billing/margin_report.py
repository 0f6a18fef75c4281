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

from sqlalchemy.orm import Session

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.line_weights import revenue_lines
from spanledger.billing.margins import MarginRow, TimeBucket, allocate, bucket_start, margin_rows
from spanledger.billing.pricing import normalize_currency
from spanledger.billing.rollups.queries import daily_costs

__all__ = ["MarginGrouping", "margin_report", "negative_margin_customers"]

_ZERO = Decimal(0)
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
    for line in revenue_lines(session, currency, start, end, groups=by is not MarginGrouping.CUSTOMER):
        groups: dict[str, Decimal] = {}
        for group in line.groups:
            key = _group_key(by, line.customer, group.model, group.provider, group.day)
            groups[key] = groups.get(key, _ZERO) + group.weight
        if not groups:
            yield _line_key(by, line.customer, line.kind, line.period_start), line.amount, _ZERO, 0
            continue
        keys = sorted(groups)
        for key, part in zip(keys, allocate(line.amount, [groups[k] for k in keys], currency), strict=True):
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
