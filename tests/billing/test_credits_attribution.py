"""Credits: an unattributed event later attributed to a customer (a second record of the call carries
the customer) moves its consumption to that customer, exactly once, whatever order the records come in."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from test_invoices_support import DEC, NOV, add_meter, add_plan, call, store, subscribe

from spanledger.billing.credits import replay
from spanledger.billing.credits.service import balance, in_occurrence_order, ledger_entries
from spanledger.billing.invoices import finalize, invoice_lines, run_invoices
from spanledger.billing.models import CreditEntryRecord, Customer, InvoiceRecord, Meter
from spanledger.billing.usage_event import UNATTRIBUTED_CUSTOMER, UsageEvent

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
    _setup(session)
    _run(session, "2026-11")  # November's 100 credits granted
    unattributed = _event("call", None, MID_NOV, input_tokens=40_000)
    attributed = _event("call", "acme", MID_NOV, input_tokens=40_000)
    for event in (attributed, unattributed) if attributed_first else (unattributed, attributed):
        store(session, event)
    assert _balance(session) == D(60) == _replayed(session, at=LATE_NOV)
    assert _balance(session, UNATTRIBUTED_CUSTOMER) == D(0)
    # The invoice sees the call covered by acme's credits (before: billed in full, $0.80).
    _, lines = _run(session, "2026-11")
    assert _usage(lines, "usage") == [("usage", D(40_000), D("0.00"))]
    entries = _consumption_count(session)
    for event in (attributed, unattributed, attributed):  # repeats: nothing moves twice
        store(session, event)
    assert _consumption_count(session) == entries
    assert _balance(session) == D(60) and _balance(session, UNATTRIBUTED_CUSTOMER) == D(0)
    if not attributed_first:
        assert _entries(session, UNATTRIBUTED_CUSTOMER, "consumption") == [
            ("consumption", D(-40), D(40)),
            ("consumption", D(40), D(-40)),
        ]


def test_attribution_that_also_adds_tokens_moves_all_of_it(session):
    _setup(session)
    _run(session, "2026-11")
    store(session, _event("call", None, MID_NOV, input_tokens=40_000, output_tokens=None))
    store(session, _event("call", "acme", MID_NOV, input_tokens=40_000, output_tokens=10_000))
    assert _entries(session, "acme", "consumption") == [("consumption", D(-50), D(50))]
    assert _balance(session) == D(50) and _balance(session, UNATTRIBUTED_CUSTOMER) == D(0)


def test_a_call_attributed_after_its_month_was_finalized_is_covered_by_that_month(session):
    _setup(session)
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=5)))
    store(session, _event("call", None, NOV + timedelta(days=19), input_tokens=30_000))
    november, lines = _run(session, "2026-11")
    assert _usage(lines, "usage") == [("usage", D(60_000), D("0.00"))]
    _finalize(session, november)
    _run(session, "2026-12")  # closes November: 40 unused credits expire
    store(session, _event("call", "acme", NOV + timedelta(days=19), input_tokens=30_000))
    _, december = _run(session, "2026-12")
    # The attributed call is November's late usage, covered by November's leftover: nothing to pay,
    # and December's 100 credits stay whole.
    assert _usage(december, "late_usage") == [("late_usage", D(30_000), D("0.00"))]
    assert _balance(session) == D(100) == _replayed(session)
    assert _balance(session, UNATTRIBUTED_CUSTOMER) == D(0)
