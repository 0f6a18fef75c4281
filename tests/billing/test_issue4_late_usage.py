"""Issue 4 gaps: late usage with credits, tokens merged into events already billed, and cost-plus
prices with credits and late events — all to the cent, and each billed once."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal as D

from credit_ledger_support import JAN, PER_UNIT, finalize_invoice, lines_of, run_period
from sqlalchemy import select
from test_invoices_support import DEC, NOV, WRITER, add_meter, add_plan, call, store, subscribe

from spanledger.billing.credits.service import balance
from spanledger.billing.invoices import explain
from spanledger.billing.models import CreditEntryRecord
from spanledger.billing.usage_event import UsageEvent

COST_PLUS = {"meter": "tokens", "model": "cost_plus", "markup_percent": "100"}


def _plan(price: dict, credits: int) -> dict:
    return {
        "code": "metered", "name": "Metered", "base_fee": "0", "prices": [price],
        "credit_grants": [{"meter": "tokens", "credits": str(credits)}],
    }  # fmt: skip


def _setup(session, plan: dict, credits_per: D | None = D(1000)) -> None:
    with session.begin():
        add_meter(session, credits_per)
        subscribe(session, "acme", add_plan(session, plan))


def _gpt4o(key: str, at: datetime, *, input_tokens: int | None = None, output_tokens: int | None = None):
    """A gpt-4o call: $2.50 per million input tokens, $10 per million output tokens upstream."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return UsageEvent(
        key, at, "acme", provider="openai", response_model="gpt-4o", input_tokens=input_tokens,
        output_tokens=output_tokens, trace_id=digest[:32], span_id=digest[32:48],
    )  # fmt: skip


def _explains(session, invoice, lines) -> bool:
    with session.begin():
        return all(
            explain(session, invoice, lines, line.position).matches
            for line in lines
            if line.kind in ("usage", "late_usage")
        )


def test_late_usage_bills_only_what_credits_did_not_cover(session):
    # 100 credits a month, 1 credit = 1,000 tokens, overage $0.02 per 1,000 tokens.
    _setup(session, _plan(PER_UNIT, 100))
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    november, lines = run_period(session, "2026-11")
    assert lines_of(lines, "usage") == [("usage", D(60_000), D("0.00"))]
    finalize_invoice(session, november)
    # 50,000 late tokens: November's credits still had 40 of 100 left, so 10,000 are overage.
    store(
        session,
        call("late-1", "acme", 30_000, NOV + timedelta(days=19)),
        call("late-2", "acme", 20_000, NOV + timedelta(days=24)),
        call("december", "acme", 100_000, DEC + timedelta(days=4)),
    )
    december, lines = run_period(session, "2026-12")
    assert lines_of(lines, "usage", "late_usage") == [
        # December's 100 credits cover December whole: the late overage is settled, not taken from them.
        ("usage", D(100_000), D("0.00")),
        ("late_usage", D(50_000), D("0.20")),
    ]
    late = lines[-1]
    assert D(late.details["credit_covered_units"]) == D(40_000)
    assert _explains(session, december, lines)
    finalize_invoice(session, december)
    with session.begin():
        settlements = [
            (r.amount, r.occurred_at)
            for r in session.scalars(select(CreditEntryRecord).where(CreditEntryRecord.kind == "adjustment"))
        ]
        assert settlements == [(D(10), DEC)]  # at the end of November, the month the usage belongs to
        # 100 − 60 − 50 + 10 (settled) + 100 − 100: nothing owed, nothing left.
        assert balance(session, "acme", "tokens", at=JAN).balance == D(0)
    _, january = run_period(session, "2027-01")
    assert lines_of(january, "late_usage") == []


def test_late_usage_fully_covered_by_credits_is_free(session):
    _setup(session, _plan(PER_UNIT, 100))
    store(session, call("on-time", "acme", 60_000, NOV + timedelta(days=9)))
    november, _ = run_period(session, "2026-11")
    finalize_invoice(session, november)
    store(session, call("late", "acme", 30_000, NOV + timedelta(days=19)))
    december, lines = run_period(session, "2026-12")
    assert lines_of(lines, "late_usage") == [("late_usage", D(30_000), D("0.00"))]
    assert _explains(session, december, lines)


def test_tokens_merged_into_a_billed_event_are_billed_once_as_late_usage(session):
    # Writer: 50,000 tokens included, $0.02 per 1,000 above.
    _setup(session, WRITER, credits_per=None)
    first = _gpt4o("call-1", NOV + timedelta(days=9), input_tokens=60_000)
    store(session, first)
    november, lines = run_period(session, "2026-11")
    assert lines_of(lines, "usage") == [("usage", D(60_000), D("0.20"))]
    finalize_invoice(session, november)
    # A second record of the same call fills the output count November's invoice did not have.
    store(session, _gpt4o("call-1", NOV + timedelta(days=9), input_tokens=60_000, output_tokens=40_000))
    december, lines = run_period(session, "2026-12")
    # price(100,000) − price(60,000) = 1.00 − 0.20
    assert lines_of(lines, "late_usage") == [("late_usage", D(40_000), D("0.80"))]
    assert lines[-1].details["event_count"] == 0 and lines[-1].details["restated_quantity"] == "100000"
    assert _explains(session, december, lines)
    _, again = run_period(session, "2026-12")
    assert lines_of(again, "late_usage") == [("late_usage", D(40_000), D("0.80"))]
    finalize_invoice(session, december)
    # Billed once: January sees nothing new for November, until a genuinely late event arrives.
    _, january = run_period(session, "2027-01")
    assert lines_of(january, "late_usage") == []
    store(session, _gpt4o("call-2", NOV + timedelta(days=20), input_tokens=10_000))
    _, january = run_period(session, "2027-01")
    assert lines_of(january, "late_usage") == [("late_usage", D(10_000), D("0.20"))]


def test_merged_tokens_and_late_events_share_one_line(session):
    _setup(session, WRITER, credits_per=None)
    store(session, _gpt4o("call-1", NOV + timedelta(days=9), input_tokens=60_000))
    november, _ = run_period(session, "2026-11")
    finalize_invoice(session, november)
    store(
        session,
        _gpt4o("call-1", NOV + timedelta(days=9), input_tokens=60_000, output_tokens=5_000),
        _gpt4o("call-2", NOV + timedelta(days=20), input_tokens=5_000),
    )
    december, lines = run_period(session, "2026-12")
    assert lines_of(lines, "late_usage") == [("late_usage", D(10_000), D("0.20"))]
    assert lines[-1].details["event_count"] == 1
    assert _explains(session, december, lines)


def test_cost_plus_credits_take_off_the_cost_of_the_events_they_covered(session):
    # 50 credits: the first call (40,000 input tokens, $0.10 upstream) is covered whole, the second
    # (40,000 output tokens, $0.40) for 10 of its 40 credits: covered cost 0.10 + 0.40 × 1/4 = 0.20.
    _setup(session, _plan(COST_PLUS, 50))
    store(
        session,
        _gpt4o("input", NOV + timedelta(days=1), input_tokens=40_000),
        _gpt4o("output", NOV + timedelta(days=2), output_tokens=40_000),
    )
    november, lines = run_period(session, "2026-11")
    usage = lines[0]
    # (0.50 − 0.20) × (1 + 100%) = 0.60; pro rata of the units it would have been 0.375 → 0.38.
    assert (usage.quantity, usage.upstream_cost, usage.amount) == (D(80_000), D("0.5"), D("0.60"))
    assert D(usage.details["credit_covered_cost"]) == D("0.2")
    assert _explains(session, november, lines)
    finalize_invoice(session, november)
    # A late call (20,000 input tokens, $0.05): no credit left, billed at cost × 2.
    store(session, _gpt4o("late", NOV + timedelta(days=20), input_tokens=20_000))
    december, lines = run_period(session, "2026-12")
    assert lines_of(lines, "late_usage") == [("late_usage", D(20_000), D("0.10"))]
    assert lines[-1].upstream_cost == D("0.05")
    assert _explains(session, december, lines)


def test_cost_plus_late_event_partly_covered_by_credits(session):
    # 90 credits: November's 80,000 tokens leave 10; the late call's 20 credits are half covered,
    # so half its $0.05 is billed: 0.025 × 2 = 0.05.
    _setup(session, _plan(COST_PLUS, 90))
    store(
        session,
        _gpt4o("input", NOV + timedelta(days=1), input_tokens=40_000),
        _gpt4o("output", NOV + timedelta(days=2), output_tokens=40_000),
    )
    november, lines = run_period(session, "2026-11")
    assert lines_of(lines, "usage") == [("usage", D(80_000), D("0.00"))]
    finalize_invoice(session, november)
    store(session, _gpt4o("late", NOV + timedelta(days=20), input_tokens=20_000))
    december, lines = run_period(session, "2026-12")
    late = lines[-1]
    assert (late.kind, late.quantity, late.amount) == ("late_usage", D(20_000), D("0.05"))
    assert D(late.details["credit_covered_units"]) == D(10_000)
    assert D(late.details["late_covered_cost"]) == D("0.025")
    assert _explains(session, december, lines)


def test_an_event_attributed_after_its_month_was_finalized_is_late_usage(session):
    _setup(session, WRITER, credits_per=None)
    store(session, _gpt4o("call-1", NOV + timedelta(days=9), input_tokens=60_000))
    unattributed = _gpt4o("call-2", NOV + timedelta(days=12), input_tokens=20_000)
    store(session, UsageEvent(**{**_fields(unattributed), "customer_external_id": None}))
    november, lines = run_period(session, "2026-11")
    assert lines_of(lines, "usage") == [("usage", D(60_000), D("0.20"))]
    finalize_invoice(session, november)
    # The second record of call-2 names the customer: the stored event is attributed to acme.
    store(session, unattributed)
    december, lines = run_period(session, "2026-12")
    assert lines_of(lines, "late_usage") == [("late_usage", D(20_000), D("0.40"))]
    assert _explains(session, december, lines)


def _fields(event: UsageEvent) -> dict:
    return {name: getattr(event, name) for name in event.__dataclass_fields__}
