"""Credits: a late event covered by a month whose leftover credits already expired leaves the balance
right (the expiry is corrected by what the late event used), and the next close is exact."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from test_invoices_support import DEC, NOV, add_meter, add_plan, call, store, subscribe

from spanledger.billing.credits import CreditEntry, EntryKind, expiry_correction, replay
from spanledger.billing.credits.service import balance, close_and_grant, in_occurrence_order, ledger_entries
from spanledger.billing.customers import create_customer
from spanledger.billing.invoices import finalize, invoice_lines, run_invoices
from spanledger.billing.models import CreditEntryRecord, Customer, InvoiceRecord, Meter

JAN = datetime(2027, 1, 1, tzinfo=NOV.tzinfo)
PER_UNIT = {"meter": "tokens", "model": "per_unit", "unit_price": "0.02", "unit_size": 1000}


def _plan(credits: int, rollover: int = 0) -> dict:
    grant = {"meter": "tokens", "credits": str(credits), "rollover_limit": str(rollover)}
    return {
        "code": "metered",
        "name": "Metered",
        "base_fee": "0",
        "prices": [PER_UNIT],
        "credit_grants": [grant],
    }


def _setup(session, credits: int = 100, rollover: int = 0) -> None:
    with session.begin():
        add_meter(session, D(1000))
        subscribe(session, "acme", add_plan(session, _plan(credits, rollover)))


def _run(session, period: str) -> tuple[InvoiceRecord, list]:
    with session.begin():
        run_invoices(session, period)
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == period))
        return invoice, invoice_lines(session, invoice)


def _finalize(session, invoice: InvoiceRecord) -> None:
    with session.begin():
        finalize(session, invoice.id)


def _balance(session, customer: str = "acme", at: datetime = DEC + timedelta(days=3)) -> D:
    with session.begin():
        return balance(session, customer, "tokens", at=at).balance


def _replayed(session, customer: str = "acme", at: datetime = DEC + timedelta(days=3)) -> D:
    """What the ledger replayed in occurrence order (the invoices' view) says is left at ``at``."""
    with session.begin():
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == customer))
        meter_id = session.scalar(select(Meter.id).where(Meter.name == "tokens"))
        return replay(in_occurrence_order(ledger_entries(session, customer_id, meter_id))).available_at(at)


def _entries(session, customer: str, *kinds: str) -> list[tuple[str, D, D | None]]:
    with session.begin():
        rows = session.scalars(
            select(CreditEntryRecord)
            .join(Customer, Customer.id == CreditEntryRecord.customer_id)
            .where(Customer.external_id == customer, CreditEntryRecord.kind.in_(kinds))
            .order_by(CreditEntryRecord.id)
        )
        return [(r.kind, r.amount, r.credits) for r in rows]


def _usage(lines, *kinds: str) -> list[tuple[str, D, D]]:
    return [(line.kind, line.quantity, line.amount) for line in lines if line.kind in kinds]


def test_expiry_correction_is_the_part_of_an_expiry_later_usage_used():
    grant = CreditEntry(EntryKind.GRANT, D(100), NOV, expires_at=DEC)
    used = CreditEntry(EntryKind.CONSUMPTION, D(-60), NOV + timedelta(days=9), credits=D(60))
    expiry = CreditEntry(EntryKind.EXPIRY, D(-40), DEC)
    late = CreditEntry(EntryKind.CONSUMPTION, D(-30), NOV + timedelta(days=19), credits=D(30))
    assert expiry_correction([grant, used, expiry]) == 0
    assert expiry_correction([grant, used, late, expiry]) == D(30)
    corrected = [grant, used, late, CreditEntry(EntryKind.EXPIRY, D(30), DEC), expiry]
    assert expiry_correction(corrected) == 0
    assert replay(corrected).balance == D(0) == replay(corrected).available_at(DEC)


@pytest.mark.parametrize("rollover", [0, 20])
def test_a_late_event_covered_by_expired_credits_leaves_the_balance_right(session, rollover):
    _setup(session, rollover=rollover)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    november, _ = _run(session, "2026-11")
    _finalize(session, november)
    _run(session, "2026-12")  # closes November: 40 unused credits expire (up to 20 roll over)
    assert _balance(session) == D(100 + rollover)
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    # November's leftover covered the late event (December's invoice bills nothing for it) ...
    _, december = _run(session, "2026-12")
    assert _usage(december, "late_usage") == [("late_usage", D(30_000), D("0.00"))]
    # ... so December's credits are whole: the expiry is corrected by what the late event used.
    assert _balance(session) == D(100 + rollover) == _replayed(session)
    assert _entries(session, "acme", "expiry") == [("expiry", D(-40), None), ("expiry", D(30), None)]
    # A repeated record of the late call changes nothing; another late event corrects again.
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    store(session, call("late-2", "acme", 5_000, NOV + timedelta(days=21)))
    assert _balance(session) == D(100 + rollover) == _replayed(session)
    assert [e[1] for e in _entries(session, "acme", "expiry")] == [D(-40), D(30), D(5)]


def test_late_usage_beyond_the_leftover_is_overage_and_the_next_close_is_exact(session):
    _setup(session)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    november, _ = _run(session, "2026-11")
    _finalize(session, november)
    store(session, call("december", "acme", 70_000, DEC + timedelta(days=2)))
    _run(session, "2026-12")
    store(session, call("late", "acme", 50_000, NOV + timedelta(days=19)))
    december, lines = _run(session, "2026-12")
    # 40 of the 50 late credits came from November's leftover, 10 are overage billed now.
    assert _usage(lines, "usage", "late_usage") == [
        ("usage", D(70_000), D("0.00")),
        ("late_usage", D(50_000), D("0.20")),
    ]
    assert _balance(session) == _replayed(session) == D(30) - D(10)  # the overage is owed until settled
    _finalize(session, december)
    assert _balance(session) == _replayed(session) == D(30)
    # January closes December from the occurrence-ordered ledger: exactly December's 30 expire.
    _run(session, "2027-01")
    assert _entries(session, "acme", "expiry")[-1] == ("expiry", D(-30), None)
    assert _balance(session, at=JAN) == D(100) == _replayed(session, at=JAN)


def test_on_time_usage_writes_no_correction(session):
    _setup(session)
    store(session, call("a", "acme", 10_000, NOV + timedelta(days=1)))
    _run(session, "2026-11")
    _run(session, "2026-12")
    store(session, call("b", "acme", 10_000, DEC + timedelta(days=1)))
    assert _entries(session, "acme", "expiry") == [("expiry", D(-90), None)]
    assert _balance(session) == D(90)


def test_a_correction_ingest_could_not_see_is_made_by_the_next_close(session):
    # Grants and closes written without an invoice (as by a run whose customer was then skipped):
    # ingest's cheap check finds no month run after the late event, so the next close corrects it.
    with session.begin():
        add_meter(session, D(1000))
        customer_id = create_customer(session, "acme").id
        meter_id = session.scalar(select(Meter.id).where(Meter.name == "tokens"))

    def close_and_grant_month(start: datetime, end: datetime) -> None:
        with session.begin():
            close_and_grant(
                session, customer_id, meter_id, period_key=f"{start:%Y-%m}", period_start=start,
                period_end=end, credits=D(100), rollover_limit=D(0), plan="metered",
            )  # fmt: skip

    close_and_grant_month(NOV, DEC)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    close_and_grant_month(DEC, JAN)
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    assert _balance(session) == D(70)  # not yet corrected
    close_and_grant_month(JAN, JAN + timedelta(days=31))
    assert _entries(session, "acme", "expiry") == [
        ("expiry", D(-40), None), ("expiry", D(30), None), ("expiry", D(-100), None),
    ]  # fmt: skip
    assert _balance(session, at=JAN) == D(100) == _replayed(session, at=JAN)
