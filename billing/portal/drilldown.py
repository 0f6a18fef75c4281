"""The per-request drill-down of one usage line: its events, a page at a time, each with its charge.

The events are the line's recorded selection — the same set ``invoices explain`` replays — and each
event's charge is the line's amount split over them with
:func:`~spanledger.billing.margins.allocate` in proportion to what the event metered (as the margin
report splits revenue): every charge is a whole number of cents and they add up to the line exactly.
Only ``(sequence, weight)`` pairs of the whole line are read; full rows are read for one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spanledger.billing.errors import NotFoundError
from spanledger.billing.invoices.lifecycle import InvoiceStatus
from spanledger.billing.margins import allocate
from spanledger.billing.meters import MeterDefinition
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.models import Customer, EventRecord, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.portal.customer_data import current_period, estimate_draft_lines
from spanledger.billing.portal.sql import EVENTS_WITH_CUSTOMER, event_weight, model_of, select_meter_events
from spanledger.billing.pricing import currency_exponent

__all__ = [
    "CURRENT",
    "PAGE_SIZE",
    "LineSelection",
    "RequestRow",
    "RequestsPage",
    "equal_shares",
    "line_selection",
    "requests_page",
]

#: Requests per drill-down page.
PAGE_SIZE = 50
#: The invoice reference of the current period's live estimate.
CURRENT = "current"

_events = EventRecord.__table__.c
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class LineSelection:
    """A usage line's description, amount and recorded event selection."""

    invoice_label: str
    description: str
    currency: str
    amount: Decimal
    customer_id: int
    definition: MeterDefinition
    start: datetime
    end: datetime
    after_sequence: int | None
    max_sequence: int | None


@dataclass(frozen=True, slots=True)
class RequestRow:
    sequence: int
    occurred_at: datetime
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_input_tokens: int | None
    quantity: Decimal
    charge: Decimal


@dataclass(frozen=True, slots=True)
class RequestsPage:
    selection: LineSelection
    total_requests: int
    page: int
    pages: int
    rows: list[RequestRow]


def _definition(snapshot: dict[str, Any]) -> MeterDefinition:
    return MeterDefinition.parse(
        snapshot["name"], snapshot["aggregation"], snapshot.get("field"),
        event_name=snapshot.get("event_name"), filter=snapshot.get("filter"),
    )  # fmt: skip


def _stored_line(session: Session, customer: Customer, invoice_id: int, position: int) -> LineSelection:
    invoice = session.get(InvoiceRecord, invoice_id)
    # Another customer's invoice looks exactly like one that does not exist.
    if invoice is None or invoice.customer_id != customer.id or invoice.status == InvoiceStatus.DRAFT:
        raise NotFoundError("no such invoice line")
    line = session.scalar(
        select(InvoiceLineRecord).where(
            InvoiceLineRecord.invoice_id == invoice.id, InvoiceLineRecord.position == position
        )
    )
    if line is None or line.meter_snapshot is None or line.window_start is None or line.window_end is None:
        raise NotFoundError("no such invoice line")
    return LineSelection(
        invoice.number or invoice.period, line.description, invoice.currency, line.amount, customer.id,
        _definition(line.meter_snapshot), line.window_start, line.window_end, line.after_sequence,
        line.max_sequence,
    )  # fmt: skip


def _estimate_line(session: Session, customer: Customer, position: int, now: datetime) -> LineSelection:
    period, subscription = current_period(session, customer.id, now)
    if subscription is None:
        raise NotFoundError("no such invoice line")
    currency, drafts = estimate_draft_lines(session, customer, subscription, period)
    if not 1 <= position <= len(drafts):
        raise NotFoundError("no such invoice line")
    draft = drafts[position - 1]
    if draft.meter_snapshot is None or draft.window_start is None or draft.window_end is None:
        raise NotFoundError("no such invoice line")
    return LineSelection(
        f"estimate {period.label()}", draft.line.description, currency, draft.line.amount, customer.id,
        _definition(draft.meter_snapshot), draft.window_start, draft.window_end, draft.after_sequence,
        draft.max_sequence,
    )  # fmt: skip


def line_selection(
    session: Session, customer_external_id: str, invoice: str, position: int, now: datetime
) -> LineSelection:
    """The selection of line ``position`` of ``invoice`` (an id, or ``current`` for the estimate)."""
    customer = session.scalar(select(Customer).where(Customer.external_id == customer_external_id))
    if customer is None:
        raise NotFoundError("no such invoice line")
    if invoice == CURRENT:
        return _estimate_line(session, customer, position, now)
    if not invoice.isdigit():
        raise NotFoundError("no such invoice line")
    return _stored_line(session, customer, int(invoice), position)


def requests_page(
    session: Session, selection: LineSelection, page: int, page_size: int = PAGE_SIZE
) -> RequestsPage:
    """Page ``page`` (from 1) of the line's requests in ingestion order, each with its charge."""
    bounds = {
        "customer_id": selection.customer_id, "start": selection.start, "end": selection.end,
        "after_sequence": selection.after_sequence, "max_sequence": selection.max_sequence,
    }  # fmt: skip
    if selection.definition.aggregation is Aggregation.COUNT:
        # Every request weighs 1: the allocation is arithmetic, no need to read every event.
        total = int(
            session.scalar(
                select_meter_events(
                    select(func.count()).select_from(EVENTS_WITH_CUSTOMER), selection.definition, **bounds
                )
            )
            or 0
        )
        pages = max(1, -(-total // page_size))
        page = min(max(1, page), pages)
        first = (page - 1) * page_size
        wanted = list(
            session.scalars(
                select_meter_events(
                    select(_events.sequence).select_from(EVENTS_WITH_CUSTOMER), selection.definition, **bounds
                )
                .order_by(_events.sequence)
                .offset(first)
                .limit(page_size)
            )
        )
        shares = equal_shares(selection.amount, total, selection.currency, first, first + len(wanted))
        weighted = {s: (Decimal(1), c) for s, c in zip(wanted, shares, strict=True)}
    else:
        weights = session.execute(
            select_meter_events(
                select(_events.sequence, event_weight(selection.definition)).select_from(
                    EVENTS_WITH_CUSTOMER
                ),
                selection.definition,
                **bounds,
            ).order_by(_events.sequence)
        ).all()
        sequences = [row[0] for row in weights]
        quantities = [Decimal(row[1] or 0) for row in weights]
        charges = allocate(selection.amount, quantities, selection.currency)
        total = len(sequences)
        pages = max(1, -(-total // page_size))
        page = min(max(1, page), pages)
        first = (page - 1) * page_size
        wanted = sequences[first : first + page_size]
        weighted = {s: (quantities[i], charges[i]) for i, s in enumerate(wanted, start=first)}
    rows: list[RequestRow] = []
    if wanted:
        found = {
            row.sequence: row
            for row in session.execute(
                select(
                    _events.sequence, _events.occurred_at, model_of().label("model"), _events.input_tokens,
                    _events.output_tokens, _events.cache_read_input_tokens,
                ).where(_events.sequence.in_(wanted))
            )
        }  # fmt: skip
        for sequence in wanted:
            row = found[sequence]
            quantity, charge = weighted[sequence]
            rows.append(
                RequestRow(
                    sequence, row.occurred_at, row.model, row.input_tokens, row.output_tokens,
                    row.cache_read_input_tokens, quantity, charge,
                )
            )  # fmt: skip
    return RequestsPage(selection, total, page, pages, rows)


def equal_shares(amount: Decimal, count: int, currency: str, start: int, stop: int) -> list[Decimal]:
    """Shares ``start`` to ``stop`` of :func:`~spanledger.billing.margins.allocate` splitting
    ``amount`` over ``count`` equal weights, without building all ``count`` of them: everyone gets the
    floor, and the leftover minor units go to the first requests (allocate's tie order)."""
    if count <= 0:
        return []
    quantum = Decimal(1).scaleb(-currency_exponent(currency))
    floor = (amount / count).quantize(quantum, rounding=ROUND_FLOOR)
    left = int(((amount - floor * count) / quantum).to_integral_value())
    return [floor + quantum if index < left else floor for index in range(start, stop)]
