"""A finalized invoice never changes, whatever command or API runs afterwards; and two ``spanledger
invoices run`` processes racing on one period make one set of invoices with identical totals.

The ledger is set up with the real CLI (catalog, customers, subscriptions, events). Then every mutating
command runs: invoice runs, late events, catalog price changes, credit grants and top-ups, subscription
changes and cancellation, customer updates, cost re-pricing, finalize/void/pay of other invoices, Stripe
webhook replays. The finalized invoice's rows (the invoice and each of its lines, every column) must be
byte-identical before and after. Paying or voiding it may only move its lifecycle columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from spanledger.billing.cli import app
from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.errors import ImmutableInvoiceError
from spanledger.billing.models import InvoiceLineRecord, InvoiceRecord
from spanledger.billing.stripe.webhooks import apply_event

CATALOG = Path(__file__).parents[2] / "examples" / "catalog.yaml"
LIFECYCLE_COLUMNS = {"status", "paid_at", "voided_at", "updated_at"}


def _cli(url: str, *args: str, check: bool = True) -> str:
    result = CliRunner().invoke(app, ["--database-url", url, *args])
    if check:
        assert result.exit_code == 0, f"spanledger {' '.join(args)}: {result.output}"
    return result.output


def _event_line(key: str, customer: str, day: int, tokens: int, feature: str | None = None) -> str:
    event = {
        "dedupe_key": key,
        "occurred_at": f"2026-11-{day:02d}T10:00:00Z",
        "customer_external_id": customer,
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o",
        "input_tokens": tokens,
        "output_tokens": tokens // 4,
    }
    if feature:
        event["metadata"] = {"feature": feature}
    return json.dumps(event)


def _ledger(url: str, tmp_path: Path) -> None:
    """Catalog, three customers on plans, and a month of usage, all through the CLI."""
    _cli(url, "db", "upgrade")
    _cli(url, "apply", str(CATALOG))
    for customer, plan, extra in (
        ("acme", "writer", []),
        ("globex", "team", ["--seats", "7"]),
        ("initech", "agency", []),
    ):
        _cli(url, "customers", "create", customer, "--email", f"billing@{customer}.example")
        _cli(url, "subscriptions", "create", customer, plan, "--start", "2026-11-01", *extra)
    events = tmp_path / "november.jsonl"
    events.write_text(
        "\n".join(
            _event_line(f"nov-{customer}-{day}", customer, day, 30_000 * day, "agent" if day % 2 else None)
            for customer in ("acme", "globex", "initech")
            for day in (2, 9, 17, 25)
        )
        + "\n"
    )
    _cli(url, "events", "import", str(events))


def _rows(engine: Engine, invoice_id: int) -> tuple[dict, list[dict]]:
    """Every column of the invoice and of each of its lines, as stored."""
    with engine.connect() as connection:
        invoice = (
            connection.execute(
                select(InvoiceRecord.__table__).where(InvoiceRecord.__table__.c.id == invoice_id)
            )
            .mappings()
            .one()
        )
        lines = (
            connection.execute(
                select(InvoiceLineRecord.__table__)
                .where(InvoiceLineRecord.__table__.c.invoice_id == invoice_id)
                .order_by(InvoiceLineRecord.__table__.c.id)
            )
            .mappings()
            .all()
        )
    return {k: repr(v) for k, v in invoice.items()}, [{k: repr(v) for k, v in line.items()} for line in lines]


def _invoice_ids(url: str) -> dict[str, int]:
    listed = json.loads(_cli(url, "invoices", "list", "--json"))
    return {item["customer"]: item["id"] for item in listed if item["status"] != "void"}


@pytest.fixture
def ledger(database_url, tmp_path):
    _ledger(database_url, tmp_path)
    engine = create_engine_from_url(database_url)
    yield database_url, engine
    engine.dispose()


def test_no_command_or_api_changes_a_finalized_invoice(ledger, tmp_path):
    url, engine = ledger
    _cli(url, "invoices", "run", "--period", "2026-11")
    ids = _invoice_ids(url)
    finalized = json.loads(_cli(url, "invoices", "finalize", str(ids["acme"]), "--json"))
    assert finalized["status"] == "finalized"
    before = _rows(engine, ids["acme"])
    assert before[1], "the finalized invoice has lines"

    late = tmp_path / "late.jsonl"
    late.write_text(
        _event_line("late-acme-1", "acme", 28, 500_000) + "\n" + _event_line("late-acme-2", "acme", 3, 90_000)
    )
    repriced = tmp_path / "catalog-repriced.yaml"
    repriced.write_text(CATALOG.read_text().replace("unit_price: 0.02", "unit_price: 0.05"))
    mutations = [
        ("invoices", "run", "--period", "2026-11"),
        ("events", "import", str(late)),  # late usage of the finalized month
        ("invoices", "run", "--period", "2026-11"),
        ("apply", str(repriced)),  # a price change of the finalized invoice's plan
        ("invoices", "run", "--period", "2026-11"),
        ("customers", "update", "acme", "--name", "Acme Renamed", "--email", "new@acme.example"),
        ("costs", "--reprice"),
        ("invoices", "run", "--period", "2026-11"),
        ("invoices", "run", "--period", "2026-12"),
        ("invoices", "finalize", str(ids["globex"])),
        ("invoices", "pay", str(ids["globex"])),
        ("invoices", "void", str(ids["initech"])),
        ("invoices", "run", "--period", "2026-11"),
    ]
    for command in mutations:
        _cli(url, *command)
        assert _rows(engine, ids["acme"]) == before, f"`spanledger {' '.join(command)}` changed it"

    # Commands aimed at the finalized invoice, its customer or its period. A second finalize is refused;
    # so are the subscription change and cancellation dated inside the finalized month, and a grant or
    # pack purchase now (inside it: the test clock is in November); the currency change is accepted (it
    # affects later invoices) and the re-run skips the finalized customer.
    for command in (
        ("invoices", "finalize", str(ids["acme"])),
        ("credits", "grant", "acme", "agent-tokens", "500", "--reason", "goodwill"),
        ("credits", "topup", "acme", "starter"),
        ("subscriptions", "change", "1", "team", "--at", "2026-11-10"),
        ("subscriptions", "cancel", "1", "--at", "2026-11-05"),
        ("customers", "update", "acme", "--currency", "EUR"),
        ("invoices", "run", "--period", "2026-11"),
    ):
        _cli(url, *command, check=False)
        assert _rows(engine, ids["acme"]) == before, f"`spanledger {' '.join(command)}` changed it"

    # The API: the ORM guard refuses any change to the invoice or its lines, in any session.
    sessions = make_session_factory(engine)
    for change in (_edit_total, _edit_line, _add_line, _delete_line, _delete_invoice):
        with sessions() as session, pytest.raises(ImmutableInvoiceError):
            change(session, ids["acme"])
            session.flush()
    assert _rows(engine, ids["acme"]) == before

    # A Stripe webhook for another invoice, and replays, leave it alone too.
    with sessions() as session, session.begin():
        apply_event(session, _stripe_event("evt_other", "invoice.paid", ids["globex"]))
    with sessions() as session, session.begin():
        assert apply_event(session, _stripe_event("evt_other", "invoice.paid", ids["globex"])) == "replay"
    assert _rows(engine, ids["acme"]) == before


def test_paying_or_voiding_a_finalized_invoice_moves_only_its_lifecycle(ledger):
    url, engine = ledger
    _cli(url, "invoices", "run", "--period", "2026-11")
    ids = _invoice_ids(url)
    _cli(url, "invoices", "finalize", str(ids["acme"]))
    invoice_before, lines_before = _rows(engine, ids["acme"])
    sessions = make_session_factory(engine)
    paid = _stripe_event("evt_paid", "invoice.paid", ids["acme"])
    with sessions() as session, session.begin():
        assert apply_event(session, paid) != "replay"
    for _ in range(2):  # Stripe redelivers: a replay changes nothing
        with sessions() as session, session.begin():
            assert apply_event(session, paid) == "replay"
    _cli(url, "invoices", "pay", str(ids["acme"]), check=False)  # already paid
    _cli(url, "invoices", "void", str(ids["acme"]), check=False)  # a paid invoice is not voided
    invoice_after, lines_after = _rows(engine, ids["acme"])
    assert lines_after == lines_before
    changed = {column for column in invoice_before if invoice_before[column] != invoice_after[column]}
    assert changed and changed <= LIFECYCLE_COLUMNS
    assert invoice_after["status"] == repr("paid")


def _stripe_event(event_id: str, event_type: str, invoice_id: int) -> dict:
    return {
        "id": event_id,
        "type": event_type,
        "created": 1_796_000_000,
        "data": {
            "object": {
                "id": f"in_{invoice_id}",
                "status": "paid",
                "metadata": {"spanledger_invoice_id": str(invoice_id)},
            }
        },
    }


def _edit_total(session: Session, invoice_id: int) -> None:
    invoice = session.get(InvoiceRecord, invoice_id)
    assert invoice is not None
    invoice.total = invoice.total + 1


def _lines(session: Session, invoice_id: int) -> list[InvoiceLineRecord]:
    return list(session.scalars(select(InvoiceLineRecord).where(InvoiceLineRecord.invoice_id == invoice_id)))


def _edit_line(session: Session, invoice_id: int) -> None:
    line = _lines(session, invoice_id)[0]
    line.amount = line.amount * 2


def _add_line(session: Session, invoice_id: int) -> None:
    template = _lines(session, invoice_id)[0]
    columns = {c.key: getattr(template, c.key) for c in InvoiceLineRecord.__mapper__.column_attrs}
    columns.pop("id")
    session.add(InvoiceLineRecord(**columns))


def _delete_line(session: Session, invoice_id: int) -> None:
    session.delete(_lines(session, invoice_id)[0])


def _delete_invoice(session: Session, invoice_id: int) -> None:
    invoice = session.get(InvoiceRecord, invoice_id)
    session.delete(invoice)


# --- two invoice runs racing, as two processes --------------------------------------------------------


@pytest.mark.slow
def test_two_concurrent_cli_invoice_runs_make_one_set_of_invoices(ledger):
    url, engine = ledger
    command = [
        sys.executable,
        "-c",
        "from spanledger.billing.cli import main; main()",
        "--database-url",
        url,
        "invoices",
        "run",
        "--period",
        "2026-11",
        "--json",
    ]
    for _round in range(3):  # bounded: three races, the later ones over existing drafts
        runs = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        first, second = (json.loads(out) for out, _ in outputs)
        assert first["totals"] == second["totals"]
        assert first["created"] + first["updated"] == second["created"] + second["updated"] == 3
    listed = json.loads(_cli(url, "invoices", "list", "--json"))
    assert sorted(item["customer"] for item in listed) == ["acme", "globex", "initech"]
    with Session(engine) as session:
        totals = {i.total for i in session.scalars(select(InvoiceRecord))}
        lines = [(line.invoice_id, line.description) for line in session.scalars(select(InvoiceLineRecord))]
    assert len(lines) == len(set(lines)), "a line is on an invoice twice"
    assert totals == {Decimal(item["total"]) for item in listed}
