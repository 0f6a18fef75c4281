"""Issue 4 gaps: credit grant rules honour ``every``, pack lines show the pack's name, subscriptions
can be listed by status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from billing_cli_support import EXAMPLE_CATALOG
from billing_cli_support import cli_json as ok_json
from billing_cli_support import run_cli as run
from sqlalchemy import select
from test_invoices_support import NOV, add_meter, add_plan, call, store, subscribe

from spanledger.billing.credits import CreditPack
from spanledger.billing.credits.service import balance, purchase_pack
from spanledger.billing.errors import ConflictError
from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.models import CreditEntryRecord, CreditPackRecord, InvoiceRecord
from spanledger.billing.subscriptions import SubscriptionStatus, cancel, list_subscriptions

JAN = datetime(2027, 1, 1, tzinfo=UTC)
NOV_2027 = datetime(2027, 11, 1, tzinfo=UTC)
TOKENS = {"meter": "tokens", "model": "per_unit", "unit_price": "0.02", "unit_size": 1000}


def _yearly(grants: list[dict]) -> dict:
    return {
        "code": "yearly", "name": "Yearly", "base_fee": "300", "interval": "year",
        "prices": [TOKENS], "credit_grants": grants,
    }  # fmt: skip


def _grants(session) -> list[tuple[D, datetime, datetime | None]]:
    with session.begin():
        rows = session.scalars(
            select(CreditEntryRecord).where(CreditEntryRecord.kind == "grant").order_by(CreditEntryRecord.id)
        )
        return [(r.amount, r.occurred_at, r.expires_at) for r in rows]


def _run_months(session, *labels: str) -> None:
    for label in labels:
        with session.begin():
            run_invoices(session, label)


def test_a_yearly_plan_grants_monthly_credits_every_month(session):
    with session.begin():
        add_meter(session, credits_per=D(1000))
        subscribe(session, "acme", add_plan(session, _yearly([{"meter": "tokens", "credits": "100"}])), NOV)
    _run_months(session, "2026-11", "2026-12", "2026-12")
    assert _grants(session) == [
        (D(100), NOV, datetime(2026, 12, 1, tzinfo=UTC)),
        (D(100), datetime(2026, 12, 1, tzinfo=UTC), JAN),
    ]


def test_a_yearly_grant_rule_grants_once_per_yearly_term(session):
    grants = [{"meter": "tokens", "credits": "1200", "every": "year", "rollover_limit": "50"}]
    with session.begin():
        add_meter(session, credits_per=D(1000))
        subscribe(session, "acme", add_plan(session, _yearly(grants)), NOV)
    store(session, call("a", "acme", 200_000, NOV + timedelta(days=3)))
    _run_months(session, "2026-11", "2026-12", "2027-01", "2026-11")
    # One grant for the term Nov 2026 – Nov 2027, valid all term; usage of later months draws on it.
    assert _grants(session) == [(D(1200), NOV, NOV_2027)]
    with session.begin():
        assert balance(session, "acme", "tokens", at=JAN).balance == D(1000)
    # The next term closes the first (expiry, rollover up to 50) and grants again, once.
    _run_months(session, "2027-11", "2027-12")
    kinds = [
        (r.kind, r.amount)
        for r in session.scalars(select(CreditEntryRecord).order_by(CreditEntryRecord.id))
        if r.kind != "consumption"
    ]
    assert kinds == [
        ("grant", D(1200)), ("expiry", D(-1000)), ("rollover", D(50)), ("grant", D(1200)),
    ]  # fmt: skip


def test_a_monthly_plan_may_grant_yearly(session):
    plan = {
        "code": "monthly", "name": "Monthly", "base_fee": "10", "prices": [TOKENS],
        "credit_grants": [{"meter": "tokens", "credits": "500", "every": "year"}],
    }  # fmt: skip
    with session.begin():
        add_meter(session, credits_per=D(1000))
        subscribe(session, "acme", add_plan(session, plan), NOV)
    _run_months(session, "2026-12", "2026-11", "2027-02")
    assert _grants(session) == [(D(500), NOV, NOV_2027)]


def test_a_pack_line_shows_the_catalog_name(session):
    with session.begin():
        add_meter(session, credits_per=D(1000))
        subscribe(session, "acme", add_plan(session, {"code": "free", "name": "Free", "base_fee": "0"}), NOV)
        pro = CreditPack("pro", "Pro 100,000 credits", "tokens", D(100_000), D(199))
        session.add(
            CreditPackRecord(
                code="pro", definition={"code": "pro", "name": pro.name, "meter": "tokens"}, updated_at=NOV
            )
        )
        session.flush()
        purchase_pack(session, "acme", pro, at=NOV + timedelta(days=2))
        # A pack that is no longer in the catalog is described by the name it was sold under.
        gone = CreditPack("gone", "Gone", "tokens", D(10), D(1))
        purchase_pack(session, "acme", gone, at=NOV + timedelta(days=3))
    _run_months(session, "2026-11")
    invoice = session.scalars(select(InvoiceRecord)).one()
    lines = invoice_lines(session, invoice)
    packs = [(line.description, line.amount, line.details["pack"]) for line in lines]
    assert packs == [
        ("Credit pack Pro 100,000 credits", D("199.00"), "pro"),
        ("Credit pack Gone", D("1.00"), "gone"),
    ]


@pytest.fixture
def three_subscriptions(session):
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with session.begin():
        plan = add_plan(session, {"code": "free", "name": "Free", "base_fee": "0"})
        for customer in ("active", "leaving", "gone"):
            subscribe(session, customer, plan, NOV)
        records = list_subscriptions(session)
        cancel(session, records[1].id, at=now)  # ends at the end of November
        cancel(session, records[2].id, at=now, at_period_end=False)
    return now


@pytest.mark.parametrize(
    ("status", "customers"),
    [
        (SubscriptionStatus.ACTIVE, [0]),
        ("canceled_at_period_end", [1]),
        (SubscriptionStatus.CANCELED, [2]),
        (None, [0, 1, 2]),
    ],
)
def test_list_subscriptions_by_status(session, three_subscriptions, status, customers):
    with session.begin():
        every = list_subscriptions(session)
        found = list_subscriptions(session, status=status, now=three_subscriptions + timedelta(days=1))
    assert [r.id for r in found] == [every[i].id for i in customers]


def test_status_is_judged_at_the_given_moment(session, three_subscriptions):
    with session.begin():
        later = list_subscriptions(session, status="canceled", now=datetime(2026, 12, 2, tzinfo=UTC))
        before = list_subscriptions(session, status="active", now=datetime(2026, 10, 2, tzinfo=UTC))
        with pytest.raises(ConflictError, match="unknown subscription status 'paused'"):
            list_subscriptions(session, status="paused")
    assert len(later) == 2 and before == []


def test_cli_lists_subscriptions_by_status(database_url):
    assert run(database_url, "db", "upgrade").exit_code == 0
    assert run(database_url, "apply", str(EXAMPLE_CATALOG)).exit_code == 0
    for customer in ("a", "b"):
        assert run(database_url, "customers", "create", customer).exit_code == 0
        ok_json(database_url, "subscriptions", "create", customer, "writer", "--start", "2024-11-01")
    ok_json(database_url, "subscriptions", "cancel", "2", "--at", "2024-11-20", "--now")
    active = ok_json(database_url, "subscriptions", "list", "--status", "active")
    canceled = ok_json(database_url, "subscriptions", "list", "--status", "canceled")
    assert [s["customer"] for s in active] == ["a"] and [s["customer"] for s in canceled] == ["b"]
    bad = run(database_url, "subscriptions", "list", "--status", "paused")
    assert bad.exit_code == 2 and "paused" in bad.output
