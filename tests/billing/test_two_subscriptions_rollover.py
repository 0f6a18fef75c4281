"""Two subscriptions in one month (one ends mid-month, the next starts): the subscription the month
starts on closes the previous grant period — at the month's start, with its own plan's rollover
limit — and each plan still grants its own credits once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from test_invoices_support import call, store

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.customers import create_customer
from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.models import CreditEntryRecord, InvoiceRecord
from spanledger.billing.subscriptions import cancel, subscribe

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
SWITCH = datetime(2026, 11, 16, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def _plan(code: str, credits: int, rollover_limit: int) -> dict:
    return {
        "code": code, "name": code.title(), "base_fee": 0,
        "prices": [{"meter": "tokens", "model": "per_unit", "unit_price": "0.02", "unit_size": 1000}],
        "credit_grants": [{"meter": "tokens", "credits": credits, "rollover_limit": rollover_limit}],
    }  # fmt: skip


CATALOG = {
    "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
    "credit_meters": [{"meter": "tokens", "units_per_credit": 1000}],
    "plans": [_plan("alpha", 100, 60), _plan("beta", 1000, 0)],
}


@pytest.fixture
def switched_mid_november(session) -> None:
    """acme on alpha since October (October run: 100 credits, unused); alpha ends Nov 16, beta starts."""
    with session.begin():
        apply_catalog(session, parse_catalog(CATALOG))
        create_customer(session, "acme")
        alpha = subscribe(session, "acme", "alpha", start=OCT)
    with session.begin():
        run_invoices(session, "2026-10")
    with session.begin():
        cancel(session, alpha.id, at=SWITCH, at_period_end=False)
        subscribe(session, "acme", "beta", start=SWITCH)


def _entries(session) -> list[tuple[str, D, datetime, datetime | None]]:
    rows = session.scalars(select(CreditEntryRecord).order_by(CreditEntryRecord.id))
    return [(r.kind, r.amount, r.occurred_at, r.expires_at) for r in rows if r.kind != "consumption"]


def test_the_month_start_subscription_closes_october_with_its_rollover_limit(session, switched_mid_november):
    for _ in range(2):  # a re-run writes nothing more
        with session.begin():
            run_invoices(session, "2026-11")
    with session.begin():
        assert _entries(session) == [
            ("grant", D(100), OCT, NOV),
            # Closed at November's start under alpha (limit 60), not at Nov 16 under beta (limit 0).
            ("expiry", D(-100), NOV, None),
            ("rollover", D(60), NOV, DEC),
            ("grant", D(100), NOV, DEC),
            ("grant", D(1000), SWITCH, SWITCH + timedelta(days=30)),
        ]


def test_early_november_usage_draws_on_the_rollover(session, switched_mid_november):
    # 150 credits on Nov 5: alpha's 100 for November and 50 of the 60 rolled over cover it all.
    store(session, call("early", "acme", 150_000, NOV + timedelta(days=4)))
    with session.begin():
        run_invoices(session, "2026-11")
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == "2026-11"))
        lines = invoice_lines(session, invoice)
    assert [(line.quantity, line.amount) for line in lines if line.kind == "usage"] == [
        (D(150_000), D("0.00")),  # alpha's usage line (Nov 1 – 16)
        (D(0), D("0.00")),  # beta's
    ]
