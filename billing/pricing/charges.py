"""Turn a period's metered quantity into one priced line: exact arithmetic, one rounding at the end.

:func:`price_usage` is the whole pricing rule of spanledger in one pure function. It never sees events,
only the period's total quantity (and, for cost-plus, the total upstream cost), so the amount cannot
depend on how usage was split across events; and it rounds once, through
:func:`~spanledger.billing.pricing.rounding.round_line_amount`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from spanledger.billing.pricing.models import (
    CostPlus,
    Graduated,
    Package,
    PerUnit,
    Price,
    Tier,
    Volume,
)
from spanledger.billing.pricing.rounding import InvalidPriceError, round_line_amount

__all__ = ["LineCharge", "TierCharge", "graduated_charges", "price_usage", "volume_charge"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class TierCharge:
    """The part of a line priced by one tier: units ``first_unit``..``last_unit`` (exact, unrounded)."""

    tier_index: int
    first_unit: Decimal
    last_unit: Decimal
    quantity: Decimal
    unit_price: Decimal
    unit_size: Decimal
    flat_fee: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class LineCharge:
    """One priced line. ``exact_amount`` is unrounded; ``amount`` is what the invoice shows."""

    currency: str
    quantity: Decimal
    included_units: Decimal
    billable_quantity: Decimal
    exact_amount: Decimal
    amount: Decimal
    tiers: tuple[TierCharge, ...] = ()
    upstream_cost: Decimal | None = None
    #: "minimum" or "maximum" when the period's clamp changed the amount, else ``None``.
    clamped_to: str | None = None


def graduated_charges(tiers: tuple[Tier, ...], quantity: Decimal, unit_size: Decimal) -> list[TierCharge]:
    """The per-tier breakdown of ``quantity`` units under graduated ``tiers`` (exact amounts)."""
    charges: list[TierCharge] = []
    lower = _ZERO
    for index, tier in enumerate(tiers):
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        in_tier = upper - lower
        amount = in_tier * tier.unit_price / unit_size + tier.flat_fee
        charges.append(
            TierCharge(index, lower, upper, in_tier, tier.unit_price, unit_size, tier.flat_fee, amount)
        )
        if tier.up_to is None:
            break
        lower = tier.up_to
    return charges


def volume_charge(tiers: tuple[Tier, ...], quantity: Decimal, unit_size: Decimal) -> TierCharge:
    """The single charge for ``quantity`` units priced entirely at the tier the quantity reaches."""
    for index, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            flat_fee = tier.flat_fee if quantity > 0 else _ZERO
            amount = quantity * tier.unit_price / unit_size + flat_fee
            return TierCharge(index, _ZERO, quantity, quantity, tier.unit_price, unit_size, flat_fee, amount)
    raise AssertionError("validated tiers always end with an unbounded tier")


def price_usage(price: Price, quantity: Decimal, *, upstream_cost: Decimal | None = None) -> LineCharge:
    """Price ``quantity`` units used in one period; ``upstream_cost`` is required for cost-plus prices.

    Included units come off first; the model prices the remaining (billable) units; the period's
    minimum and maximum clamp the exact amount; the result is rounded once to the currency's minor unit.
    For cost-plus, included units make the same fraction of the upstream cost free.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, Decimal | int):
        raise TypeError(f"quantity must be a Decimal, not {type(quantity).__name__}")
    quantity = Decimal(quantity)
    if not quantity.is_finite() or quantity < 0:
        raise InvalidPriceError(f"quantity must be zero or more, not {quantity}")
    included = min(quantity, price.included_units)
    billable = quantity - included
    model = price.model
    tiers: tuple[TierCharge, ...] = ()
    if isinstance(model, PerUnit):
        exact = billable * model.unit_price / model.unit_size
    elif isinstance(model, Package):
        packages = (billable / model.package_size).to_integral_value(rounding=ROUND_CEILING)
        exact = packages * model.package_price
    elif isinstance(model, Graduated):
        tiers = tuple(graduated_charges(model.tiers, billable, model.unit_size))
        exact = sum((charge.amount for charge in tiers), _ZERO)
    elif isinstance(model, Volume):
        tiers = (volume_charge(model.tiers, billable, model.unit_size),)
        exact = tiers[0].amount
    elif isinstance(model, CostPlus):
        if upstream_cost is None:
            raise InvalidPriceError("a cost-plus price needs the upstream cost of the usage")
        if upstream_cost < 0:
            raise InvalidPriceError(f"upstream cost must be zero or more, not {upstream_cost}")
        billable_cost = upstream_cost if quantity == 0 else upstream_cost * billable / quantity
        fee = billable * model.fee_per_unit / model.unit_size
        exact = billable_cost * (1 + model.markup_percent / 100) + fee
    else:  # pragma: no cover - Price validates the model type
        raise InvalidPriceError(f"unknown price model {type(model).__name__}")
    clamped_to = None
    if price.minimum_amount is not None and exact < price.minimum_amount:
        exact, clamped_to = price.minimum_amount, "minimum"
    if price.maximum_amount is not None and exact > price.maximum_amount:
        exact, clamped_to = price.maximum_amount, "maximum"
    return LineCharge(
        currency=price.currency,
        quantity=quantity,
        included_units=included,
        billable_quantity=billable,
        exact_amount=exact,
        amount=round_line_amount(exact, price.currency),
        tiers=tiers,
        upstream_cost=upstream_cost,
        clamped_to=clamped_to,
    )
