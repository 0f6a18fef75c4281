"""invoices run: one draft per subscribed customer, priced to the cent, idempotent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from test_invoices_support import (
    DEC,
    GRADUATED,
    NOV,
    add_plan,
    call,
    store,
    subscribe,
    writer_setup,
)

from spanledger.billing.credits.service import grant_once
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.models import InvoiceLineRecord, InvoiceRecord


def _only_invoice(session):
    invoices = list(session.scalars(select(InvoiceRecord)))
    assert len(invoices) == 1
    return invoices[0], invoice_lines(session, invoices[0])


def test_writer_plan_end_to_end_to_the_cent(session):
    writer_setup(session)
    store(
        session,
        call("a", "acme", 600_000, NOV + timedelta(days=2)),
        call("b", "acme", 634_567, NOV + timedelta(days=20)),
        call("october", "acme", 9_999_999, NOV - timedelta(seconds=1)),
        call("december", "acme", 9_999_999, DEC),
    )
    with session.begin():
        summary = run_invoices(session, "2026-11")
    assert (summary.created, summary.updated, summary.skipped) == (1, 0, [])
    invoice, lines = _only_invoice(session)
    assert [(line.kind, line.description, line.amount) for line in lines] == [
        ("base_fee", "Writer base fee", D("29.00")),
        # 1,234,567 tokens − 50,000 included = 1,184,567 × $0.02 / 1,000 = 23.69134 → 23.69
        ("usage", "tokens usage", D("23.69")),
    ]
    usage = lines[1]
    assert usage.quantity == D(1_234_567) and usage.unit_amount == D("0.02")
    assert usage.exact_amount == "23.69134"
    assert (invoice.status, invoice.currency, invoice.period) == ("draft", "USD", "2026-11")
    assert invoice.subtotal == invoice.total == D("52.69")
    # gpt-4o input at $2.50 per million: cost and margin stay on the invoice, never as a line.
    assert invoice.upstream_cost == D("3.0864175")
    assert invoice.margin == D("52.69") - D("3.0864175")
    assert all("cost" not in line.description for line in lines)
    # The audit trail: customer, meter filter, window and the highest sequence included.
    assert (usage.window_start, usage.window_end) == (NOV, DEC)
    assert usage.meter_snapshot["name"] == "tokens" and usage.meter_snapshot["field"] == "total_tokens"
    assert usage.after_sequence is None and usage.max_sequence == 4
    assert usage.details["event_count"] == 2 and usage.details["highest_sequence_included"] == 2


def test_graduated_example_gives_30_50(session):
    with session.begin():
        from test_invoices_support import add_meter

        add_meter(session)
        subscribe(session, "big", add_plan(session, GRADUATED))
    store(session, call("x", "big", 2_500_000, NOV + timedelta(days=1)))
    with session.begin():
        run_invoices(session, "2026-11")
    invoice, lines = _only_invoice(session)
    assert [line.amount for line in lines] == [D("30.50")]
    tiers = lines[0].details["tiers"]
    assert [(t["quantity"], t["amount"]) for t in tiers] == [
        ("100000", "2.00"), ("900000", "13.500"), ("1500000", "15.00")
    ]  # fmt: skip
    assert invoice.total == D("30.50")


def test_credits_are_applied_before_pricing(session):
    writer_setup(session, credits_per=D(1000))
    with session.begin():
        grant_once(session, "acme", "tokens", D(500), at=NOV, reason="welcome")
    store(session, call("a", "acme", 1_050_000, NOV + timedelta(days=3)))
    with session.begin():
        run_invoices(session, "2026-11")
    invoice, lines = _only_invoice(session)
    kinds = [(line.kind, line.amount) for line in lines]
    # 500 credits × 1,000 tokens cover 500,000 tokens; 550,000 − 50,000 included = 500,000 × 0.02/1K.
    assert kinds == [("base_fee", D("29.00")), ("usage", D("10.00")), ("credits", D("0.00"))]
    assert D(lines[1].details["credit_covered_units"]) == D(500_000)
    assert lines[2].quantity == D(500) and lines[2].description == "tokens credits applied"
    assert invoice.total == D("39.00")


def test_rerun_updates_the_draft_without_duplicates(session):
    writer_setup(session)
    store(session, call("a", "acme", 150_000, NOV + timedelta(days=1)))
    with session.begin():
        first = run_invoices(session, "2026-11")
    store(session, call("b", "acme", 100_000, NOV + timedelta(days=2)))
    with session.begin():
        second = run_invoices(session, "2026-11")
    with session.begin():
        third = run_invoices(session, "2026-11")
    assert (first.created, second.updated, third.updated) == (1, 1, 1)
    assert first.totals == {"USD": D("31.00")} and second.totals == third.totals == {"USD": D("33.00")}
    assert session.scalar(select(func.count()).select_from(InvoiceRecord)) == 1
    assert session.scalar(select(func.count()).select_from(InvoiceLineRecord)) == 2


def test_summary_lists_skipped_customers_and_why(session):
    writer_setup(session)
    store(session, call("stray", "nobody", 10, NOV + timedelta(days=1)))
    with session.begin():
        summary = run_invoices(session, "2026-11")
    assert [(o.customer, o.reason) for o in summary.skipped] == [
        ("nobody", "has usage but no subscription in 2026-11")
    ]
    assert summary.to_json()["totals"] == {"USD": "29.00"}
    assert summary.to_json()["skipped"] == [
        {"customer": "nobody", "reason": "has usage but no subscription in 2026-11"}
    ]


def test_a_subscription_that_started_later_is_not_billed(session):
    with session.begin():
        from test_invoices_support import WRITER, add_meter

        add_meter(session)
        subscribe(session, "later", add_plan(session, WRITER), start=DEC)
    with session.begin():
        summary = run_invoices(session, "2026-11")
    assert summary.outcomes == []


@pytest.mark.parametrize("period", ["2026-13", "11-2026", ""])
def test_a_bad_period_is_one_sentence(session, period):
    with pytest.raises(ConfigurationError, match="YYYY-MM"):
        run_invoices(session, period)


TEAM = {
    "code": "team",
    "name": "Team",
    "base_fee": "99",
    "seats": {"included": 5, "price_per_seat": "10"},
    "prices": [
        {
            "meter": "tokens",
            "model": "per_unit",
            "unit_price": "0.015",
            "unit_size": 1000,
            "included_units": 250000,
        }
    ],
}


def test_mid_month_plan_change_prorates_base_fee_and_seats_but_not_usage(session):
    from spanledger.billing.models import SubscriptionPhase, SubscriptionRecord

    writer_setup(session)
    change = NOV + timedelta(days=15)
    with session.begin():
        team = add_plan(session, TEAM)
        phase = session.scalar(select(SubscriptionPhase))
        phase.end = change
        session.add(SubscriptionPhase(subscription_id=phase.subscription_id, plan_id=team.id, start=change))
        session.scalar(select(SubscriptionRecord)).seats = 7
    store(session, call("a", "acme", 1_250_000, NOV + timedelta(days=1)))
    with session.begin():
        run_invoices(session, "2026-11")
    invoice, lines = _only_invoice(session)
    assert [(line.description, line.amount) for line in lines] == [
        ("Writer base fee (prorated)", D("14.50")),
        ("Team base fee (prorated)", D("49.50")),
        ("Team extra seats (prorated)", D("10.00")),
        # The whole month's usage under Team: (1,250,000 − 250,000) × 0.015 / 1,000 = 15.00
        ("tokens usage", D("15.00")),
    ]
    assert invoice.total == D("89.00")


def test_a_credit_pack_bought_in_the_month_is_a_line(session):
    from spanledger.billing.credits import CreditPack
    from spanledger.billing.credits.service import purchase_pack

    writer_setup(session, credits_per=D(1000))
    with session.begin():
        starter = CreditPack("starter", "Starter", "tokens", D(10_000), D(29))
        purchase_pack(session, "acme", starter, at=NOV + timedelta(days=4))
    with session.begin():
        run_invoices(session, "2026-11")
    _, lines = _only_invoice(session)
    assert [(line.kind, line.description, line.amount) for line in lines] == [
        ("base_fee", "Writer base fee", D("29.00")),
        ("credit_pack", "Credit pack Starter", D("29.00")),  # the name it was sold under
        ("usage", "tokens usage", D("0.00")),
    ]


def test_a_plan_pricing_a_missing_meter_skips_the_customer_with_the_reason(session):
    with session.begin():
        subscribe(session, "acme", add_plan(session, GRADUATED))
    with session.begin():
        summary = run_invoices(session, "2026-11")
    assert [(o.customer, o.reason) for o in summary.skipped] == [
        ("acme", "plan graduated prices meter 'tokens', which does not exist")
    ]
    assert session.scalar(select(func.count()).select_from(InvoiceRecord)) == 0
