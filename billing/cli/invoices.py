"""``spanledger invoices``: run drafts for a month, inspect, explain, finalize, pay, void, export."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.orm import Session

from spanledger.billing.cli._output import JSON_OPTION, console, emit_json, emit_table
from spanledger.billing.cli._state import state_of
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.invoices import (
    RunSummary,
    events_csv,
    explain,
    finalize,
    find_invoice,
    invoice_csv,
    invoice_events,
    invoice_json,
    invoice_lines,
    list_invoices,
    money_text,
    number_text,
    pay,
    run_invoices,
    void,
)
from spanledger.billing.models import InvoiceRecord

app = typer.Typer(help="Invoices: monthly drafts, lifecycle, audit trail and exports.", no_args_is_help=True)

INVOICE_ARGUMENT = typer.Argument(..., help="Invoice number (USD-000001) or id.")


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("invoices"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("invoices", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _print_summary(summary: RunSummary) -> None:
    console.print(
        f"Period {summary.period}: {summary.created} created, {summary.updated} updated, "
        f"{len(summary.skipped)} skipped.",
        highlight=False,
    )
    for currency, total in sorted(summary.totals.items()):
        console.print(f"Total {currency}: {money_text(total, currency)}", highlight=False)
    for outcome in summary.skipped:
        console.print(f"Skipped {outcome.customer}: {outcome.reason}", highlight=False, markup=False)


@app.command("run")
def run_command(
    ctx: typer.Context,
    period: str = typer.Option(..., "--period", help="The billing month, e.g. 2026-11."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create or update the draft invoice of every subscribed customer for PERIOD."""
    state = state_of(ctx)
    with _progress(not as_json and sys.stdout.isatty()) as progress:
        summary = run_invoices(state.session_factory, period, progress=progress)
    if as_json:
        emit_json(summary.to_json())
    else:
        _print_summary(summary)


def _row(invoice: InvoiceRecord, customer: str) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "customer": customer,
        "period": invoice.period,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": money_text(invoice.total, invoice.currency),
    }


@app.command("list")
def list_command(
    ctx: typer.Context,
    period: str | None = typer.Option(None, "--period", help="Only this month (2026-11)."),
    customer: str | None = typer.Option(None, "--customer", help="Only this customer's invoices."),
    status: str | None = typer.Option(None, "--status", help="draft, finalized, paid or void."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List invoices, newest month first."""
    if status is not None and status not in ("draft", "finalized", "paid", "void"):
        raise ConfigurationError(f"--status {status!r} is not one of draft, finalized, paid, void")
    with state_of(ctx).transaction() as session:
        rows = [
            _row(i, c) for i, c in list_invoices(session, period=period, customer=customer, status=status)
        ]
    if as_json:
        emit_json(rows)
        return
    columns = ["id", "number", "customer", "period", "status", "currency", "total"]
    emit_table("Invoices", columns, [[row[c] for c in columns] for row in rows])


def _document(session: Session, reference: str) -> dict[str, Any]:
    invoice = find_invoice(session, reference)
    return invoice_json(session, invoice, invoice_lines(session, invoice))


def _print_invoice(document: dict[str, Any]) -> None:
    title = (
        f"Invoice {document['number'] or '#' + str(document['id'])} · {document['customer']} · "
        f"{document['period']} · {document['status']}"
    )
    rows = [
        [line["position"], line["description"], line["quantity"], line["unit_amount"], line["amount"]]
        for line in document["lines"]
    ]
    emit_table(title, ["#", "description", "quantity", "unit price", "amount"], rows)
    console.print(f"Total {document['currency']}: {document['total']}", highlight=False)


@app.command("show")
def show_command(ctx: typer.Context, invoice: str = INVOICE_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Show an invoice's lines and total (upstream cost and margin only with --json, under admin)."""
    with state_of(ctx).transaction() as session:
        document = _document(session, invoice)
    if as_json:
        emit_json(document)
    else:
        _print_invoice(document)


@app.command("explain")
def explain_command(
    ctx: typer.Context,
    invoice: str = INVOICE_ARGUMENT,
    line: int = typer.Argument(..., help="The line number, as printed by `invoices show`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the events an invoice line covers and recompute its amount from them."""
    with state_of(ctx).transaction() as session:
        record = find_invoice(session, invoice)
        explanation = explain(session, record, invoice_lines(session, record), line)
        currency = record.currency
    stored = money_text(explanation.line.amount, currency)
    recomputed = money_text(explanation.recomputed_amount, currency)
    if as_json:
        emit_json(
            {
                "line": explanation.line.position,
                "description": explanation.line.description,
                "amount": stored,
                "recomputed_amount": recomputed,
                "matches": explanation.matches,
                "selection": {
                    "meter": (explanation.line.meter_snapshot or {}).get("name"),
                    "window_start": explanation.line.window_start,
                    "window_end": explanation.line.window_end,
                    "after_sequence": explanation.line.after_sequence,
                    "max_sequence": explanation.line.max_sequence,
                },
                "events": [
                    {k: number_text(v) if k == "upstream_cost" else v for k, v in e.items()}
                    for e in explanation.events
                ],
            }
        )
        return
    columns = ["sequence", "occurred_at", "model", "input_tokens", "output_tokens", "trace_id", "span_id"]
    emit_table(explanation.line.description, columns, [[e[c] for c in columns] for e in explanation.events])
    verdict = "matches" if explanation.matches else "DOES NOT match"
    console.print(
        f"{len(explanation.events)} events; recomputed {recomputed}, stored {stored}: {verdict}.",
        highlight=False,
    )


def _transition(ctx: typer.Context, invoice: str, as_json: bool, operation: Any, verb: str) -> None:
    with state_of(ctx).transaction() as session:
        record = operation(session, invoice)
        row = _row(record, "")
        document = _document(session, str(record.id))
    row["customer"] = document["customer"]
    if as_json:
        emit_json(row)
    else:
        console.print(f"Invoice {row['number'] or row['id']} {verb} ({row['status']}).", highlight=False)


@app.command("finalize")
def finalize_command(
    ctx: typer.Context, invoice: str = INVOICE_ARGUMENT, as_json: bool = JSON_OPTION
) -> None:
    """Finalize a draft: it gets the next number of its currency and never changes again."""
    _transition(ctx, invoice, as_json, finalize, "finalized")


@app.command("pay")
def pay_command(ctx: typer.Context, invoice: str = INVOICE_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Record that a finalized invoice was paid."""
    _transition(ctx, invoice, as_json, pay, "marked paid")


@app.command("void")
def void_command(ctx: typer.Context, invoice: str = INVOICE_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Void an invoice (corrections are new documents)."""
    _transition(ctx, invoice, as_json, void, "voided")


@app.command("export")
def export_command(
    ctx: typer.Context,
    invoice: str = INVOICE_ARGUMENT,
    export_format: str = typer.Option("json", "--format", help="json or csv."),
    events: bool = typer.Option(False, "--events", help="Export the events the invoice covers instead."),
) -> None:
    """Write an invoice (or its events) to stdout as JSON or CSV."""
    if export_format not in ("json", "csv"):
        raise ConfigurationError(f"--format {export_format!r} is not json or csv")
    with state_of(ctx).transaction() as session:
        record = find_invoice(session, invoice)
        lines = invoice_lines(session, record)
        if events:
            rows = invoice_events(session, record, lines)
            for row in rows:
                row["upstream_cost"] = number_text(row["upstream_cost"])
            output: Any = rows if export_format == "json" else events_csv(rows)
        else:
            output = (
                invoice_json(session, record, lines)
                if export_format == "json"
                else invoice_csv(record, lines)
            )
    if export_format == "json":
        emit_json(output)
    else:
        sys.stdout.write(output)
