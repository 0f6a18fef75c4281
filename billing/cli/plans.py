"""``spanledger plans``: the plans a catalog declared (base fee, prices, seats, credit grants)."""

from __future__ import annotations

from typing import Any

import typer

from spanledger.billing.catalog import plan_to_json
from spanledger.billing.cli._output import JSON_OPTION, console, emit_json, emit_table
from spanledger.billing.cli._state import state_of
from spanledger.billing.cli.prices import print_prices
from spanledger.billing.plans import Plan
from spanledger.billing.subscriptions import get_plan, list_plans

app = typer.Typer(
    help="List and show plans (create or change them with `spanledger apply`).", no_args_is_help=True
)


def _seats(plan: Plan) -> str:
    if plan.seats is None:
        return ""
    if plan.seats.included is None:
        return "unlimited"
    return f"{plan.seats.included} included, {plan.seats.price_per_seat} per extra seat"


def _row(plan: Plan) -> tuple[Any, ...]:
    return (
        plan.code,
        plan.name,
        f"{plan.base_fee} {plan.currency}",
        plan.interval.value,
        ", ".join(p.meter for p in plan.prices),
        _seats(plan),
        ", ".join(f"{g.credits} {g.meter} credits / {g.every.value}" for g in plan.credit_grants),
    )


_COLUMNS = ["code", "name", "base fee", "interval", "priced meters", "seats", "credit grants"]


@app.command("list")
def list_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List every plan."""
    with state_of(ctx).transaction() as session:
        plans = [plan for _record, plan in list_plans(session)]
    if as_json:
        emit_json([plan_to_json(p) for p in plans])
        return
    emit_table("plans", _COLUMNS, [_row(p) for p in plans])


@app.command("show")
def show_command(ctx: typer.Context, code: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Show one plan with its prices."""
    with state_of(ctx).transaction() as session:
        _record, plan = get_plan(session, code)
    if as_json:
        emit_json(plan_to_json(plan))
        return
    emit_table(plan.name, _COLUMNS, [_row(plan)])
    print_prices([(plan, p) for p in plan.prices], title=f"{plan.name} prices")
    if not plan.prices:
        console.print("No metered prices.", highlight=False)
