"""``spanledger stripe``: send invoices and usage to Stripe, and link customers."""

from __future__ import annotations

from typing import Any

import typer

from spanledger.billing.cli._output import JSON_OPTION, emit_json, emit_table
from spanledger.billing.cli._state import state_of
from spanledger.billing.stripe import StripeMode, StripeSettings, SyncReport, link_customer, run_sync
from spanledger.billing.stripe.environment_variables import SPANLEDGER_STRIPE_API_KEY

app = typer.Typer(help="Bill with Stripe: sync invoices and usage, link customers.", no_args_is_help=True)


def _report_json(report: SyncReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "invoices": [vars(result) for result in report.invoices],
        "meters": [vars(result) for result in report.meters],
    }


def _print_report(report: SyncReport) -> None:
    verb = "would send" if report.dry_run else "sent"
    emit_table(
        f"invoices ({verb})",
        ["invoice", "customer", "total", "items", "outcome", "stripe invoice", "error"],
        [
            (
                r.invoice,
                r.customer,
                f"{r.total} {r.currency}",
                len(r.items) if report.dry_run else r.items_sent,
                r.outcome,
                r.stripe_invoice_id,
                r.error,
            )
            for r in report.invoices
        ],
    )
    emit_table(
        f"usage as meter events ({verb})",
        ["meter", "stripe meter", "sequences", "usage events", "meter events", "outcome", "error"],
        [
            (
                m.meter,
                m.stripe_event_name,
                f"{m.after_sequence + 1}..{m.upto_sequence}" if m.upto_sequence > m.after_sequence else "-",
                m.usage_events,
                len(m.meter_events) if report.dry_run else m.meter_events_sent,
                m.outcome,
                m.error,
            )
            for m in report.meters
        ],
    )


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be sent; send nothing."),
    api_key: str | None = typer.Option(
        None, envvar=SPANLEDGER_STRIPE_API_KEY, show_envvar=True, help="Stripe secret key."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send finalized invoices (mode invoices) and usage (mode meters) to Stripe. Safe to re-run."""
    settings = StripeSettings.from_env(api_key=api_key)
    report = run_sync(state_of(ctx).session_factory, settings, dry_run=dry_run)
    if as_json:
        emit_json(_report_json(report))
    else:
        _print_report(report)
    if report.failed:
        raise typer.Exit(1)


@app.command("link")
def link_command(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The spanledger customer (external id)."),
    stripe_customer: str | None = typer.Option(None, "--stripe-customer", help="An existing cus_… id."),
    mode: StripeMode | None = typer.Option(
        None, "--mode", help="This customer's mode (default: SPANLEDGER_STRIPE_MODE)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Link a customer to a Stripe customer and/or choose its mode."""
    with state_of(ctx).transaction() as session:
        link = link_customer(session, customer, stripe_customer_id=stripe_customer, mode=mode)
        result = {"customer": customer, "stripe_customer_id": link.stripe_customer_id, "mode": link.mode}
    if as_json:
        emit_json(result)
    else:
        emit_table("linked", ["customer", "stripe customer", "mode"], [tuple(result.values())])
