"""Closed periods: the earliest moment a change to what a customer is billed may take effect.

An invoice that is no longer a draft (finalized, paid or void) never changes, and ``invoices run``
never rewrites it. A change that takes effect inside the billing such an invoice covers — a plan
change or cancellation (its prorated base fee, the plan that prices the month's usage, the seat
count), a backdated subscription, a backdated pack purchase or grant — would change what that
invoice should have billed, and the difference would silently never be billed. Such changes are
refused with :class:`~spanledger.billing.errors.FinalizedPeriodError`, which names the invoice and
the earliest moment that is allowed: the end of the last closed billing window.

The window an invoice closes is the stored ``[period_start, period_end)`` (every subscription it
billed) and, for a subscription anchored at ``anchor``, that subscription's billing month starting
in the invoice's month (the run bills exactly that month on that invoice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.errors import FinalizedPeriodError
from spanledger.billing.models import InvoiceRecord
from spanledger.billing.subscriptions.periods import billing_month_starting_in, parse_period

__all__ = ["ClosedPeriod", "check_open", "closed_until", "format_moment"]

# The draft status of spanledger.billing.invoices.lifecycle (importing it here would be circular:
# the invoices package builds on subscriptions). Anything else is closed for good.
_DRAFT = "draft"
#: A first-of-month anchor: its billing month starting in a month is that calendar month.
_CALENDAR_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    """The closed invoice whose billing ends last, and where that billing ends."""

    invoice: str
    status: str
    period: str
    end: datetime


def closed_until(session: Session, customer_id: int, anchor: datetime | None = None) -> ClosedPeriod | None:
    """The customer's latest closed billing window (``None``: nothing closed yet).

    ``anchor``: also count the billing month a subscription with this anchor has on each closed
    invoice; ``None`` counts calendar months (a new subscription anchored at its own start).
    """
    rows = session.execute(
        select(InvoiceRecord.id, InvoiceRecord.number, InvoiceRecord.status, InvoiceRecord.period,
               InvoiceRecord.period_end)
        .where(InvoiceRecord.customer_id == customer_id, InvoiceRecord.status != _DRAFT)
    ).all()  # fmt: skip
    latest: ClosedPeriod | None = None
    for invoice_id, number, status, period, period_end in rows:
        year, month = parse_period(period)
        month_end = billing_month_starting_in(anchor or _CALENDAR_ANCHOR, year, month).end
        end = max(period_end, month_end)
        if latest is None or end > latest.end:
            latest = ClosedPeriod(number or f"#{invoice_id}", status, period, end)
    return latest


def format_moment(moment: datetime) -> str:
    """``2026-12-01`` for midnight UTC (what the CLI accepts back), else ISO 8601 with ``Z``."""
    moment = moment.astimezone(UTC)
    if moment.hour == moment.minute == moment.second == moment.microsecond == 0:
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def check_open(
    session: Session, customer_id: int, moment: datetime, what: str, *, anchor: datetime | None = None
) -> None:
    """Raise :class:`FinalizedPeriodError` if ``what`` (taking effect at ``moment``) falls inside a
    closed billing window of the customer (see :func:`closed_until` for ``anchor``)."""
    closed = closed_until(session, customer_id, anchor)
    if closed is None or moment >= closed.end:
        return
    raise FinalizedPeriodError(
        f"{what} at {format_moment(moment)} would change what invoice {closed.invoice} "
        f"({closed.period}, {closed.status}) billed; "
        f"the earliest allowed date is {format_moment(closed.end)}",
        invoice=closed.invoice,
        earliest=closed.end,
    )
