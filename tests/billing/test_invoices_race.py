"""Two ``invoices run`` of the same month racing: one set of invoices, identical totals."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal as D

from sqlalchemy import func, select
from test_invoices_support import NOV, WRITER, add_meter, add_plan, call, store, subscribe

from spanledger.billing.db import make_session_factory
from spanledger.billing.invoices import run_invoices
from spanledger.billing.models import CreditEntryRecord, InvoiceLineRecord, InvoiceRecord

CUSTOMERS = [f"customer-{index:02d}" for index in range(8)]
PLAN_WITH_CREDITS = {**WRITER, "credit_grants": [{"meter": "tokens", "credits": "100"}]}


def _race(engine, runs: int = 2):
    factory = make_session_factory(engine)
    barrier = threading.Barrier(runs)
    summaries, errors = [], []

    def run() -> None:
        try:
            barrier.wait()
            summaries.append(run_invoices(factory, "2026-11"))
        except Exception as exc:  # reported below; a thread must not swallow a failure
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return summaries


def test_two_concurrent_runs_make_one_set_of_invoices(engine, session):
    with session.begin():
        add_meter(session, credits_per=D(1000))
        plan = add_plan(session, PLAN_WITH_CREDITS)
        for customer in CUSTOMERS:
            subscribe(session, customer, plan)
    store(
        session,
        *(
            call(f"{c}-{i}", c, 40_000 * (i + 1), NOV + timedelta(days=i))
            for c in CUSTOMERS
            for i in range(3)
        ),
    )
    first, second = _race(engine)
    assert first.totals == second.totals
    assert first.created + second.created == len(CUSTOMERS)
    assert first.created + first.updated == second.created + second.updated == len(CUSTOMERS)
    with session.begin():
        assert session.scalar(select(func.count()).select_from(InvoiceRecord)) == len(CUSTOMERS)
        lines = session.scalar(select(func.count()).select_from(InvoiceLineRecord))
        grants = session.scalar(
            select(func.count()).select_from(CreditEntryRecord).where(CreditEntryRecord.kind == "grant")
        )
        totals = {i.total for i in session.scalars(select(InvoiceRecord))}
    # Each: base fee, usage, credits applied; the plan's 100 credits granted once per customer.
    assert lines == 3 * len(CUSTOMERS) and grants == len(CUSTOMERS)
    # 240,000 tokens − 100,000 covered by credits − 50,000 included = 90,000 × 0.02/1K = 1.80
    assert totals == {D("30.80")}
    assert first.totals == {"USD": D("30.80") * len(CUSTOMERS)}
