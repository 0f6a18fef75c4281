"""Credits: an unattributed event later attributed to a customer (a second record of the call carries
the customer) moves its consumption to that customer, exactly once, whatever order the records come in."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal as D

import credit_ledger_support as ledger
import pytest
from sqlalchemy import func, select
from test_invoices_support import NOV, call, store

from spanledger.billing.models import CreditEntryRecord
from spanledger.billing.usage_event import UNATTRIBUTED_CUSTOMER, UsageEvent


def _event(key: str, customer: str | None, at: datetime, *, input_tokens: int, output_tokens: int | None = 0):
    digest = hashlib.sha256(key.encode()).hexdigest()
    return UsageEvent(
        key, at, customer, provider="openai", response_model="gpt-4o", input_tokens=input_tokens,
        output_tokens=output_tokens, trace_id=digest[:32], span_id=digest[32:48],
    )  # fmt: skip


MID_NOV = NOV + timedelta(days=9)
LATE_NOV = NOV + timedelta(days=25)


def _consumption_count(session) -> int:
    with session.begin():
        return session.scalar(select(func.count()).where(CreditEntryRecord.kind == "consumption"))


@pytest.mark.parametrize("attributed_first", [False, True])
def test_attribution_moves_the_consumption_to_the_customer_once_in_either_order(session, attributed_first):
    ledger.setup_metered(session)
    ledger.run_period(session, "2026-11")  # November's 100 credits granted
    unattributed = _event("call", None, MID_NOV, input_tokens=40_000)
    attributed = _event("call", "acme", MID_NOV, input_tokens=40_000)
    for event in (attributed, unattributed) if attributed_first else (unattributed, attributed):
        store(session, event)
    assert ledger.balance_at(session) == D(60) == ledger.replayed_at(session, at=LATE_NOV)
    assert ledger.balance_at(session, UNATTRIBUTED_CUSTOMER) == D(0)
    # The invoice sees the call covered by acme's credits (before: billed in full, $0.80).
    _, lines = ledger.run_period(session, "2026-11")
    assert ledger.lines_of(lines, "usage") == [("usage", D(40_000), D("0.00"))]
    entries = _consumption_count(session)
    for event in (attributed, unattributed, attributed):  # repeats: nothing moves twice
        store(session, event)
    assert _consumption_count(session) == entries
    assert ledger.balance_at(session) == D(60) and ledger.balance_at(session, UNATTRIBUTED_CUSTOMER) == D(0)
    if not attributed_first:
        assert ledger.entries_of(session, UNATTRIBUTED_CUSTOMER, "consumption") == [
            ("consumption", D(-40), D(40)),
            ("consumption", D(40), D(-40)),
        ]


def test_attribution_that_also_adds_tokens_moves_all_of_it(session):
    ledger.setup_metered(session)
    ledger.run_period(session, "2026-11")
    store(session, _event("call", None, MID_NOV, input_tokens=40_000, output_tokens=None))
    store(session, _event("call", "acme", MID_NOV, input_tokens=40_000, output_tokens=10_000))
    assert ledger.entries_of(session, "acme", "consumption") == [("consumption", D(-50), D(50))]
    assert ledger.balance_at(session) == D(50) and ledger.balance_at(session, UNATTRIBUTED_CUSTOMER) == D(0)


def test_a_call_attributed_after_its_month_was_finalized_is_covered_by_that_month(session):
    ledger.setup_metered(session)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=5)))
    store(session, _event("call", None, NOV + timedelta(days=19), input_tokens=30_000))
    november, lines = ledger.run_period(session, "2026-11")
    assert ledger.lines_of(lines, "usage") == [("usage", D(60_000), D("0.00"))]
    ledger.finalize_invoice(session, november)
    ledger.run_period(session, "2026-12")  # closes November: 40 unused credits expire
    store(session, _event("call", "acme", NOV + timedelta(days=19), input_tokens=30_000))
    _, december = ledger.run_period(session, "2026-12")
    # The attributed call is November's late usage, covered by November's leftover: nothing to pay,
    # and December's 100 credits stay whole.
    assert ledger.lines_of(december, "late_usage") == [("late_usage", D(30_000), D("0.00"))]
    assert ledger.balance_at(session) == D(100) == ledger.replayed_at(session)
    assert ledger.balance_at(session, UNATTRIBUTED_CUSTOMER) == D(0)
