"""The audit trail: explain recomputes each line; late events; JSON and CSV exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from test_invoices_support import DEC, NOV, call, store, writer_setup

from spanledger.billing.errors import NotFoundError
from spanledger.billing.invoices import (
    events_csv,
    explain,
    finalize,
    invoice_csv,
    invoice_events,
    invoice_json,
    invoice_lines,
    run_invoices,
)
from spanledger.billing.models import InvoiceRecord


def _invoice(session, period):
    invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == period))
    return invoice, invoice_lines(session, invoice)


def _november_with_usage(session):
    writer_setup(session)
    store(
        session,
        call("a", "acme", 600_000, NOV + timedelta(days=2)),
        call("b", "acme", 634_567, NOV + timedelta(days=20)),
        call("other", "someone-else", 5_000_000, NOV + timedelta(days=3)),
    )
    with session.begin():
        run_invoices(session, "2026-11")


def test_explain_lists_the_events_and_recomputes_the_amount(session):
    _november_with_usage(session)
    invoice, lines = _invoice(session, "2026-11")
    explanation = explain(session, invoice, lines, 2)
    assert [e["sequence"] for e in explanation.events] == [1, 2]
    assert {e["customer"] for e in explanation.events} == {"acme"}
    assert all(len(e["trace_id"]) == 32 and len(e["span_id"]) == 16 for e in explanation.events)
    assert explanation.recomputed_amount == explanation.line.amount == D("23.69")
    assert explanation.matches
    base = explain(session, invoice, lines, 1)
    assert base.events == [] and base.recomputed_amount == D("29.00") and base.matches


def test_explain_ignores_events_committed_after_the_run(session):
    _november_with_usage(session)
    store(session, call("c", "acme", 1_000_000, NOV + timedelta(days=25)))
    invoice, lines = _invoice(session, "2026-11")
    explanation = explain(session, invoice, lines, 2)
    assert [e["sequence"] for e in explanation.events] == [1, 2]
    assert explanation.matches


def test_explain_an_unknown_line_is_not_found(session):
    _november_with_usage(session)
    invoice, lines = _invoice(session, "2026-11")
    with pytest.raises(NotFoundError, match="lines 1 to 2"):
        explain(session, invoice, lines, 7)


def test_late_events_are_billed_on_the_next_open_invoice(session):
    _november_with_usage(session)
    november, _ = _invoice(session, "2026-11")
    session.commit()
    with session.begin():
        finalize(session, november.id)
    # Arrives after November was finalized, but occurred in November; plus December usage.
    store(
        session,
        call("late", "acme", 100_000, NOV + timedelta(days=29)),
        call("dec", "acme", 10_000, DEC + timedelta(days=1)),
    )
    with session.begin():
        run_invoices(session, "2026-12")
    december, lines = _invoice(session, "2026-12")
    assert [(line.kind, line.description, line.amount) for line in lines] == [
        ("base_fee", "Writer base fee", D("29.00")),
        ("usage", "tokens usage", D("0.00")),
        # price(1,334,567) − price(1,234,567) exact = 25.69134 − 23.69134 = 2.00
        ("late_usage", "tokens late usage for 2026-11", D("2.00")),
    ]
    late = lines[2]
    assert (late.window_start, late.window_end, late.after_sequence) == (NOV, DEC, 3)
    assert late.details["original_invoice_number"] == "USD-000001"
    explanation = explain(session, december, lines, 3)
    assert [e["sequence"] for e in explanation.events] == [4]
    assert explanation.matches and explanation.recomputed_amount == D("2.00")
    # The finalized November invoice did not move.
    november, november_lines = _invoice(session, "2026-11")
    assert november.total == D("52.69") and len(november_lines) == 2
    assert december.total == D("31.00")


def test_late_events_are_billed_once(session):
    test_late_events_are_billed_on_the_next_open_invoice(session)
    december, _ = _invoice(session, "2026-12")
    session.commit()
    with session.begin():
        finalize(session, december.id)
    store(session, call("later", "acme", 50_000, NOV + timedelta(days=10)))
    with session.begin():
        run_invoices(session, "2027-01")
    january, lines = _invoice(session, "2027-01")
    late = [line for line in lines if line.kind == "late_usage"]
    # Only the new event: November's first late event was billed in December already.
    assert [(line.description, line.quantity, line.amount) for line in late] == [
        ("tokens late usage for 2026-11", D(50_000), D("1.00"))
    ]
    assert late[0].after_sequence == 5
    assert explain(session, january, lines, lines.index(late[0]) + 1).matches


def test_invoice_exports_json_and_csv(session):
    _november_with_usage(session)
    invoice, lines = _invoice(session, "2026-11")
    document = json.loads(json.dumps(invoice_json(session, invoice, lines)))
    assert (document["customer"], document["total"], document["status"]) == ("acme", "52.69", "draft")
    assert [line["amount"] for line in document["lines"]] == ["29.00", "23.69"]
    assert document["lines"][1]["audit"]["max_sequence"] == 3
    assert document["admin"]["upstream_cost"] == "3.0864175"
    rows = list(csv.DictReader(io.StringIO(invoice_csv(invoice, lines))))
    assert [(r["position"], r["kind"], r["amount"]) for r in rows] == [
        ("1", "base_fee", "29.00"),
        ("2", "usage", "23.69"),
    ]
    assert "upstream_cost" not in rows[0]


def test_event_exports_json_and_csv(session):
    _november_with_usage(session)
    invoice, lines = _invoice(session, "2026-11")
    events = invoice_events(session, invoice, lines)
    assert [(e["line"], e["sequence"], e["input_tokens"]) for e in events] == [
        (2, 1, 600_000),
        (2, 2, 634_567),
    ]
    rows = list(csv.DictReader(io.StringIO(events_csv(events))))
    assert [r["sequence"] for r in rows] == ["1", "2"]
    assert rows[0]["trace_id"] == events[0]["trace_id"] and rows[0]["upstream_cost"] == "1.5"
