"""``spanledger prices``: the price of each meter in each plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from spanledger.billing.catalog import price_to_json
from spanledger.billing.cli._output import JSON_OPTION, emit_json, emit_table
from spanledger.billing.cli._state import state_of
from spanledger.billing.errors import NotFoundError
from spanledger.billing.plans import Plan, PlanPrice
from spanledger.billing.pricing import CostPlus, Graduated, Package, PerUnit, Volume
from spanledger.billing.subscriptions import get_plan, list_plans

__all__ = ["app", "print_prices"]

app = typer.Typer(
    help="List and show prices (they are declared in plans; see `spanledger apply`).", no_args_is_help=True
)


def describe(plan_price: PlanPrice) -> str:
    """The price rule in one line, e.g. ``0.02 per 1000 units``."""
    model = plan_price.price.model
    if isinstance(model, PerUnit):
        return f"{model.unit_price} per {model.unit_size} units"
    if isinstance(model, Package):
        return f"{model.package_price} per started block of {model.package_size} units"
    if isinstance(model, Graduated | Volume):
        kind = "graduated" if isinstance(model, Graduated) else "volume"
        tiers = "; ".join(f"≤{t.up_to if t.up_to is not None else '∞'}: {t.unit_price}" for t in model.tiers)
        return f"{kind} per {model.unit_size} units ({tiers})"
    assert isinstance(model, CostPlus)
    fee = f" + {model.fee_per_unit} per {model.unit_size} units" if model.fee_per_unit else ""
    return f"upstream cost + {model.markup_percent}%{fee}"


def _as_dict(plan: Plan, plan_price: PlanPrice) -> dict[str, Any]:
    return {"plan": plan.code, "meter": plan_price.meter, **price_to_json(plan_price.price)}


def print_prices(items: Sequence[tuple[Plan, PlanPrice]], title: str = "prices") -> None:
    emit_table(
        title,
        ["plan", "meter", "rule", "included units", "minimum", "maximum", "currency"],
        [
            (
                plan.code,
                p.meter,
                describe(p),
                p.price.included_units,
                p.price.minimum_amount,
                p.price.maximum_amount,
                p.price.currency,
            )
            for plan, p in items
        ],
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    plan_code: str | None = typer.Option(None, "--plan", help="Only this plan's prices."),
    meter: str | None = typer.Option(None, "--meter", help="Only the prices of this meter."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List prices per plan and meter."""
    with state_of(ctx).transaction() as session:
        plans = [get_plan(session, plan_code)] if plan_code else list_plans(session)
    items = [(plan, p) for _r, plan in plans for p in plan.prices if meter is None or p.meter == meter]
    if as_json:
        emit_json([_as_dict(plan, p) for plan, p in items])
        return
    print_prices(items)


@app.command("show")
def show_command(
    ctx: typer.Context,
    plan_code: str = typer.Argument(..., help="The plan code, e.g. writer."),
    meter: str = typer.Argument(..., help="The meter the price applies to, e.g. tokens."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the price of METER in PLAN."""
    with state_of(ctx).transaction() as session:
        _record, plan = get_plan(session, plan_code)
    found = next((p for p in plan.prices if p.meter == meter), None)
    if found is None:
        raise NotFoundError(
            f"plan {plan_code!r} has no price for meter {meter!r}; see `spanledger prices list`"
        )
    if as_json:
        emit_json(_as_dict(plan, found))
        return
    print_prices([(plan, found)], title=f"{plan.code} / {meter}")
