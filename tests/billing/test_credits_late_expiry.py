"""Credits: a late event covered by a month whose leftover credits already expired leaves the balance
right (the expiry is corrected by what the late event used), and the next close is exact."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

import credit_ledger_support as ledger
import pytest
from sqlalchemy import select
from test_invoices_support import DEC, NOV, add_meter, call, store

from spanledger.billing.credits import CreditEntry, EntryKind, expiry_correction, replay
from spanledger.billing.credits.service import close_and_grant
from spanledger.billing.customers import create_customer
from spanledger.billing.models import Meter


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
    ledger.setup_metered(session, rollover=rollover)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    november, _ = ledger.run_period(session, "2026-11")
    ledger.finalize_invoice(session, november)
    ledger.run_period(session, "2026-12")  # closes November: 40 unused credits expire (up to 20 roll over)
    assert ledger.balance_at(session) == D(100 + rollover)
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    # November's leftover covered the late event (December's invoice bills nothing for it) ...
    _, december = ledger.run_period(session, "2026-12")
    assert ledger.lines_of(december, "late_usage") == [("late_usage", D(30_000), D("0.00"))]
    # ... so December's credits are whole: the expiry is corrected by what the late event used.
    assert ledger.balance_at(session) == D(100 + rollover) == ledger.replayed_at(session)
    assert ledger.entries_of(session, "acme", "expiry") == [("expiry", D(-40), None), ("expiry", D(30), None)]
    # A repeated record of the late call changes nothing; another late event corrects again.
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    store(session, call("late-2", "acme", 5_000, NOV + timedelta(days=21)))
    assert ledger.balance_at(session) == D(100 + rollover) == ledger.replayed_at(session)
    assert [e[1] for e in ledger.entries_of(session, "acme", "expiry")] == [D(-40), D(30), D(5)]


def test_late_usage_beyond_the_leftover_is_overage_and_the_next_close_is_exact(session):
    ledger.setup_metered(session)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    november, _ = ledger.run_period(session, "2026-11")
    ledger.finalize_invoice(session, november)
    store(session, call("december", "acme", 70_000, DEC + timedelta(days=2)))
    ledger.run_period(session, "2026-12")
    store(session, call("late", "acme", 50_000, NOV + timedelta(days=19)))
    december, lines = ledger.run_period(session, "2026-12")
    # 40 of the 50 late credits came from November's leftover, 10 are overage billed now.
    assert ledger.lines_of(lines, "usage", "late_usage") == [
        ("usage", D(70_000), D("0.00")),
        ("late_usage", D(50_000), D("0.20")),
    ]
    # The overage is owed until settled.
    assert ledger.balance_at(session) == ledger.replayed_at(session) == D(30) - D(10)
    ledger.finalize_invoice(session, december)
    assert ledger.balance_at(session) == ledger.replayed_at(session) == D(30)
    # January closes December from the occurrence-ordered ledger: exactly December's 30 expire.
    ledger.run_period(session, "2027-01")
    assert ledger.entries_of(session, "acme", "expiry")[-1] == ("expiry", D(-30), None)
    assert ledger.balance_at(session, at=ledger.JAN) == D(100) == ledger.replayed_at(session, at=ledger.JAN)


def test_on_time_usage_writes_no_correction(session):
    ledger.setup_metered(session)
    store(session, call("a", "acme", 10_000, NOV + timedelta(days=1)))
    ledger.run_period(session, "2026-11")
    ledger.run_period(session, "2026-12")
    store(session, call("b", "acme", 10_000, DEC + timedelta(days=1)))
    assert ledger.entries_of(session, "acme", "expiry") == [("expiry", D(-90), None)]
    assert ledger.balance_at(session) == D(90)


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
    close_and_grant_month(DEC, ledger.JAN)
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    assert ledger.balance_at(session) == D(70)  # not yet corrected
    close_and_grant_month(ledger.JAN, ledger.JAN + timedelta(days=31))
    assert ledger.entries_of(session, "acme", "expiry") == [
        ("expiry", D(-40), None), ("expiry", D(30), None), ("expiry", D(-100), None),
    ]  # fmt: skip
    assert ledger.balance_at(session, at=ledger.JAN) == D(100) == ledger.replayed_at(session, at=ledger.JAN)
