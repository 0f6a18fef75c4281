"""Plans as plain data: a base fee per period, priced meters, seats and credit grants.

A plan is a bundle a customer subscribes to::

    Writer  $29 / month, 50,000 tokens included, overage $0.02 per 1,000 tokens
    Team    $99 / month, 250,000 included, $0.015 / 1,000, 5 seats included
    Agency  $299 / month, 1,000,000 included, $0.01 / 1,000, unlimited seats

Included usage is the ``included_units`` of the plan's :class:`~spanledger.billing.pricing.Price` for
that meter. Seats are a quantity on the subscription, charged ``price_per_seat`` for each seat above
``included`` (``None`` = unlimited seats, never charged). Credit grants put credits into the customer's
ledger every month (also on yearly plans) or every billing period.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from spanledger.billing.pricing import InvalidPriceError, Price, normalize_currency, validate_unit_price

__all__ = ["CreditGrantRule", "Interval", "Plan", "PlanPrice", "SeatPricing"]


class Interval(StrEnum):
    """How often a plan's base fee recurs."""

    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class PlanPrice:
    """The price of one meter (by its slug) inside a plan."""

    meter: str
    price: Price


@dataclass(frozen=True, slots=True)
class SeatPricing:
    """``price_per_seat`` for each seat above ``included`` per billing period; ``None``: unlimited."""

    included: int | None
    price_per_seat: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.included is not None and (isinstance(self.included, bool) or self.included < 0):
            raise InvalidPriceError(f"included seats must be zero or more, not {self.included}")
        object.__setattr__(self, "price_per_seat", validate_unit_price(self.price_per_seat, "price per seat"))

    def billable_seats(self, seats: int) -> int:
        """The seats that are charged when the subscription has ``seats``."""
        if seats < 0:
            raise InvalidPriceError(f"a subscription cannot have {seats} seats")
        if self.included is None:
            return 0
        return max(0, seats - self.included)


@dataclass(frozen=True, slots=True)
class CreditGrantRule:
    """``credits`` for ``meter`` granted every ``every`` (month or the plan's period).

    Unused granted credits expire at the end of the grant period, except up to ``rollover_limit``
    credits that are carried into the next one (see :mod:`spanledger.billing.credits`).
    """

    meter: str
    credits: Decimal
    every: Interval = Interval.MONTH
    rollover_limit: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "credits", validate_unit_price(self.credits, "granted credits"))
        object.__setattr__(self, "rollover_limit", validate_unit_price(self.rollover_limit, "rollover limit"))
        object.__setattr__(self, "every", Interval(self.every))


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan. ``code`` is its stable identifier (``writer``); ``name`` is for people."""

    code: str
    name: str
    currency: str
    base_fee: Decimal
    interval: Interval = Interval.MONTH
    prices: tuple[PlanPrice, ...] = ()
    credit_grants: tuple[CreditGrantRule, ...] = ()
    seats: SeatPricing | None = None
    #: When the plan's credits run out: True bills the overage, False stops at zero (usage is refused
    #: upstream by the product; any usage that still arrives is billed anyway, never lost).
    allows_overage: bool = True

    def __post_init__(self) -> None:
        if not self.code or not self.code.strip():
            raise InvalidPriceError("a plan needs a code")
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        object.__setattr__(self, "base_fee", validate_unit_price(self.base_fee, "base fee"))
        object.__setattr__(self, "interval", Interval(self.interval))
        object.__setattr__(self, "prices", tuple(self.prices))
        object.__setattr__(self, "credit_grants", tuple(self.credit_grants))
        meters = [price.meter for price in self.prices]
        duplicates = sorted({meter for meter in meters if meters.count(meter) > 1})
        if duplicates:
            raise InvalidPriceError(f"plan {self.code} prices meter {duplicates[0]} more than once")
        for plan_price in self.prices:
            if plan_price.price.currency != self.currency:
                raise InvalidPriceError(
                    f"plan {self.code} is in {self.currency} but its {plan_price.meter} price is in "
                    f"{plan_price.price.currency}"
                )

    def price_for(self, meter: str) -> Price | None:
        """The plan's price for ``meter``, or ``None`` when the plan does not price it."""
        for plan_price in self.prices:
            if plan_price.meter == meter:
                return plan_price.price
        return None
