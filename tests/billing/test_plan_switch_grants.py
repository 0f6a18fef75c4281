"""Credit grants of two plans in one month (a mid-month switch): each plan's grant is its own,
idempotent grant, and months granted under the old one-per-month key keep their one grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from test_invoices_support import call, store

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.credits import CreditEntry, EntryKind, GrantSource
from spanledger.billing.credits.service import add_entry, balance, plan_grant_written
from spanledger.billing.customers import create_customer
from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.models import CreditEntryRecord, Customer, InvoiceRecord, Meter
from spanledger.billing.subscriptions import change_plan, subscribe

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
MID_NOV = datetime(2026, 11, 16, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def _plan(code: str, credits: int) -> dict:
    return {
        "code": code, "name": code.title(), "base_fee": 0,
        "prices": [{"meter": "tokens", "model": "per_unit", "unit_price": "0.02", "unit_size": 1000}],
        "credit_grants": [{"meter": "tokens", "credits": credits}],
    }  # fmt: skip


CATALOG = {
    "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
    "credit_meters": [{"meter": "tokens", "units_per_credit": 1000}],
    "plans": [_plan("small", 100), _plan("large", 1000)],
}


@pytest.fixture
def acme(session) -> int:
    with session.begin():
        apply_catalog(session, parse_catalog(CATALOG))
        create_customer(session, "acme")
        return subscribe(session, "acme", "small", start=OCT).id


def _run(session, period: str = "2026-11") -> list:
    with session.begin():
        run_invoices(session, period)
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == period))
        return [(line.kind, line.quantity, line.amount) for line in invoice_lines(session, invoice)]


def _grants(session) -> list[tuple[D, datetime, datetime | None, str | None]]:
    with session.begin():
        rows = session.scalars(
            select(CreditEntryRecord).where(CreditEntryRecord.kind == "grant").order_by(CreditEntryRecord.id)
        )
        return [(r.amount, r.occurred_at, r.expires_at, r.reason) for r in rows]


def _change(session, subscription_id: int, plan: str, at: datetime) -> None:
    with session.begin():
        change_plan(session, subscription_id, plan, at=at)


def test_a_mid_month_switch_grants_both_plans_once(session, acme):
    _change(session, acme, "large", MID_NOV)
    for _ in range(2):  # a re-run grants nothing more
        _run(session)
    assert _grants(session) == [
        (D(100), NOV, DEC, "plan small credits for 2026-11"),
        (D(1000), MID_NOV, DEC, "plan large credits for 2026-11"),  # from when the plan starts
    ]


def test_the_second_plans_grant_is_not_lost_when_the_month_was_run_before_the_switch(session, acme):
    store(session, call("early", "acme", 80_000, NOV + timedelta(days=4)))
    _run(session)  # a mid-month draft: only the small plan so far
    _change(session, acme, "large", MID_NOV)
    store(session, call("late", "acme", 500_000, NOV + timedelta(days=19)))
    lines = _run(session)
    # 80 + 500 credits used, all covered: 100 from the small plan, 480 of the large plan's 1,000.
    # (Before, the switch found the month's one grant key taken: 480,000 tokens billed, $9.60.)
    assert [line for line in lines if line[0] == "usage"] == [("usage", D(580_000), D("0.00"))]
    assert [g[0] for g in _grants(session)] == [D(100), D(1000)]
    with session.begin():
        assert balance(session, "acme", "tokens", at=NOV + timedelta(days=25)).balance == D(520)


def test_the_same_plan_twice_in_a_month_grants_once(session, acme):
    _change(session, acme, "large", NOV + timedelta(days=9))
    _change(session, acme, "small", NOV + timedelta(days=19))
    _run(session)
    assert [(g[0], g[1]) for g in _grants(session)] == [
        (D(100), NOV),
        (D(1000), NOV + timedelta(days=9)),
    ]


def test_next_month_closes_once_and_grants_the_plan_it_is_on(session, acme):
    _change(session, acme, "large", MID_NOV)
    _run(session)
    _run(session, "2026-12")
    _run(session, "2026-12")
    with session.begin():
        rows = session.scalars(select(CreditEntryRecord).order_by(CreditEntryRecord.id))
        assert [(r.kind, r.amount) for r in rows] == [
            ("grant", D(100)), ("grant", D(1000)), ("expiry", D(-1100)), ("grant", D(1000)),
        ]  # fmt: skip


def test_a_month_granted_under_the_old_key_keeps_its_one_grant(session, acme):
    with session.begin():
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "acme"))
        meter_id = session.scalar(select(Meter.id).where(Meter.name == "tokens"))
        legacy = CreditEntry(
            EntryKind.GRANT,
            D(100),
            NOV,
            source=GrantSource.PLAN,
            expires_at=DEC,
            reason="plan credits for 2026-11",
        )
        add_entry(
            session, customer_id, meter_id, legacy, idempotency_key=f"grant:{customer_id}:{meter_id}:2026-11"
        )
    _change(session, acme, "large", MID_NOV)
    _run(session)
    assert [g[0] for g in _grants(session)] == [D(100)]
    with session.begin():
        assert plan_grant_written(session, customer_id, meter_id, "2026-11", "large")
        assert not plan_grant_written(session, customer_id, meter_id, "2026-12", "large")
    _run(session, "2026-12")
    assert [g[0] for g in _grants(session)] == [D(100), D(1000)]
