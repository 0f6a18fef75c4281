"""Shared steps of the credit ledger tests that run invoices (plain functions; this module holds no tests).

One metered plan (monthly credits, overage $0.02 per 1,000 tokens), invoice runs and finalizing, each in a
transaction of its own as the CLI does them, and the views those tests compare: the balance, the ledger
replayed in occurrence order (the invoices' view), the stored entries and the invoice lines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import select
from sqlalchemy.orm import Session
from test_invoices_support import DEC, NOV, add_meter, add_plan, subscribe

from spanledger.billing.credits import replay
from spanledger.billing.credits.service import balance, in_occurrence_order, ledger_entries
from spanledger.billing.invoices import finalize, invoice_lines, run_invoices
from spanledger.billing.models import CreditEntryRecord, Customer, InvoiceLineRecord, InvoiceRecord, Meter

__all__ = [
    "EARLY_DEC",
    "JAN",
    "PER_UNIT",
    "balance_at",
    "entries_of",
    "finalize_invoice",
    "lines_of",
    "metered_plan",
    "replayed_at",
    "run_period",
    "setup_metered",
]

JAN = datetime(2027, 1, 1, tzinfo=NOV.tzinfo)
# Where the balance is read by default: after November closed, before anything in December.
EARLY_DEC = DEC + timedelta(days=3)
PER_UNIT = {"meter": "tokens", "model": "per_unit", "unit_price": "0.02", "unit_size": 1000}


def metered_plan(credits: int, rollover: int = 0) -> dict:
    """Plan ``metered``: no base fee, ``credits`` a month (up to ``rollover`` carried over), then PER_UNIT."""
    grant = {"meter": "tokens", "credits": str(credits), "rollover_limit": str(rollover)}
    return {
        "code": "metered",
        "name": "Metered",
        "base_fee": "0",
        "prices": [PER_UNIT],
        "credit_grants": [grant],
    }


def setup_metered(session: Session, credits: int = 100, rollover: int = 0) -> None:
    """Meter ``tokens`` (1 credit = 1,000 tokens), plan ``metered``, ``acme`` subscribed since October."""
    with session.begin():
        add_meter(session, D(1000))
        subscribe(session, "acme", add_plan(session, metered_plan(credits, rollover)))


def run_period(session: Session, period: str) -> tuple[InvoiceRecord, list[InvoiceLineRecord]]:
    """Run the invoices of ``period``; its (only) invoice and its lines."""
    with session.begin():
        run_invoices(session, period)
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == period))
        return invoice, invoice_lines(session, invoice)


def finalize_invoice(session: Session, invoice: InvoiceRecord) -> None:
    with session.begin():
        finalize(session, invoice.id)


def balance_at(session: Session, customer: str = "acme", at: datetime = EARLY_DEC) -> D:
    """The ``tokens`` balance the credits service reports for ``customer`` at ``at``."""
    with session.begin():
        return balance(session, customer, "tokens", at=at).balance


def replayed_at(session: Session, customer: str = "acme", at: datetime = EARLY_DEC) -> D:
    """What the ledger replayed in occurrence order (the invoices' view) says is left at ``at``."""
    with session.begin():
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == customer))
        meter_id = session.scalar(select(Meter.id).where(Meter.name == "tokens"))
        return replay(in_occurrence_order(ledger_entries(session, customer_id, meter_id))).available_at(at)


def entries_of(session: Session, customer: str, *kinds: str) -> list[tuple[str, D, D | None]]:
    """``customer``'s stored credit entries of ``kinds`` as (kind, amount, credits), in insertion order."""
    with session.begin():
        rows = session.scalars(
            select(CreditEntryRecord)
            .join(Customer, Customer.id == CreditEntryRecord.customer_id)
            .where(Customer.external_id == customer, CreditEntryRecord.kind.in_(kinds))
            .order_by(CreditEntryRecord.id)
        )
        return [(r.kind, r.amount, r.credits) for r in rows]


def lines_of(lines: list[InvoiceLineRecord], *kinds: str) -> list[tuple[str, D, D]]:
    """The invoice lines of ``kinds`` as (kind, quantity, amount), in invoice order."""
    return [(line.kind, line.quantity, line.amount) for line in lines if line.kind in kinds]
