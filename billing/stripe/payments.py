"""Payment outcomes from Stripe applied to our invoices, safely in any order and any number of times.

The rule (pure, :func:`decide`): ``paid`` and ``void`` are final — once an invoice is paid or void,
no later message changes it (Stripe cannot un-pay an invoice, and webhooks arrive out of order: a
``invoice.payment_failed`` for an earlier attempt can be delivered after ``invoice.paid``). A failed
payment is only recorded on an invoice that is still open, and never over a newer outcome. Applying
the same outcome twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from spanledger.billing.db import storage_errors
from spanledger.billing.invoices import InvoiceStatus, check_transition
from spanledger.billing.models import InvoiceRecord, StripeInvoiceSync

__all__ = ["PaymentDecision", "PaymentOutcome", "apply_payment", "decide"]


class PaymentOutcome(StrEnum):
    PAID = "paid"
    FAILED = "failed"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class PaymentDecision:
    """What to change: the invoice's new status (or None) and the new payment status (or None)."""

    invoice_status: InvoiceStatus | None
    payment_status: PaymentOutcome | None
    reason: str


def decide(
    invoice_status: str,
    payment_status: str | None,
    last_event_at: datetime | None,
    outcome: PaymentOutcome,
    event_at: datetime | None,
) -> PaymentDecision:
    """The change ``outcome`` (reported at ``event_at``) makes to an invoice in the given state."""
    current = InvoiceStatus(invoice_status)
    if current in (InvoiceStatus.PAID, InvoiceStatus.VOID):
        same = current.value == outcome.value
        return PaymentDecision(
            None, None, "already " + current.value if same else f"ignored: invoice is {current}"
        )
    if current is InvoiceStatus.DRAFT:
        return PaymentDecision(None, None, "ignored: invoice is still a draft")
    if outcome is PaymentOutcome.PAID:
        return PaymentDecision(InvoiceStatus.PAID, PaymentOutcome.PAID, "marked paid")
    if outcome is PaymentOutcome.VOID:
        return PaymentDecision(InvoiceStatus.VOID, PaymentOutcome.VOID, "marked void")
    if payment_status == PaymentOutcome.FAILED.value:
        return PaymentDecision(None, None, "already failed")
    if last_event_at is not None and event_at is not None and event_at < last_event_at:
        return PaymentDecision(None, None, "ignored: older than the last payment event")
    return PaymentDecision(None, PaymentOutcome.FAILED, "marked payment failed")


def apply_payment(
    session: Session,
    invoice: InvoiceRecord,
    sync: StripeInvoiceSync | None,
    outcome: PaymentOutcome,
    *,
    event_at: datetime | None,
    now: datetime,
) -> PaymentDecision:
    """Apply ``outcome`` to ``invoice`` (and its Stripe sync row) per :func:`decide`; the caller commits."""
    decision = decide(
        invoice.status,
        sync.payment_status if sync else None,
        sync.payment_event_at if sync else None,
        outcome,
        event_at,
    )
    with storage_errors():
        if decision.invoice_status is not None:
            check_transition(invoice.status, decision.invoice_status, f"invoice {invoice.number}")
            invoice.status = decision.invoice_status.value
            if decision.invoice_status is InvoiceStatus.PAID:
                invoice.paid_at = event_at or now
            else:
                invoice.voided_at = event_at or now
            invoice.updated_at = now
        if sync is not None and decision.payment_status is not None:
            sync.payment_status = decision.payment_status.value
            sync.payment_event_at = event_at or now
            sync.updated_at = now
        session.flush()
    return decision
