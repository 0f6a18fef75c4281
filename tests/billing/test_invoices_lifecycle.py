"""Draft → finalized (gapless number, immutable) → paid or void."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from test_invoices_support import NOV, WRITER, add_meter, add_plan, call, store, subscribe, writer_setup

from spanledger.billing.credits.service import balance
from spanledger.billing.errors import ConflictError, ImmutableInvoiceError, NotFoundError
from spanledger.billing.invoices import (
    ensure_editable,
    finalize,
    find_invoice,
    invoice_lines,
    list_invoices,
    pay,
    run_invoices,
    void,
)
from spanledger.billing.models import InvoiceLineRecord, InvoiceNumber, InvoiceRecord


def _three_customers(session):
    with session.begin():
        add_meter(session)
        plan = add_plan(session, WRITER)
        for customer in ("a", "b", "c"):
            subscribe(session, customer, plan)
    with session.begin():
        run_invoices(session, "2026-11")
    with session.begin():
        return [invoice for invoice, _ in list_invoices(session)]


def test_finalize_numbers_are_gapless_and_sequential_per_currency(session):
    invoices = _three_customers(session)
    for invoice in invoices:
        with session.begin():
            finalize(session, invoice.id)
    session.commit()
    numbers = sorted(i.number for i in session.scalars(select(InvoiceRecord)))
    assert numbers == ["USD-000001", "USD-000002", "USD-000003"]
    assert session.get(InvoiceNumber, "USD").last_number == 3
    assert all(i.status == "finalized" and i.finalized_at is not None for i in invoices)


def test_a_failed_finalize_allocates_no_number(session):
    first, second, _ = _three_customers(session)
    with session.begin():
        finalize(session, first.id)
    with pytest.raises(ConflictError, match="is finalized"), session.begin():
        finalize(session, first.id)
    with session.begin():
        assert finalize(session, second.id).number == "USD-000002"


def test_a_finalized_invoice_never_changes(session):
    invoice, *_ = _three_customers(session)
    with session.begin():
        finalize(session, invoice.id)
    with pytest.raises(ImmutableInvoiceError):
        ensure_editable(invoice)
    with pytest.raises(ImmutableInvoiceError, match="total"), session.begin():
        session.get(InvoiceRecord, invoice.id).total = D("1.00")
    with pytest.raises(ImmutableInvoiceError, match="lines"), session.begin():
        session.scalar(
            select(InvoiceLineRecord).where(InvoiceLineRecord.invoice_id == invoice.id)
        ).amount = D(0)
    with pytest.raises(ImmutableInvoiceError, match="cannot be deleted"), session.begin():
        session.delete(session.get(InvoiceRecord, invoice.id))
    session.expire_all()
    assert session.get(InvoiceRecord, invoice.id).total == D("29.00")
    assert [line.amount for line in invoice_lines(session, invoice)] == [D("29.00"), D(0)]


def test_rerunning_a_finalized_period_skips_it(session):
    invoice, *_ = _three_customers(session)
    with session.begin():
        finalize(session, invoice.id)
    with session.begin():
        summary = run_invoices(session, "2026-11")
    assert (summary.updated, len(summary.skipped)) == (2, 1)
    assert summary.skipped[0].reason == "invoice USD-000001 for 2026-11 is already finalized"


def test_pay_and_void_follow_the_lifecycle(session):
    first, second, third = _three_customers(session)
    with pytest.raises(ConflictError, match="draft"), session.begin():
        pay(session, first.id)
    with session.begin():
        finalize(session, first.id)
        finalize(session, second.id)
    with session.begin():
        paid = pay(session, "usd-000001")
        voided = void(session, "USD-000002")
        voided_draft = void(session, third.id)
    assert (paid.status, voided.status, voided_draft.status) == ("paid", "void", "void")
    assert paid.paid_at is not None and voided.voided_at is not None and voided_draft.number is None
    with pytest.raises(ConflictError, match="is paid"), session.begin():
        void(session, first.id)
    assert voided.total == D("29.00")


def test_unknown_invoice_is_not_found(session):
    with pytest.raises(NotFoundError, match="invoices list"):
        find_invoice(session, "USD-999999")


def test_finalize_settles_the_credit_overage_it_billed(session):
    writer_setup(session, credits_per=D(1000))
    store(session, call("a", "acme", 80_000, NOV + timedelta(days=1)))
    assert balance(session, "acme", "tokens").balance == D(-80)
    session.commit()
    with session.begin():
        run_invoices(session, "2026-11")
    invoice = session.scalar(select(InvoiceRecord))
    # 80,000 tokens, no credits: 30,000 above the allowance × 0.02/1K = 0.60.
    assert invoice.total == D("29.60")
    session.commit()
    with session.begin():
        finalize(session, invoice.id)
    assert balance(session, "acme", "tokens").balance == D(0)


def test_no_line_can_be_added_to_a_finalized_invoice(session):
    invoice, *_ = _three_customers(session)
    with session.begin():
        finalize(session, invoice.id)
    extra = InvoiceLineRecord(
        invoice_id=invoice.id, position=9, kind="base_fee", description="sneaky", quantity=D(1),
        unit_amount=D(1), exact_amount="1", amount=D(1), details={},
    )  # fmt: skip
    with pytest.raises(ImmutableInvoiceError, match="lines"), session.begin():
        session.add(extra)
