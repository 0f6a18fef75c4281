from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spanledger.billing.errors import ConflictError, ImmutableInvoiceError
from spanledger.billing.invoices import (
    LateUsageInput,
    LineKind,
    UsageInput,
    base_fee_line,
    check_editable,
    check_transition,
    credits_line,
    format_number,
    invoice_totals,
    late_usage_line,
    usage_line,
)
from spanledger.billing.margins import TimeBucket, allocate, bucket_start, margin_rows
from spanledger.billing.plans import Plan
from spanledger.billing.pricing import Graduated, PerUnit, Price, Tier, price_usage
from spanledger.billing.subscriptions import Period, PlanSegment, base_fee_charges

WRITER_TOKENS = Price(PerUnit(D("0.02"), unit_size=D(1000)), included_units=D(50_000))


def test_usage_line_prices_only_what_credits_did_not_cover():
    line = usage_line(
        UsageInput("tokens", WRITER_TOKENS, D(300_000), D("0.9"), credit_covered_units=D(100_000))
    )
    # 300K used, 100K paid by credits, 50K included → 150K × 0.02/1K
    assert (line.kind, line.quantity, line.amount) == (LineKind.USAGE, D(300_000), D("3.00"))
    assert line.details["credit_covered_units"] == "100000"


def test_invoice_totals_are_sums_of_rounded_lines_and_keep_cost_for_the_admin():
    nov = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    writer = Plan("writer", "Writer", "USD", D(29))
    fees = [
        base_fee_line(c, "USD") for c in base_fee_charges([PlanSegment(writer, nov.start)], nov, nov.start)
    ]
    usage = usage_line(UsageInput("tokens", WRITER_TOKENS, D(175_333), D("1.234567")))
    lines = [*fees, usage, credits_line("tokens", D(10), D(10_000), "USD")]
    totals = invoice_totals(lines, "USD")
    assert usage.amount == D("2.51")  # 125,333 × 0.02 / 1000 = 2.50666 → 2.51
    assert totals.total == D("31.51")
    assert totals.upstream_cost == D("1.234567")
    assert totals.margin == D("30.275433")


def test_late_usage_is_the_difference_it_makes_to_the_original_month():
    graduated = Price(Graduated((Tier(D(100), D(1)), Tier(None, D("0.5")))))
    original = price_usage(graduated, D(90))
    late = late_usage_line(LateUsageInput("calls", "2026-10", graduated, D(90), original.exact_amount, D(20)))
    # 90 + 20 = 110 → 100 + 5 = 105; October billed 90 → late line 15
    assert (late.kind, late.quantity, late.amount) == (LineKind.LATE_USAGE, D(20), D("15.00"))
    assert "late usage for 2026-10" in late.description


def test_lifecycle():
    check_transition("draft", "finalized")
    check_transition("finalized", "paid")
    check_transition("finalized", "void")
    with pytest.raises(ConflictError, match="it can become nothing"):
        check_transition("paid", "void")
    with pytest.raises(ConflictError):
        check_transition("draft", "paid")
    check_editable("draft")
    with pytest.raises(ImmutableInvoiceError, match="finalized"):
        check_editable("finalized")
    assert format_number("USD", 42) == "USD-000042"


def test_margin_rows_and_negative_margin():
    rows = margin_rows([("acme", D(100), D(40), 0), ("beta", D(10), D(12), 2), ("acme", D(50), D(5), 1)])
    acme, beta = rows
    assert (acme.revenue, acme.upstream_cost, acme.gross_margin, acme.margin_percent) == (
        D(150),
        D(45),
        D(105),
        D("70.00"),
    )
    assert acme.unknown_cost_events == 1
    assert beta.negative and beta.margin_percent == D("-20.00")
    assert margin_rows([("x", D(0), D(1), 0)])[0].margin_percent is None


def test_time_buckets():
    moment = datetime(2026, 11, 19, 23, tzinfo=UTC)  # a Thursday
    assert bucket_start(moment, TimeBucket.DAY) == date(2026, 11, 19)
    assert bucket_start(moment, TimeBucket.WEEK) == date(2026, 11, 16)
    assert bucket_start(moment, TimeBucket.MONTH) == date(2026, 11, 1)


@given(
    st.integers(min_value=0, max_value=10**7).map(lambda cents: D(cents).scaleb(-2)),
    st.lists(st.integers(min_value=0, max_value=10**6).map(D), min_size=1, max_size=20),
)
def test_allocation_adds_up_to_the_line_in_whole_cents(amount, weights):
    parts = allocate(amount, weights, "USD")
    assert sum(parts) == amount
    assert all(p == p.quantize(D("0.01")) and p >= 0 for p in parts)
