"""What invoices do to the credits ledger: plan grants when a draft is written, overage settlements
when an invoice is finalized (both idempotent, keyed so repeating them writes nothing)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.credits.ledger import CreditEntry, EntryKind
from spanledger.billing.credits.service import add_entry, close_and_grant
from spanledger.billing.invoices.drafts import plan_segments
from spanledger.billing.models import CreditMeter, InvoiceLineRecord, InvoiceRecord, Meter, SubscriptionRecord
from spanledger.billing.plans import CreditGrantRule, Interval
from spanledger.billing.subscriptions import Period, billing_period_containing

__all__ = ["grant_plan_credits", "settle_overage"]


def _grant_window(
    subscription: SubscriptionRecord, rule: CreditGrantRule, period: Period, label: str
) -> tuple[str, Period]:
    """(idempotency period key, grant period) of ``rule`` for the billing month ``period``.

    ``every: month`` grants each billing month (also on a yearly plan); ``every: year`` grants once per
    yearly term of the subscription's anchor, valid for the whole term, on whichever month of the term
    is run first (the key names the term, so the other eleven months find it granted).
    """
    if rule.every is Interval.YEAR:
        term = billing_period_containing(subscription.anchor, Interval.YEAR, period.start)
        return f"year-{term.label()}", term
    return label, period


def grant_plan_credits(
    session: Session, subscription: SubscriptionRecord, period: Period, label: str
) -> None:
    """The credit grants of every plan active in the period, each its own grant (idempotent: keyed by
    customer, meter, grant period and plan). A plan that starts inside the grant period (a mid-month
    switch) grants when it starts; all of them expire at the period's end. The same plan twice in one
    period grants once."""
    segments = [s for s in plan_segments(session, subscription) if period.overlap_seconds(s.start, s.end) > 0]
    for segment in segments:
        for rule in segment.plan.credit_grants:
            meter_id = session.scalar(
                select(Meter.id)
                .join(CreditMeter, CreditMeter.meter_id == Meter.id)
                .where(Meter.name == rule.meter)
            )
            if meter_id is None:
                continue
            key, window = _grant_window(subscription, rule, period, label)
            close_and_grant(
                session, subscription.customer_id, meter_id, period_key=key, period_start=window.start,
                period_end=window.end, credits=rule.credits, rollover_limit=rule.rollover_limit,
                plan=segment.plan.code, granted_at=max(window.start, segment.start),
            )  # fmt: skip


def settle_overage(session: Session, invoice: InvoiceRecord, lines: list[InvoiceLineRecord]) -> None:
    """Bring credit balances the invoice billed in money back up (an adjustment, once per invoice)."""
    settled: set[str] = set()
    for line in lines:
        if line.kind not in ("usage", "late_usage") or line.meter_id is None:
            continue
        credit_meter = session.scalar(select(CreditMeter).where(CreditMeter.meter_id == line.meter_id))
        if credit_meter is None:
            continue
        covered = Decimal(line.details.get("credit_covered_units", "0"))
        uncovered_units = line.quantity - covered
        if uncovered_units <= 0:
            continue
        credits = uncovered_units / credit_meter.units_per_credit
        # Settled at the end of the window the line billed (a late line: the month the usage belongs
        # to), so the overage is paid before the next month's grant is used (see coverage.py).
        entry = CreditEntry(
            EntryKind.ADJUSTMENT, credits.quantize(Decimal(1).scaleb(-12)),
            line.window_end or invoice.period_end,
            reason=f"overage billed in money on invoice {invoice.number}",
        )  # fmt: skip
        # One settlement per line: the meter's (first) usage line keeps the original key.
        key = f"settle:{invoice.id}:{line.meter_id}"
        if line.kind == "late_usage" or key in settled:
            key = f"{key}:{line.position}"
        settled.add(key)
        add_entry(session, invoice.customer_id, line.meter_id, entry, idempotency_key=key)
