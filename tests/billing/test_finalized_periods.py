"""Nothing takes effect inside the billing of an invoice that is no longer a draft: plan and seat
changes, cancellations, backdated subscriptions, pack purchases and grants are refused with a
one-sentence error naming the invoice and the earliest allowed date (Python API and CLI)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml
from billing_cli_support import run_cli
from catalog_support import catalog_with_customer
from sqlalchemy import select

from spanledger.billing.credits import CreditPack
from spanledger.billing.credits.service import grant_once, purchase_pack
from spanledger.billing.customers import create_customer
from spanledger.billing.errors import ConflictError, FinalizedPeriodError
from spanledger.billing.invoices import finalize, invoice_lines, pay, run_invoices, void
from spanledger.billing.models import CreditEntryRecord, InvoiceRecord
from spanledger.billing.subscriptions import cancel, change_plan, subscribe, subscription_view

OCT_20 = datetime(2026, 10, 20, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
MID_NOV = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, tzinfo=UTC)
DEC_20 = datetime(2026, 12, 20, tzinfo=UTC)

CATALOG = {
    "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
    "credit_meters": [{"meter": "tokens", "units_per_credit": 1000}],
    "plans": [
        {"code": "writer", "name": "Writer", "base_fee": 29},
        {"code": "team", "name": "Team", "base_fee": 99, "seats": {"included": 5, "price_per_seat": 12}},
        {"code": "annual", "name": "Annual", "base_fee": 990, "interval": "year"},
    ],
    "credit_packs": [
        {"code": "starter", "name": "Starter", "meter": "tokens", "credits": 10000, "price": 29}
    ],
}
STARTER = CreditPack("starter", "Starter", "tokens", Decimal(10000), Decimal(29))


@pytest.fixture
def catalog(session):
    return catalog_with_customer(session, CATALOG)


def _close(session, *steps) -> InvoiceRecord:
    """Run November and apply ``steps`` (default: finalize) to its invoice."""
    run_invoices(session, "2026-11")
    invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == "2026-11"))
    assert invoice is not None
    for step in steps or (finalize,):
        step(session, invoice.id)
    return invoice


def _refused(call, *, invoice: str, earliest: datetime) -> str:
    with pytest.raises(FinalizedPeriodError) as caught:
        call()
    assert (caught.value.invoice, caught.value.earliest) == (invoice, earliest)
    message = str(caught.value)
    assert invoice in message and earliest.date().isoformat() in message
    assert message.count(";") == 1 and "\n" not in message  # one sentence
    return message


def test_plan_change_inside_a_finalized_month_is_refused(catalog):
    record = subscribe(catalog, "acme", "writer", start=NOV)
    november = _close(catalog)
    lines_before = [(line.description, line.amount) for line in invoice_lines(catalog, november)]
    message = _refused(
        lambda: change_plan(catalog, record.id, "team", at=MID_NOV), invoice="USD-000001", earliest=DEC
    )
    assert message == (
        f"changing subscription {record.id} to plan 'team' at 2026-11-16 would change what invoice "
        "USD-000001 (2026-11, finalized) billed; the earliest allowed date is 2026-12-01"
    )
    # Nothing was written: still one phase, the finalized invoice as it was.
    assert [p.plan for p in subscription_view(catalog, record, now=DEC).phases] == ["writer"]
    assert [(line.description, line.amount) for line in invoice_lines(catalog, november)] == lines_before
    # From the end of the closed month on, the change is accepted and billed on December's draft.
    assert change_plan(catalog, record.id, "team", at=DEC) == DEC
    assert [p.plan for p in subscription_view(catalog, record, now=DEC).phases] == ["writer", "team"]


def test_a_draft_month_still_takes_changes(catalog):
    record = subscribe(catalog, "acme", "writer", start=NOV)
    run_invoices(catalog, "2026-11")
    assert change_plan(catalog, record.id, "team", at=MID_NOV) == MID_NOV


@pytest.mark.parametrize("how", [pay, void])
def test_paid_and_void_invoices_close_their_month_too(catalog, how):
    record = subscribe(catalog, "acme", "writer", start=NOV)
    _close(catalog, finalize, how)
    status = "paid" if how is pay else "void"
    message = _refused(
        lambda: cancel(catalog, record.id, at=MID_NOV, at_period_end=False),
        invoice="USD-000001",
        earliest=DEC,
    )
    assert f"(2026-11, {status})" in message


def test_a_voided_draft_is_named_by_its_id(catalog):
    record = subscribe(catalog, "acme", "writer", start=NOV)
    invoice = _close(catalog, void)
    _refused(
        lambda: change_plan(catalog, record.id, "team", at=MID_NOV), invoice=f"#{invoice.id}", earliest=DEC
    )


def test_cancel_now_inside_a_finalized_month_is_refused_but_at_its_end_is_harmless(catalog):
    record = subscribe(catalog, "acme", "writer", start=NOV)
    _close(catalog)
    message = _refused(
        lambda: cancel(catalog, record.id, at=MID_NOV, at_period_end=False),
        invoice="USD-000001",
        earliest=DEC,
    )
    assert message.startswith(f"ending subscription {record.id} at 2026-11-16 would change")
    assert record.ends_at is None
    # Canceling at the end of that month ends it on Dec 1: November bills the same either way.
    assert cancel(catalog, record.id, at=MID_NOV) == DEC


def test_seat_change_inside_a_finalized_month_is_refused(catalog):
    record = subscribe(catalog, "acme", "team", start=NOV, seats=5)
    _close(catalog)
    message = _refused(
        lambda: change_plan(catalog, record.id, "team", at=MID_NOV, seats=8),
        invoice="USD-000001",
        earliest=DEC,
    )
    assert "with 8 seats" in message
    assert record.seats == 5
    change_plan(catalog, record.id, "team", at=DEC, seats=8)
    assert record.seats == 8


def test_a_change_scheduled_for_the_end_of_a_yearly_term_is_judged_by_when_it_takes_effect(catalog):
    record = subscribe(catalog, "acme", "annual", start=NOV)
    _close(catalog)
    # Asked for inside the finalized November, but it takes effect when the term ends (Nov 2027).
    assert change_plan(catalog, record.id, "writer", at=MID_NOV) == datetime(2027, 11, 1, tzinfo=UTC)


def test_a_subscription_backdated_into_a_finalized_month_is_refused(catalog):
    record = subscribe(catalog, "acme", "writer", start=NOV)
    cancel(catalog, record.id, at=MID_NOV, at_period_end=False)
    _close(catalog)
    message = _refused(
        lambda: subscribe(catalog, "acme", "team", start=NOV_20), invoice="USD-000001", earliest=DEC
    )
    assert message.startswith("subscribing 'acme' to plan 'team' at 2026-11-20 would change")
    # An earlier anchor puts the new subscription's first billing month (Nov 20 – Dec 20) on the
    # finalized November invoice: its start must wait for that month's end.
    _refused(
        lambda: subscribe(catalog, "acme", "team", start=DEC_5, anchor=OCT_20),
        invoice="USD-000001",
        earliest=DEC_20,
    )
    assert subscribe(catalog, "acme", "team", start=DEC).started_at == DEC


def test_a_customer_without_closed_invoices_may_be_backdated(catalog):
    create_customer(catalog, "globex")
    subscribe(catalog, "acme", "writer", start=NOV)
    _close(catalog)
    assert subscribe(catalog, "globex", "writer", start=NOV).started_at == NOV


def test_pack_purchases_and_grants_dated_inside_a_finalized_month_are_refused(catalog):
    subscribe(catalog, "acme", "writer", start=NOV)
    _close(catalog)
    message = _refused(
        lambda: purchase_pack(catalog, "acme", STARTER, at=NOV_20), invoice="USD-000001", earliest=DEC
    )
    assert message.startswith("buying pack 'starter' for 'acme' at 2026-11-20")
    _refused(
        lambda: grant_once(catalog, "acme", "tokens", Decimal(5), at=NOV_20, reason="backdated"),
        invoice="USD-000001",
        earliest=DEC,
    )
    assert catalog.scalar(select(CreditEntryRecord.id).where(CreditEntryRecord.kind == "grant")) is None
    purchase_pack(catalog, "acme", STARTER, at=DEC)
    grant_once(catalog, "acme", "tokens", Decimal(5), at=DEC, reason="goodwill")


def test_the_refusal_is_a_conflict():
    assert issubclass(FinalizedPeriodError, ConflictError)


def test_cli_change_and_cancel_inside_a_finalized_month_exit_1(database_url, tmp_path):
    assert run_cli(database_url, "db", "upgrade").exit_code == 0
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    assert run_cli(database_url, "apply", str(catalog)).exit_code == 0
    assert run_cli(database_url, "customers", "create", "acme").exit_code == 0
    subscribed = run_cli(database_url, "subscriptions", "create", "acme", "writer", "--start", "2026-11-01")
    assert subscribed.exit_code == 0
    assert run_cli(database_url, "invoices", "run", "--period", "2026-11").exit_code == 0
    assert run_cli(database_url, "invoices", "finalize", "1").exit_code == 0
    for args in (
        ("subscriptions", "change", "1", "team", "--at", "2026-11-16"),
        ("subscriptions", "cancel", "1", "--now", "--at", "2026-11-16"),
        ("subscriptions", "change", "1", "team", "--at", "2026-11-16", "--json"),
    ):
        result = run_cli(database_url, *args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ")
        assert (
            "invoice USD-000001" in result.output
            and "the earliest allowed date is 2026-12-01" in result.output
        )
    result = run_cli(database_url, "subscriptions", "change", "1", "team", "--at", "2026-12-01")
    assert result.exit_code == 0, result.output
