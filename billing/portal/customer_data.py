"""Everything one customer's portal page shows, read from the ledger (read-only, SQL aggregates).

No value here is ever an upstream cost or a margin: those are the admin's (:mod:`.admin_data`).
Usage comes from :func:`~spanledger.billing.meters.meter_usage` (which reads hourly rollups where
they exist) and ``GROUP BY day`` aggregates through the ``(customer_id, occurred_at)`` index; the
estimate is the draft :mod:`spanledger.billing.invoices.drafts` would write, computed without writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spanledger.billing.credits.service import balance_amount, plan_grant_written
from spanledger.billing.errors import NotFoundError
from spanledger.billing.invoices.drafts import (
    DraftLine,
    ingestion_head,
    late_lines,
    plan_segments,
    subscription_draft_lines,
)
from spanledger.billing.invoices.lifecycle import InvoiceStatus
from spanledger.billing.invoices.lines import LineKind, invoice_totals
from spanledger.billing.meters import MeterDefinition, list_meters, meter_usage, resolve_field, to_definition
from spanledger.billing.models import (
    CreditEntryRecord,
    CreditMeter,
    Customer,
    EventRecord,
    InvoiceLineRecord,
    InvoiceRecord,
    Meter,
    SubscriptionRecord,
    UsageRollup,
)
from spanledger.billing.plans import Interval
from spanledger.billing.portal.sql import EVENTS_WITH_CUSTOMER, day_of, dialect_name, select_meter_events
from spanledger.billing.rollups.queries import (
    answerable,
    combine_partials,
    compile_rollup_filter,
    rollup_aggregates,
    split_window,
)
from spanledger.billing.subscriptions import Period, billing_period_containing

__all__ = [
    "CreditAccountView",
    "CreditLedgerRow",
    "CustomerPortalView",
    "DailySeries",
    "EstimateView",
    "InvoiceView",
    "LineView",
    "MeterUsageView",
    "current_period",
    "customer_portal_view",
    "daily_usage",
    "estimate",
    "estimate_draft_lines",
]

_events = EventRecord.__table__.c
#: The most recent credit ledger entries shown (consumption is one entry per request).
LEDGER_ROWS = 25


@dataclass(frozen=True, slots=True)
class MeterUsageView:
    meter: str
    aggregation: str
    value: Decimal | None
    by_model: list[tuple[str, Decimal | None]]


@dataclass(frozen=True, slots=True)
class DailySeries:
    meter: str
    points: list[tuple[str, Decimal]]


@dataclass(frozen=True, slots=True)
class CreditLedgerRow:
    occurred_at: datetime
    kind: str
    amount: Decimal
    reason: str | None


@dataclass(frozen=True, slots=True)
class CreditAccountView:
    meter: str
    balance: Decimal
    unlimited: bool
    entry_count: int
    recent: list[CreditLedgerRow]


@dataclass(frozen=True, slots=True)
class LineView:
    """A customer-visible line: no upstream cost, no pricing internals. ``meter`` is set when the
    line covers events the drill-down can list."""

    position: int
    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal
    meter: str | None = None


@dataclass(frozen=True, slots=True)
class EstimateView:
    """The live preview of the current period's draft (what ``invoices run`` would write now)."""

    period: str
    currency: str
    lines: list[LineView]
    total: Decimal
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: int
    number: str | None
    period: str
    status: str
    currency: str
    total: Decimal
    finalized_at: datetime | None
    paid_at: datetime | None
    lines: list[LineView]


@dataclass(frozen=True, slots=True)
class CustomerPortalView:
    customer: str
    name: str | None
    currency: str
    period: Period
    plan: str | None
    usage: list[MeterUsageView]
    daily: list[DailySeries]
    credits: list[CreditAccountView]
    estimate: EstimateView | None
    estimate_note: str | None
    invoices: list[InvoiceView]


def _customer(session: Session, external_id: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None:
        raise NotFoundError(f"no customer {external_id!r}")
    return customer


def _subscription_at(session: Session, customer_id: int, now: datetime) -> SubscriptionRecord | None:
    candidates = session.scalars(
        select(SubscriptionRecord)
        .where(SubscriptionRecord.customer_id == customer_id, SubscriptionRecord.started_at <= now)
        .order_by(SubscriptionRecord.started_at.desc(), SubscriptionRecord.id.desc())
    )
    return next((s for s in candidates if s.ends_at is None or s.ends_at > now), None)


def current_period(
    session: Session, customer_id: int, now: datetime
) -> tuple[Period, SubscriptionRecord | None]:
    """The billing month containing ``now`` (the calendar month without a subscription)."""
    subscription = _subscription_at(session, customer_id, now)
    anchor = subscription.anchor if subscription is not None else datetime(2000, 1, 1, tzinfo=UTC)
    return billing_period_containing(anchor, Interval.MONTH, now), subscription


def _usage(session: Session, customer: Customer, meters: list[Meter], period: Period) -> list[MeterUsageView]:
    views = []
    for meter in meters:
        definition = to_definition(meter)
        window = {"start": period.start, "end": period.end, "customer": customer.external_id}
        [total] = meter_usage(session, definition, **window)
        by_model = [
            (row.group or "(unknown model)", row.value)
            for row in meter_usage(session, definition, **window, group_by="model")
        ]
        views.append(MeterUsageView(meter.name, meter.aggregation, total.value, by_model))
    return views


def _daily_from_events(
    session: Session, definition: MeterDefinition, customer_id: int, start: datetime, end: datetime
) -> dict[str, tuple[Any, ...]]:
    day = day_of(dialect_name(session)).label("day")
    field_ = resolve_field(definition.field) if definition.field else None
    statement = select(day, *definition.aggregation.sql_columns(field_)).select_from(EVENTS_WITH_CUSTOMER)
    statement = select_meter_events(statement, definition, customer_id=customer_id, start=start, end=end)
    return {row[0]: tuple(row[1:]) for row in session.execute(statement.group_by(day))}


def _daily_from_rollups(
    session: Session, definition: MeterDefinition, customer_id: int, start: datetime, end: datetime
) -> dict[str, tuple[Any, ...]]:
    rollups = UsageRollup.__table__.c
    day = day_of(dialect_name(session), rollups.hour).label("day")
    aggregates = rollup_aggregates(definition.aggregation, definition.field)
    joined = UsageRollup.__table__.join(Customer.__table__, Customer.__table__.c.id == rollups.customer_id)
    statement = (
        select(day, *aggregates)
        .select_from(joined)
        .where(
            rollups.customer_id == customer_id,
            rollups.event_name == definition.event_name,
            rollups.hour >= start,
            rollups.hour < end,
        )
        .group_by(day)
    )
    condition = compile_rollup_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    return {row[0]: tuple(row[1:]) for row in session.execute(statement)}


def daily_usage(
    session: Session, definition: MeterDefinition, customer_id: int, start: datetime, end: datetime
) -> list[tuple[str, Decimal]]:
    """The meter's value per UTC day (days without events are left out): ``GROUP BY day`` over the
    hourly rollups for the window's whole hours, over the events for its ragged edges (and for the
    meters rollups cannot answer exactly, such as ``unique``)."""
    whole, edges = split_window(start, end)
    if not answerable(definition) or whole is None:
        partials = _daily_from_events(session, definition, customer_id, start, end)
    else:
        partials = _daily_from_rollups(session, definition, customer_id, *whole)
        for edge_start, edge_end in edges:
            for day, values in _daily_from_events(
                session, definition, customer_id, edge_start, edge_end
            ).items():
                known = partials.get(day)
                partials[day] = (
                    values if known is None else combine_partials(definition.aggregation, known, values)
                )
    return [
        (day, definition.aggregation.finish(values) or Decimal(0)) for day, values in sorted(partials.items())
    ]


def _credits(session: Session, customer_id: int, now: datetime) -> list[CreditAccountView]:
    accounts = session.execute(
        select(Meter.id, Meter.name).join(CreditMeter, CreditMeter.meter_id == Meter.id).order_by(Meter.name)
    ).all()
    views = []
    for meter_id, meter_name in accounts:
        where = (CreditEntryRecord.customer_id == customer_id, CreditEntryRecord.meter_id == meter_id)
        count = session.scalar(select(func.count()).select_from(CreditEntryRecord).where(*where))
        if not count:
            continue
        total = balance_amount(session.connection(), customer_id, meter_id, now)
        recent = session.scalars(
            select(CreditEntryRecord)
            .where(*where)
            .order_by(CreditEntryRecord.occurred_at.desc(), CreditEntryRecord.id.desc())
            .limit(LEDGER_ROWS)
        ).all()
        unlimited = any(
            r.unlimited and r.occurred_at <= now and (r.expires_at is None or r.expires_at > now)
            for r in session.scalars(
                select(CreditEntryRecord).where(*where, CreditEntryRecord.unlimited.is_(True))
            )
        )
        rows = [CreditLedgerRow(r.occurred_at, r.kind, r.amount, r.reason) for r in recent]
        views.append(CreditAccountView(meter_name, total, unlimited, int(count), rows))
    return views


def estimate_draft_lines(
    session: Session, customer: Customer, subscription: SubscriptionRecord, period: Period
) -> tuple[str, list[DraftLine]]:
    """(currency, lines) of ``period``'s draft as ``invoices run`` would compute it now, not written."""
    head = ingestion_head(session)
    currency, drafts = subscription_draft_lines(session, subscription, period, head)
    return currency, drafts + late_lines(session, customer.id, period.label(), currency, head)


def estimate(
    session: Session, customer: Customer, subscription: SubscriptionRecord, period: Period
) -> EstimateView:
    """The live preview of ``period``'s draft, with a note where the run would still add credits."""
    label = period.label()
    currency, drafts = estimate_draft_lines(session, customer, subscription, period)
    totals = invoice_totals([d.line for d in drafts], currency)
    lines = [
        LineView(
            position, d.line.kind.value, d.line.description, d.line.quantity, d.line.unit_amount,
            d.line.amount, d.line.meter if d.line.kind is LineKind.USAGE else None,
        )
        for position, d in enumerate(drafts, start=1)
    ]  # fmt: skip
    notes = []
    segments = [s for s in plan_segments(session, subscription) if period.overlap_seconds(s.start, s.end) > 0]
    grants = segments[-1].plan.credit_grants if segments else ()
    for rule in grants:
        meter_id = session.scalar(select(Meter.id).where(Meter.name == rule.meter))
        if meter_id is not None and not plan_grant_written(
            session, customer.id, meter_id, label, segments[-1].plan.code
        ):
            notes.append(
                f"This month's {rule.credits.normalize():f} {rule.meter} plan credits are added when the "
                "invoice is prepared; until then this estimate does not count them."
            )
    return EstimateView(label, currency, lines, totals.total, notes)


def _line_view(line: InvoiceLineRecord) -> LineView:
    drillable = line.kind in ("usage", "late_usage") and line.meter_snapshot is not None
    meter = (line.meter_snapshot or {}).get("name") if drillable else None
    return LineView(
        line.position, line.kind, line.description, line.quantity, line.unit_amount, line.amount, meter
    )


def _invoices(session: Session, customer_id: int) -> list[InvoiceView]:
    invoices = session.scalars(
        select(InvoiceRecord)
        .where(InvoiceRecord.customer_id == customer_id, InvoiceRecord.status != InvoiceStatus.DRAFT)
        .order_by(InvoiceRecord.period.desc())
    ).all()
    lines: dict[int, list[LineView]] = {invoice.id: [] for invoice in invoices}
    if invoices:
        for line in session.scalars(
            select(InvoiceLineRecord)
            .where(InvoiceLineRecord.invoice_id.in_(list(lines)))
            .order_by(InvoiceLineRecord.invoice_id, InvoiceLineRecord.position)
        ):
            lines[line.invoice_id].append(_line_view(line))
    return [
        InvoiceView(
            i.id, i.number, i.period, i.status, i.currency, i.total, i.finalized_at, i.paid_at, lines[i.id]
        )
        for i in invoices
    ]


def customer_portal_view(session: Session, external_id: str, now: datetime) -> CustomerPortalView:
    """The customer's page data at ``now``."""
    customer = _customer(session, external_id)
    period, subscription = current_period(session, customer.id, now)
    meters = list_meters(session)
    usage = _usage(session, customer, meters, period)
    used = {view.meter for view in usage if view.value}
    daily = [
        DailySeries(m.name, daily_usage(session, to_definition(m), customer.id, period.start, period.end))
        for m in meters
        if m.name in used
    ]
    plan = None
    preview: EstimateView | None = None
    note: str | None = None
    if subscription is None:
        note = "No active subscription: nothing is being billed this month."
    else:
        segments = [
            s for s in plan_segments(session, subscription) if period.overlap_seconds(s.start, s.end) > 0
        ]
        plan = segments[-1].plan.name if segments else None
        existing = session.scalar(
            select(InvoiceRecord).where(
                InvoiceRecord.customer_id == customer.id, InvoiceRecord.period == period.label()
            )
        )
        if existing is not None and existing.status != InvoiceStatus.DRAFT:
            note = f"The invoice for {period.label()} is {existing.status}; see past invoices below."
        else:
            try:
                preview = estimate(session, customer, subscription, period)
            except LookupError as exc:
                note = f"No estimate for {period.label()}: {exc}."
    return CustomerPortalView(
        customer.external_id, customer.name, customer.currency, period, plan, usage, daily,
        _credits(session, customer.id, now), preview, note, _invoices(session, customer.id),
    )  # fmt: skip
