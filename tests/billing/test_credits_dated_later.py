"""Credits granted with a later date (``credits grant --at``, ``credits topup --at``) count in the balance
from that date, as the replay lets usage draw on them; the portal shows the same balance."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import credit_ledger_support as ledger
from sqlalchemy import select
from test_invoices_support import NOV, call, store

from spanledger.billing.credits import CreditEntry, EntryKind
from spanledger.billing.credits.service import add_entry, grant_once
from spanledger.billing.models import Customer, Meter
from spanledger.billing.portal.customer_data import _credits

PROMO_DAY = ledger.EARLY_DEC + timedelta(days=10)


def _grant_later(session, amount: int = 500) -> None:
    with session.begin():
        grant_once(session, "acme", "tokens", D(amount), at=PROMO_DAY, reason="promo from the 13th")


def _ids(session) -> tuple[int, int]:
    with session.begin():
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "acme"))
        return customer_id, session.scalar(select(Meter.id).where(Meter.name == "tokens"))


def test_a_grant_dated_later_counts_from_its_date(session):
    ledger.setup_metered(session)
    ledger.run_period(session, "2026-12")  # November's 100 credits expire, December's 100 are granted
    before = ledger.balance_at(session)
    _grant_later(session)
    assert ledger.balance_at(session) == before == ledger.replayed_at(session)
    assert ledger.balance_at(session, at=PROMO_DAY - timedelta(seconds=1)) == before
    at_promo = ledger.balance_at(session, at=PROMO_DAY)
    assert at_promo == before + 500 == ledger.replayed_at(session, at=PROMO_DAY)


def test_usage_before_the_date_cannot_draw_on_it_and_other_entries_count_whatever_their_date(session):
    ledger.setup_metered(session)
    ledger.run_period(session, "2026-12")
    _grant_later(session)
    store(session, call("early-december", "acme", 150_000, ledger.EARLY_DEC - timedelta(hours=1)))
    # 150 credits used against the 100 of December: 50 over until the 13th.
    assert ledger.balance_at(session) == D(-50)
    customer_id, meter_id = _ids(session)
    with session.begin():
        later_debit = CreditEntry(EntryKind.ADJUSTMENT, D(-20), PROMO_DAY, reason="correction, dated later")
        add_entry(session, customer_id, meter_id, later_debit)
        later_credit = CreditEntry(EntryKind.ADJUSTMENT, D(5), PROMO_DAY, reason="goodwill, dated later")
        add_entry(session, customer_id, meter_id, later_credit)
    assert ledger.balance_at(session) == D(-65)
    assert ledger.balance_at(session, at=PROMO_DAY) == D(-65 + 500)


def test_the_portal_shows_the_balance_without_credits_dated_later(session):
    ledger.setup_metered(session)
    ledger.run_period(session, "2026-12")
    _grant_later(session, amount=250)
    customer_id, _ = _ids(session)
    with session.begin():
        [now_view] = _credits(session, customer_id, ledger.EARLY_DEC)
        [promo_view] = _credits(session, customer_id, PROMO_DAY)
    assert now_view.balance == ledger.balance_at(session)
    assert promo_view.balance == ledger.balance_at(session, at=PROMO_DAY) == now_view.balance + 250
    # The scheduled grant is listed in the account's ledger all the same, with its date.
    assert any(row.occurred_at == PROMO_DAY and row.amount == 250 for row in now_view.recent)
    assert NOV < ledger.EARLY_DEC < PROMO_DAY
