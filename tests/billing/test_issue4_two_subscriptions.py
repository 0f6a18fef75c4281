"""Issue 4 gap: a customer whose subscription ended mid-month and who subscribed again the same month
gets one invoice with both subscriptions, and no usage is billed twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import select
from test_invoices_support import NOV, WRITER, add_meter, add_plan, call, store

from spanledger.billing.customers import create_customer
from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.models import InvoiceRecord
from spanledger.billing.subscriptions import cancel, subscribe

SWITCH = datetime(2026, 11, 16, tzinfo=UTC)
PRO = {
    "code": "pro", "name": "Pro", "base_fee": "60",
    "prices": [{"meter": "tokens", "model": "per_unit", "unit_price": "0.01", "unit_size": 1000}],
}  # fmt: skip


def _switch_plans_mid_november(session, second_plan: dict) -> None:
    with session.begin():
        add_meter(session)
        add_plan(session, WRITER)
        add_plan(session, second_plan)
        create_customer(session, "acme")
        first = subscribe(session, "acme", "writer", start=datetime(2026, 10, 1, tzinfo=UTC))
        cancel(session, first.id, at=SWITCH, at_period_end=False)
        # Allowed at creation: the first subscription has ended. Anchor (default): the start, Nov 16.
        subscribe(session, "acme", second_plan["code"], start=SWITCH)


def _invoice(session, period: str):
    with session.begin():
        summary = run_invoices(session, period)
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == period))
        return summary, invoice, invoice_lines(session, invoice) if invoice else []


def test_both_subscriptions_are_billed_on_the_one_invoice_of_the_month(session):
    _switch_plans_mid_november(session, PRO)
    store(
        session,
        call("writer-time", "acme", 30_000, NOV + timedelta(days=4)),
        call("pro-time", "acme", 70_000, SWITCH + timedelta(days=4)),
        # In Pro's first billing month (Nov 16 – Dec 16), although in December.
        call("pro-december", "acme", 10_000, datetime(2026, 12, 10, tzinfo=UTC)),
    )
    summary, invoice, lines = _invoice(session, "2026-11")
    assert summary.skipped == [] and summary.created == 1
    assert [(line.kind, line.description, line.quantity, line.amount) for line in lines] == [
        # 15 of November's 30 days on Writer: 29 × 1/2; its 50,000 included tokens cover 30,000.
        ("base_fee", "Writer base fee (prorated)", D(1), D("14.50")),
        ("usage", "tokens usage", D(30_000), D("0.00")),
        ("base_fee", "Pro base fee", D(1), D("60.00")),
        ("usage", "tokens usage", D(80_000), D("0.80")),
    ]
    assert [(line.window_start, line.window_end) for line in lines if line.kind == "usage"] == [
        (NOV, SWITCH), (SWITCH, datetime(2026, 12, 16, tzinfo=UTC)),
    ]  # fmt: skip
    assert invoice.total == D("75.30")
    assert (invoice.period_start, invoice.period_end) == (NOV, datetime(2026, 12, 16, tzinfo=UTC))

    # December: only Pro (Dec 16 – Jan 16); the Dec 10 call was billed in November, not again.
    summary, december, lines = _invoice(session, "2026-12")
    assert summary.skipped == []
    assert [(line.description, line.quantity, line.amount) for line in lines] == [
        ("Pro base fee", D(1), D("60.00")),
        ("tokens usage", D(0), D("0.00")),
    ]
    assert december.subscription_id == invoice.subscription_id  # the subscription the month ends on


def test_rerunning_the_combined_month_changes_nothing(session):
    _switch_plans_mid_november(session, PRO)
    store(session, call("pro-time", "acme", 70_000, SWITCH + timedelta(days=4)))
    _, first, lines = _invoice(session, "2026-11")
    summary, again, lines_again = _invoice(session, "2026-11")
    assert summary.updated == 1 and again.id == first.id
    assert [(line.description, line.amount) for line in lines_again] == [
        (line.description, line.amount) for line in lines
    ]


def test_subscriptions_in_two_currencies_in_one_month_are_skipped_with_the_reason(session):
    euro = {"code": "euro", "name": "Euro", "base_fee": "10", "currency": "EUR"}
    _switch_plans_mid_november(session, euro)
    summary, invoice, _ = _invoice(session, "2026-11")
    assert invoice is None
    assert [(o.customer, o.reason) for o in summary.skipped] == [
        ("acme", "its subscriptions this month bill in EUR and USD")
    ]
