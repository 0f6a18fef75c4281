"""Compute one customer's draft for one billing month from the database (read-only).

Everything here reads; :mod:`spanledger.billing.invoices.service` writes. The numbers come from the
pure cores (:mod:`.lines`, :mod:`spanledger.billing.pricing`, proration); this module only selects the
inputs and records, for every usage line, the selection it priced: meter, customer, window and the
ingestion sequence range ``(after, max]`` (:mod:`.selection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spanledger.billing.catalog import plan_from_json, price_from_json, price_to_json
from spanledger.billing.credits.packs import sold_pack_name
from spanledger.billing.invoices.coverage import CreditCoverage, covered_units, credit_coverage
from spanledger.billing.invoices.lifecycle import InvoiceStatus
from spanledger.billing.invoices.lines import (
    InvoiceLine,
    LateUsageInput,
    LineKind,
    UsageInput,
    base_fee_line,
    credits_line,
    late_usage_line,
    pack_line,
    usage_line,
)
from spanledger.billing.invoices.selection import meter_totals
from spanledger.billing.meters import to_definition
from spanledger.billing.models import (
    CreditEntryRecord,
    CreditMeter,
    CreditPackRecord,
    EventRecord,
    InvoiceLineRecord,
    InvoiceRecord,
    Meter,
    PlanRecord,
    SubscriptionPhase,
    SubscriptionRecord,
)
from spanledger.billing.plans import Plan
from spanledger.billing.subscriptions import Period, PlanSegment, base_fee_charges

__all__ = [
    "DraftLine",
    "ingestion_head",
    "late_lines",
    "late_settlements",
    "subscription_draft_lines",
    "usage_credit_coverage",
    "usage_window",
]

_ZERO = Decimal(0)
_events = EventRecord.__table__.c


@dataclass(frozen=True, slots=True)
class DraftLine:
    """A computed line plus the audit trail to store next to it."""

    line: InvoiceLine
    meter_id: int | None = None
    meter_snapshot: dict[str, Any] | None = None
    price_snapshot: dict[str, Any] | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    after_sequence: int | None = None
    max_sequence: int | None = None
    extra_details: dict[str, Any] = field(default_factory=dict)


def ingestion_head(session: Session) -> int:
    """The highest committed ingestion sequence (sequences grow in commit order; 0 when empty)."""
    return int(session.scalar(select(func.max(_events.sequence))) or 0)


def plan_segments(session: Session, subscription: SubscriptionRecord) -> list[PlanSegment]:
    """The subscription's plan history as pure segments, clipped to the subscription's own dates."""
    rows = session.execute(
        select(SubscriptionPhase, PlanRecord)
        .join(PlanRecord, PlanRecord.id == SubscriptionPhase.plan_id)
        .where(SubscriptionPhase.subscription_id == subscription.id)
        .order_by(SubscriptionPhase.start)
    ).all()
    segments = []
    for phase, plan in rows:
        start = max(phase.start, subscription.started_at)
        ends = [moment for moment in (phase.end, subscription.ends_at) if moment is not None]
        end = min(ends) if ends else None
        if end is not None and end <= start:
            continue
        segments.append(PlanSegment(plan_from_json(plan.definition), start, end, subscription.seats))
    return segments


def usage_credit_coverage(
    session: Session, customer_id: int, meter_id: int, sequences: set[int]
) -> tuple[Decimal, Decimal]:
    """(credits consumed, credits that grants covered) by the events ``sequences`` on a credit meter
    (the ledger replayed in the order things occurred; see :mod:`.coverage`)."""
    coverage = credit_coverage(session, customer_id, meter_id, sequences)
    return coverage.consumed, coverage.covered


def _window_sequences(
    session: Session, customer_id: int, start: datetime, end: datetime, after: int | None, head: int
) -> set[int]:
    statement = select(_events.sequence).where(
        _events.customer_id == customer_id,
        _events.occurred_at >= start,
        _events.occurred_at < end,
        _events.sequence <= head,
    )
    if after is not None:
        statement = statement.where(_events.sequence > after)
    return set(session.scalars(statement))


#: Per credited meter id: overage settlements (moment, units) the draft will write when finalized.
Settlements = dict[int, list[tuple[datetime, Decimal]]]


def late_settlements(lines: list[DraftLine]) -> Settlements:
    """The overage settlements of the late lines among ``lines``: the units credits did not cover,
    settled at the end of the month they belong to (see :func:`.coverage.credit_coverage`)."""
    result: Settlements = {}
    for draft in lines:
        line = draft.line
        if line.kind is not LineKind.LATE_USAGE or draft.meter_id is None or draft.window_end is None:
            continue
        uncovered = line.quantity - Decimal(line.details.get("credit_covered_units", "0"))
        if uncovered > 0:
            result.setdefault(draft.meter_id, []).append((draft.window_end, uncovered))
    return result


def _usage_lines(
    session: Session, customer_id: int, plan: Plan, period: Period, head: int, settlements: Settlements
) -> list[DraftLine]:
    lines: list[DraftLine] = []
    for plan_price in plan.prices:
        meter = session.scalar(select(Meter).where(Meter.name == plan_price.meter))
        if meter is None:
            raise LookupError(f"plan {plan.code} prices meter {plan_price.meter!r}, which does not exist")
        definition = to_definition(meter)
        totals = meter_totals(
            session,
            definition,
            customer_id=customer_id,
            start=period.start,
            end=period.end,
            max_sequence=head,
        )
        credit_meter = session.scalar(select(CreditMeter).where(CreditMeter.meter_id == meter.id))
        coverage, units = CreditCoverage(), _ZERO
        if credit_meter is not None and totals.event_count:
            sequences = _window_sequences(session, customer_id, period.start, period.end, None, head)
            settled = [
                (moment, units / credit_meter.units_per_credit)
                for moment, units in settlements.get(meter.id, [])
            ]
            coverage = credit_coverage(session, customer_id, meter.id, sequences, settled)
            units = covered_units(totals.value, coverage, credit_meter.units_per_credit)
        covered_credits = coverage.covered
        usage = UsageInput(
            plan_price.meter,
            plan_price.price,
            totals.value,
            upstream_cost=totals.upstream_cost if totals.event_count else None,
            unknown_cost_events=totals.unknown_cost_events,
            credit_covered_units=units,
            credit_covered_cost=coverage.covered_cost if credit_meter is not None else None,
        )
        audit = {
            "meter_id": meter.id,
            "meter_snapshot": definition.to_json(),
            "price_snapshot": price_to_json(plan_price.price),
            "window_start": period.start,
            "window_end": period.end,
            "max_sequence": head,
        }
        extra = {"event_count": totals.event_count, "highest_sequence_included": totals.max_sequence}
        lines.append(DraftLine(usage_line(usage), **audit, extra_details=extra))
        if covered_credits > 0:
            line = credits_line(plan_price.meter, covered_credits, units, plan.currency)
            lines.append(DraftLine(line, meter_id=meter.id))
    return lines


def _pack_lines(session: Session, customer_id: int, currency: str, period: Period) -> list[DraftLine]:
    purchases = session.scalars(
        select(CreditEntryRecord)
        .where(
            CreditEntryRecord.customer_id == customer_id,
            CreditEntryRecord.pack_code.is_not(None),
            CreditEntryRecord.pack_currency == currency,
            CreditEntryRecord.occurred_at >= period.start,
            CreditEntryRecord.occurred_at < period.end,
        )
        .order_by(CreditEntryRecord.id)
    )
    purchases = list(purchases)
    # A document reflects what was sold: the name recorded with the purchase; purchases recorded
    # before names were kept show the catalog's current name (or the code, if the pack is gone).
    sold = {p.id: sold_pack_name(p.reason, p.pack_code or "") for p in purchases}
    names = _pack_names(session, {p.pack_code for p in purchases if p.pack_code and sold[p.id] is None})
    return [
        DraftLine(
            pack_line(
                sold[p.id] or names.get(p.pack_code or "", p.pack_code or ""), p.pack_price or _ZERO,
                currency, p.occurred_at, code=p.pack_code,
            )
        )
        for p in purchases
    ]  # fmt: skip


def _pack_names(session: Session, codes: set[str]) -> dict[str, str]:
    """The catalog name of each pack code (a pack no longer in the catalog is shown by its code)."""
    if not codes:
        return {}
    rows = session.execute(
        select(CreditPackRecord.code, CreditPackRecord.definition).where(CreditPackRecord.code.in_(codes))
    )
    return {code: str((definition or {}).get("name") or code) for code, definition in rows}


def usage_window(
    subscription: SubscriptionRecord, period: Period, customer_subscriptions: list[SubscriptionRecord]
) -> Period | None:
    """The part of ``period`` whose usage and pack purchases ``subscription`` bills (``None``: none).

    A customer's subscriptions follow one another (at most one has not ended), so their usage is
    split at the moment each one starts: a subscription bills its billing month, but not before it
    started when an earlier subscription precedes it, and not from the start of the next one on. A
    lone subscription bills its whole billing month, as always. The split depends only on the
    subscriptions' own dates, so no usage is billed twice, whichever months the runs cover.
    """
    ordered = sorted(customer_subscriptions, key=lambda s: (s.started_at, s.id))
    index = next(i for i, s in enumerate(ordered) if s.id == subscription.id)
    start, end = period.start, period.end
    if index > 0:
        start = max(start, subscription.started_at)
    if index + 1 < len(ordered):
        end = min(end, ordered[index + 1].started_at)
    return Period(start, end) if end > start else None


def subscription_draft_lines(
    session: Session,
    subscription: SubscriptionRecord,
    period: Period,
    head: int,
    window: Period | None = None,
    *,
    whole_period: bool = True,
    settlements: Settlements | None = None,
) -> tuple[str, list[DraftLine]]:
    """(currency, lines) of the subscription's invoice for ``period``: base fee and seats, packs,
    usage priced by the plan active at the end of the period (usage is never prorated).

    Packs and usage are those of ``window`` (:func:`usage_window`); with ``whole_period`` false and
    no window, the subscription bills only its base fee and seats. ``settlements``: those of the
    draft's late lines (:func:`late_settlements`), so credits are not counted twice.
    """
    segments = plan_segments(session, subscription)
    active = [s for s in segments if period.overlap_seconds(s.start, s.end) > 0]
    if not active:
        raise LookupError(f"no plan is active during {period.label()}")
    plan = active[-1].plan
    lines = [
        DraftLine(base_fee_line(c, plan.currency))
        for c in base_fee_charges(active, period, subscription.anchor)
    ]
    if window is None and whole_period:
        window = period
    if window is not None:
        lines += _pack_lines(session, subscription.customer_id, plan.currency, window)
        lines += _usage_lines(session, subscription.customer_id, plan, window, head, settlements or {})
    return plan.currency, lines


def late_lines(
    session: Session, customer_id: int, period_label: str, currency: str, head: int
) -> list[DraftLine]:
    """True-up lines for events that arrived after an earlier month's invoice was finalized.

    They go on the *next open* invoice: the draft of ``period_label`` gets them only when no other
    draft of the customer lies between the finalized month and this one (see docs/billing.md).
    """
    invoices = list(
        session.scalars(
            select(InvoiceRecord)
            .where(InvoiceRecord.customer_id == customer_id, InvoiceRecord.period < period_label)
            .order_by(InvoiceRecord.period)
        )
    )
    closed = [i for i in invoices if i.status in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)]
    drafts = [i.period for i in invoices if i.status == InvoiceStatus.DRAFT]
    closed_ids = [i.id for i in closed]
    if not closed_ids:
        return []
    earlier_late = [
        line
        for line in session.scalars(
            select(InvoiceLineRecord)
            .join(InvoiceRecord, InvoiceRecord.id == InvoiceLineRecord.invoice_id)
            .where(InvoiceRecord.customer_id == customer_id, InvoiceLineRecord.kind == "late_usage")
        )
        if line.details.get("original_invoice_id") in closed_ids
    ]
    result: list[DraftLine] = []
    for invoice in closed:
        if invoice.currency != currency or any(invoice.period < d < period_label for d in drafts):
            continue
        usage = session.scalars(
            select(InvoiceLineRecord)
            .where(InvoiceLineRecord.invoice_id == invoice.id, InvoiceLineRecord.kind == "usage")
            .order_by(InvoiceLineRecord.position)
        )
        for original in usage:
            result.extend(_late_line_for(session, customer_id, invoice, original, earlier_late, head))
    return result


def _late_line_for(
    session: Session,
    customer_id: int,
    invoice: InvoiceRecord,
    original: InvoiceLineRecord,
    earlier_late: list[InvoiceLineRecord],
    head: int,
) -> list[DraftLine]:
    meter = session.get(Meter, original.meter_id) if original.meter_id is not None else None
    if meter is None or original.price_snapshot is None or original.window_start is None:
        return []
    billed = [
        line
        for line in earlier_late
        if line.details.get("original_line_id") == original.id
        and line.invoice_id != invoice.id
        and _is_closed(session, line.invoice_id)
    ]
    after = max([original.max_sequence or 0, *(line.max_sequence or 0 for line in billed)])
    definition = to_definition(meter)
    assert original.window_end is not None
    window = (original.window_start, original.window_end)
    # The events committed since (what explain lists) and the whole window restated now: a second
    # record of a call merged into an event already billed adds to the window, not to the new events.
    new = meter_totals(
        session, definition, customer_id=customer_id, start=window[0], end=window[1],
        after_sequence=after, max_sequence=head,
    )  # fmt: skip
    now = meter_totals(
        session, definition, customer_id=customer_id, start=window[0], end=window[1], max_sequence=head
    )
    closed = [original, *billed]
    billed_quantity = sum((line.quantity for line in closed), _ZERO)
    late_quantity = now.value - billed_quantity
    if not new.event_count and late_quantity == 0:
        return []
    full_cost = sum((line.upstream_cost or _ZERO for line in closed), _ZERO)
    priced_cost = sum((_billable_cost_of(line) for line in closed), _ZERO)
    covered_before = sum((Decimal(line.details.get("credit_covered_units", "0")) for line in closed), _ZERO)
    covered_units_now, covered_cost = _ZERO, None
    credit_meter = session.scalar(select(CreditMeter).where(CreditMeter.meter_id == meter.id))
    if credit_meter is not None:
        sequences = _window_sequences(session, customer_id, window[0], window[1], None, head)
        coverage = credit_coverage(session, customer_id, meter.id, sequences)
        covered_units_now = covered_units(now.value, coverage, credit_meter.units_per_credit)
        # What the closed lines took off as covered is their full cost minus the cost they priced.
        covered_cost = coverage.covered_cost - (full_cost - priced_cost)
    priced_quantity = Decimal(original.details.get("quantity", str(original.quantity))) + sum(
        (Decimal(line.details.get("priced_quantity", str(line.quantity))) for line in billed), _ZERO
    )
    exact = sum((Decimal(line.exact_amount) for line in closed), _ZERO)
    late = LateUsageInput(
        meter.name,
        invoice.period,
        price_from_json(original.price_snapshot),
        priced_quantity,
        exact,
        late_quantity,
        original_upstream_cost=priced_cost,
        late_upstream_cost=now.upstream_cost - full_cost,
        late_covered_units=covered_units_now - covered_before,
        late_covered_cost=covered_cost,
    )
    extra = {
        "original_invoice_id": invoice.id,
        "original_invoice_number": invoice.number,
        "original_line_id": original.id,
        "original_upstream_cost": str(priced_cost),
        "billed_quantity": str(billed_quantity),
        "billed_upstream_cost": str(full_cost),
        "restated_quantity": str(now.value),
        "late_covered_cost": None if covered_cost is None else str(covered_cost),
        "event_count": new.event_count,
        "highest_sequence_included": new.max_sequence,
    }
    return [
        DraftLine(
            late_usage_line(late),
            meter_id=meter.id,
            meter_snapshot=definition.to_json(),
            price_snapshot=original.price_snapshot,
            window_start=original.window_start,
            window_end=original.window_end,
            after_sequence=after,
            max_sequence=head,
            extra_details=extra,
        )
    ]


def _billable_cost_of(line: InvoiceLineRecord) -> Decimal:
    """The upstream cost a closed usage or late line priced (lines from before it was recorded:
    the cost pro rata of the units credits did not cover)."""
    recorded = line.details.get("billable_upstream_cost")
    if recorded is not None:
        return Decimal(recorded)
    cost = line.upstream_cost or _ZERO
    covered = Decimal(line.details.get("credit_covered_units", "0"))
    if line.kind == "usage" and covered and line.quantity > 0:
        return cost * (line.quantity - covered) / line.quantity
    return cost


def _is_closed(session: Session, invoice_id: int) -> bool:
    status = session.scalar(select(InvoiceRecord.status).where(InvoiceRecord.id == invoice_id))
    return status in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)
