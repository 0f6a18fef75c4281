"""``spanledger customers``: who pays."""

from __future__ import annotations

from typing import Any

import typer

from spanledger.billing.cli._output import JSON_OPTION, emit_json, emit_table
from spanledger.billing.cli._state import state_of
from spanledger.billing.customers import create_customer, get_customer, list_customers, update_customer
from spanledger.billing.models import Customer

app = typer.Typer(help="Create, change and look at customers.", no_args_is_help=True)


def _as_dict(customer: Customer) -> dict[str, Any]:
    return {
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "currency": customer.currency,
        "created_at": customer.created_at,
    }


def _print(customers: list[Customer], as_json: bool, title: str) -> None:
    if as_json:
        emit_json([_as_dict(c) for c in customers])
        return
    emit_table(
        title,
        ["external id", "name", "email", "currency", "created"],
        [(c.external_id, c.name, c.email, c.currency, c.created_at) for c in customers],
    )


@app.command("create")
def create_command(
    ctx: typer.Context,
    external_id: str = typer.Argument(..., help="The id your product uses for this customer."),
    name: str | None = typer.Option(None, help="Display name."),
    email: str | None = typer.Option(None, help="Billing email."),
    currency: str = typer.Option("USD", help="ISO 4217 currency of the customer's invoices."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a customer."""
    with state_of(ctx).transaction() as session:
        customer = create_customer(session, external_id, name=name, email=email, currency=currency)
        result = _as_dict(customer)
    emit_json(result) if as_json else _print([customer], False, "created")


@app.command("update")
def update_command(
    ctx: typer.Context,
    external_id: str = typer.Argument(...),
    name: str | None = typer.Option(None),
    email: str | None = typer.Option(None),
    currency: str | None = typer.Option(None),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a customer's name, email or currency (also one created automatically by ingest)."""
    with state_of(ctx).transaction() as session:
        customer = update_customer(session, external_id, name=name, email=email, currency=currency)
        result = _as_dict(customer)
    emit_json(result) if as_json else _print([customer], False, "updated")


@app.command("list")
def list_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List every customer."""
    with state_of(ctx).transaction() as session:
        customers = list_customers(session)
    _print(customers, as_json, "customers")


@app.command("show")
def show_command(
    ctx: typer.Context, external_id: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show one customer."""
    with state_of(ctx).transaction() as session:
        customer = get_customer(session, external_id)
    emit_json(_as_dict(customer)) if as_json else _print([customer], False, external_id)
