"""Invoice lines and totals (pure): plain inputs in, rounded lines out.

One invoice per customer and billing month holds, in order: base-fee and seat lines (prorated per
:mod:`spanledger.billing.subscriptions.proration`), credit-pack purchases, one usage line per priced
meter, a credits-applied line per credited meter, and late-usage lines. Every line is rounded once
(:func:`~spanledger.billing.pricing.round_line_amount`); the total is the sum of the rounded lines.
Upstream cost and margin are totals for the admin, never customer lines.

Credits: usage that credits covered is taken off the metered quantity before pricing; only what the
credits did not cover (the overage) is priced. Under a cost-plus price the credits also take off the
upstream cost of the events they covered (``credit_covered_cost``, see
:mod:`spanledger.billing.invoices.coverage`); without it the cost is shared pro rata of the units.

Late usage (the policy): an event that occurred in a billing month whose invoice is already finalized
is never added to that invoice. It is billed on the customer's next open invoice as a line
"late usage for <month>" whose amount is the *difference* the late events make to the original line:
``price(original quantity + late quantity) − original exact amount``, under the original price. So
tiers, included units and minimums/caps of the original month are honoured, and billing late never
costs more or less than billing on time would have (up to one rounding per line). The quantities are
those priced (after credits): the late units credits covered, and their upstream cost, come off the
late quantity and cost exactly as on the month's own line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from spanledger.billing.pricing import LineCharge, Price, price_usage, round_line_amount
from spanledger.billing.subscriptions.proration import BaseFeeCharge

__all__ = [
    "InvoiceLine",
    "InvoiceTotals",
    "LateUsageInput",
    "LineKind",
    "UsageInput",
    "base_fee_line",
    "credits_line",
    "invoice_totals",
    "late_usage_line",
    "pack_line",
    "usage_line",
]

_ZERO = Decimal(0)


class LineKind(StrEnum):
    BASE_FEE = "base_fee"
    SEATS = "seats"
    CREDIT_PACK = "credit_pack"
    USAGE = "usage"
    CREDITS = "credits"
    LATE_USAGE = "late_usage"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One customer-visible line. ``exact_amount`` is kept so late usage can be trued up later."""

    kind: LineKind
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    exact_amount: Decimal
    amount: Decimal
    meter: str | None = None
    upstream_cost: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UsageInput:
    """A period's usage of one priced meter for one customer."""

    meter: str
    price: Price
    quantity: Decimal
    upstream_cost: Decimal | None = None
    unknown_cost_events: int = 0
    #: Units of the quantity that credits paid for (not priced again).
    credit_covered_units: Decimal = _ZERO
    #: Upstream cost of the events credits paid for (cost-plus); ``None``: pro rata of the units.
    credit_covered_cost: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LateUsageInput:
    """Usage that arrived after ``period_label``'s invoice was finalized.

    ``original_*`` is what closed invoices already billed for the month: the *priced* quantity (after
    credits), the exact amount and the upstream cost priced (cost-plus). ``late_quantity`` and
    ``late_upstream_cost`` are the usage and cost added since; credits covered ``late_covered_units``
    of it, worth ``late_covered_cost`` of upstream cost (``None``: pro rata of the units).
    """

    meter: str
    period_label: str
    price: Price
    original_quantity: Decimal
    original_exact_amount: Decimal
    late_quantity: Decimal
    original_upstream_cost: Decimal | None = None
    late_upstream_cost: Decimal | None = None
    late_covered_units: Decimal = _ZERO
    late_covered_cost: Decimal | None = None


def _charge_details(charge: LineCharge) -> dict[str, Any]:
    details: dict[str, Any] = {
        "quantity": str(charge.quantity),
        "included_units": str(charge.included_units),
        "billable_quantity": str(charge.billable_quantity),
        "exact_amount": str(charge.exact_amount),
    }
    if charge.tiers:
        details["tiers"] = [
            {
                "tier": tier.tier_index + 1,
                "from": str(tier.first_unit),
                "to": str(tier.last_unit),
                "quantity": str(tier.quantity),
                "unit_price": str(tier.unit_price),
                "unit_size": str(tier.unit_size),
                "flat_fee": str(tier.flat_fee),
                "amount": str(tier.amount),
            }
            for tier in charge.tiers
        ]
    if charge.clamped_to:
        details["clamped_to"] = charge.clamped_to
    return details


def _unit_amount(price: Price) -> Decimal | None:
    model = price.model
    return getattr(model, "unit_price", None)


def usage_line(usage: UsageInput) -> InvoiceLine:
    """The usage line of one meter; credit-covered units are not priced."""
    priced_quantity = max(_ZERO, usage.quantity - usage.credit_covered_units)
    billable_cost = _billable_cost(
        usage.upstream_cost, usage.quantity, usage.credit_covered_units, usage.credit_covered_cost
    )
    # No usage costs nothing upstream (a cost-plus line of a month without events is 0, not an error).
    priced_cost = _ZERO if billable_cost is None and usage.quantity == 0 else billable_cost
    charge = price_usage(usage.price, priced_quantity, upstream_cost=priced_cost)
    details = _charge_details(charge)
    details["usage_quantity"] = str(usage.quantity)
    if billable_cost is not None:
        details["billable_upstream_cost"] = str(billable_cost)
    if usage.credit_covered_units:
        details["credit_covered_units"] = str(usage.credit_covered_units)
    if usage.credit_covered_cost is not None:
        details["credit_covered_cost"] = str(usage.credit_covered_cost)
    if usage.unknown_cost_events:
        details["unknown_cost_events"] = usage.unknown_cost_events
    return InvoiceLine(
        LineKind.USAGE,
        f"{usage.meter} usage",
        usage.quantity,
        _unit_amount(usage.price),
        charge.exact_amount,
        charge.amount,
        meter=usage.meter,
        upstream_cost=usage.upstream_cost,
        details=details,
    )


def _billable_cost(
    cost: Decimal | None, quantity: Decimal, covered_units: Decimal, covered_cost: Decimal | None
) -> Decimal | None:
    """The upstream cost left to price once credits paid for ``covered_units`` (worth ``covered_cost``)."""
    if cost is None:
        return None
    if covered_cost is not None:
        return max(_ZERO, cost - covered_cost)
    if quantity > 0 and covered_units > 0:
        return cost * max(_ZERO, quantity - covered_units) / quantity
    return cost


def late_usage_line(late: LateUsageInput) -> InvoiceLine:
    """The true-up line for usage that arrived after its month was finalized (see the module doc)."""
    covered = max(_ZERO, min(late.late_covered_units, late.late_quantity))
    priced_late = late.late_quantity - covered
    billable = _billable_cost(late.late_upstream_cost, late.late_quantity, covered, late.late_covered_cost)
    # A month with no event had no cost: nothing billed so far is zero, not unknown.
    total_cost = (late.original_upstream_cost or _ZERO) + (billable or _ZERO)
    priced = late.original_quantity + priced_late
    charge = price_usage(late.price, max(_ZERO, priced), upstream_cost=total_cost)
    exact = charge.exact_amount - late.original_exact_amount
    return InvoiceLine(
        LineKind.LATE_USAGE,
        f"{late.meter} late usage for {late.period_label}",
        late.late_quantity,
        _unit_amount(late.price),
        exact,
        round_line_amount(exact, late.price.currency),
        meter=late.meter,
        upstream_cost=late.late_upstream_cost,
        details={
            "period": late.period_label,
            "original_quantity": str(late.original_quantity),
            "original_exact_amount": str(late.original_exact_amount),
            "recomputed_exact_amount": str(charge.exact_amount),
            "priced_quantity": str(priced_late),
            "credit_covered_units": str(covered),
            "billable_upstream_cost": None if billable is None else str(billable),
        },
    )


def base_fee_line(charge: BaseFeeCharge, currency: str) -> InvoiceLine:
    """A base-fee or extra-seats line."""
    kind = LineKind.SEATS if charge.seats else LineKind.BASE_FEE
    return InvoiceLine(
        kind,
        charge.description,
        charge.quantity,
        charge.unit_amount,
        charge.amount,
        round_line_amount(charge.amount, currency),
        details={
            "plan": charge.plan_code,
            "from": charge.start.isoformat(),
            "to": charge.end.isoformat(),
            "fraction": str(charge.fraction),
        },
    )


def pack_line(
    pack_name: str, price: Decimal, currency: str, purchased_at: datetime, *, code: str | None = None
) -> InvoiceLine:
    """A credit pack bought during the period, described by its name (``Credit pack Starter``)."""
    details: dict[str, Any] = {"purchased_at": purchased_at.isoformat()}
    if code is not None:
        details["pack"] = code
    return InvoiceLine(
        LineKind.CREDIT_PACK,
        f"Credit pack {pack_name}",
        Decimal(1),
        price,
        price,
        round_line_amount(price, currency),
        details=details,
    )


def credits_line(meter: str, credits_applied: Decimal, units: Decimal, currency: str) -> InvoiceLine:
    """An informational line (amount 0): credits that paid for ``units`` of ``meter``."""
    return InvoiceLine(
        LineKind.CREDITS,
        f"{meter} credits applied",
        credits_applied,
        None,
        _ZERO,
        round_line_amount(_ZERO, currency),
        meter=meter,
        details={"credits_applied": str(credits_applied), "units_covered": str(units)},
    )


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    """The customer total (sum of rounded lines) and the admin-only cost and margin."""

    subtotal: Decimal
    total: Decimal
    upstream_cost: Decimal | None
    unknown_cost_events: int
    margin: Decimal | None


def invoice_totals(lines: Sequence[InvoiceLine], currency: str) -> InvoiceTotals:
    """Totals of ``lines``. Cost is ``None`` only when no line had a known cost."""
    subtotal = sum((line.amount for line in lines), round_line_amount(_ZERO, currency))
    costs = [line.upstream_cost for line in lines if line.upstream_cost is not None]
    unknown = sum(int(line.details.get("unknown_cost_events", 0)) for line in lines)
    cost = sum(costs, _ZERO) if costs else None
    margin = None if cost is None else subtotal - cost
    return InvoiceTotals(subtotal, subtotal, cost, unknown, margin)
