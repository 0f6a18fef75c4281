"""``spanledger subscriptions``: put customers on plans, change plans, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from spanledger.billing.cli._output import JSON_OPTION, console, emit_json, emit_table, parse_cli_time
from spanledger.billing.cli._state import state_of
from spanledger.billing.subscriptions import (
    SubscriptionStatus,
    SubscriptionView,
    cancel,
    change_plan,
    get_subscription,
    list_subscriptions,
    subscribe,
    subscription_view,
)

app = typer.Typer(help="Subscribe customers to plans, change plans mid-period, cancel.", no_args_is_help=True)

_AT_HELP = "A date (2026-11-16, midnight UTC) or an ISO 8601 time; default: now."


def _when(value: str | None, option: str) -> datetime:
    return parse_cli_time(value, option) or datetime.now(UTC)


def _as_dict(view: SubscriptionView) -> dict[str, Any]:
    period = view.current_period
    return {
        "id": view.id,
        "customer": view.customer,
        "plan": view.plan,
        "status": None if view.status is None else view.status.value,
        "seats": view.seats,
        "anchor": view.anchor,
        "started_at": view.started_at,
        "ends_at": view.ends_at,
        "current_period": None if period is None else {"start": period.start, "end": period.end},
        "phases": [{"plan": p.plan, "start": p.start, "end": p.end} for p in view.phases],
    }


def _print(views: list[SubscriptionView], as_json: bool, title: str) -> None:
    if as_json:
        emit_json([_as_dict(v) for v in views])
        return
    emit_table(
        title,
        ["id", "customer", "plan", "status", "seats", "started", "ends", "phases"],
        [
            (
                v.id,
                v.customer,
                v.plan,
                "not started" if v.status is None else v.status.value,
                v.seats,
                v.started_at,
                v.ends_at,
                " → ".join(p.plan for p in v.phases),
            )
            for v in views
        ],
    )


@app.command("create")
def create_command(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    plan: str = typer.Argument(..., help="The plan code, e.g. writer."),
    start: str | None = typer.Option(None, "--start", help=_AT_HELP),
    anchor: str | None = typer.Option(
        None, "--anchor", help="Billing anchor (periods start here); default: start."
    ),
    seats: int = typer.Option(0, "--seats", min=0, help="Seats on the subscription."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Subscribe CUSTOMER to PLAN."""
    with state_of(ctx).transaction() as session:
        record = subscribe(
            session, customer, plan, start=_when(start, "--start"), anchor=parse_cli_time(anchor, "--anchor"),
            seats=seats,
        )  # fmt: skip
        view = subscription_view(session, record)
    emit_json(_as_dict(view)) if as_json else _print([view], False, "created")


@app.command("list")
def list_command(
    ctx: typer.Context,
    customer: str | None = typer.Option(None, "--customer", help="Only this customer's subscriptions."),
    status: SubscriptionStatus | None = typer.Option(
        None, "--status", case_sensitive=False, help="Only subscriptions with this status now."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List subscriptions (optionally only active, canceled_at_period_end or canceled ones)."""
    now = datetime.now(UTC)
    with state_of(ctx).transaction() as session:
        records = list_subscriptions(session, customer, status=status, now=now)
        views = [subscription_view(session, r, now=now) for r in records]
    _print(views, as_json, "subscriptions")


@app.command("show")
def show_command(
    ctx: typer.Context, subscription_id: int = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show one subscription with its plan history."""
    with state_of(ctx).transaction() as session:
        view = subscription_view(session, get_subscription(session, subscription_id))
    if as_json:
        emit_json(_as_dict(view))
        return
    _print([view], False, f"subscription {subscription_id}")
    emit_table("plan history", ["plan", "from", "until"], [(p.plan, p.start, p.end) for p in view.phases])


@app.command("change")
def change_command(
    ctx: typer.Context,
    subscription_id: int = typer.Argument(...),
    plan: str = typer.Argument(..., help="The new plan code."),
    at: str | None = typer.Option(None, "--at", help=_AT_HELP),
    seats: int | None = typer.Option(None, "--seats", min=0, help="New seat count."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move a subscription to another plan (base fee prorated by the second; usage never prorated)."""
    with state_of(ctx).transaction() as session:
        effective = change_plan(session, subscription_id, plan, at=_when(at, "--at"), seats=seats)
        view = subscription_view(session, get_subscription(session, subscription_id))
    if as_json:
        emit_json({**_as_dict(view), "change_effective_at": effective})
        return
    _print([view], False, "changed")
    console.print(f"The change to {plan} takes effect at {effective.isoformat()}.", highlight=False)


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    subscription_id: int = typer.Argument(...),
    now: bool = typer.Option(False, "--now", help="End now (prorated) instead of at the end of the period."),
    at: str | None = typer.Option(None, "--at", help=_AT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Cancel at the end of the current billing period (default) or now."""
    with state_of(ctx).transaction() as session:
        ends = cancel(session, subscription_id, at=_when(at, "--at"), at_period_end=not now)
        view = subscription_view(session, get_subscription(session, subscription_id))
    if as_json:
        emit_json(_as_dict(view))
        return
    _print([view], False, "canceled")
    console.print(f"The subscription ends at {ends.isoformat()}.", highlight=False)
