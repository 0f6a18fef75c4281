"""Price definitions: plain, validated, immutable data.

A :class:`Price` is attached to a meter and says how a period's metered quantity becomes money. Its
``model`` is one of:

- :class:`PerUnit` — ``unit_price`` per ``unit_size`` units (``$0.02`` per 1,000 tokens); partial units
  are charged pro rata, the line is rounded once.
- :class:`Package` — ``package_price`` per started block of ``package_size`` units (rounded up).
- :class:`Graduated` — each tier prices its own units (the first 100K at one rate, the next at another).
- :class:`Volume` — every unit at the rate of the tier the total quantity reaches.
- :class:`CostPlus` — the upstream cost of the usage times ``1 + markup_percent / 100``, plus an optional
  ``fee_per_unit`` per ``unit_size`` units.

On top of the model, ``included_units`` are free each period (taken off the quantity first; the model
then prices the rest from its first unit), and ``minimum_amount`` / ``maximum_amount`` clamp the line's
amount for the period. Tier bounds (``up_to``) are inclusive and counted in units, not in unit sizes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from spanledger.billing.pricing.rounding import InvalidPriceError, normalize_currency, validate_unit_price

__all__ = [
    "CostPlus",
    "Graduated",
    "Package",
    "PerUnit",
    "Price",
    "PriceModel",
    "Tier",
    "Volume",
]

_ZERO = Decimal(0)


def _positive(value: Decimal | int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidPriceError(f"{what} must be a decimal number, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite() or value <= 0:
        raise InvalidPriceError(f"{what} must be a positive number, not {value}")
    return value


def _non_negative(value: Decimal | int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidPriceError(f"{what} must be a decimal number, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise InvalidPriceError(f"{what} must be zero or more, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier: units up to and including ``up_to`` (``None``: no upper bound) at ``unit_price``.

    ``flat_fee`` is added once when the tier is used (graduated: any unit falls in it; volume: the
    total reaches it).
    """

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            object.__setattr__(self, "up_to", _positive(self.up_to, "tier up_to"))
        object.__setattr__(self, "unit_price", validate_unit_price(self.unit_price, "tier unit price"))
        object.__setattr__(self, "flat_fee", _non_negative(self.flat_fee, "tier flat fee"))


def _validate_tiers(tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
    tiers = tuple(tiers)
    if not tiers:
        raise InvalidPriceError("a tiered price needs at least one tier")
    if tiers[-1].up_to is not None:
        raise InvalidPriceError("the last tier must have no upper bound (up_to: null)")
    bounds = [tier.up_to for tier in tiers[:-1]]
    if any(bound is None for bound in bounds):
        raise InvalidPriceError("only the last tier may have no upper bound")
    for lower, upper in itertools.pairwise(bounds):
        if upper <= lower:  # type: ignore[operator]
            raise InvalidPriceError(f"tier bounds must increase, but {upper} follows {lower}")
    return tiers


@dataclass(frozen=True, slots=True)
class PerUnit:
    """``unit_price`` for every ``unit_size`` units, pro rata."""

    unit_price: Decimal
    unit_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit_price", validate_unit_price(self.unit_price))
        object.__setattr__(self, "unit_size", _positive(self.unit_size, "unit size"))


@dataclass(frozen=True, slots=True)
class Package:
    """``package_price`` for every started block of ``package_size`` units."""

    package_price: Decimal
    package_size: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "package_price", validate_unit_price(self.package_price, "package price"))
        object.__setattr__(self, "package_size", _positive(self.package_size, "package size"))


@dataclass(frozen=True, slots=True)
class Graduated:
    """Each tier prices the units that fall in it; tier prices are per ``unit_size`` units."""

    tiers: tuple[Tier, ...]
    unit_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers", _validate_tiers(self.tiers))
        object.__setattr__(self, "unit_size", _positive(self.unit_size, "unit size"))


@dataclass(frozen=True, slots=True)
class Volume:
    """All units at the price of the tier the total quantity falls in."""

    tiers: tuple[Tier, ...]
    unit_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers", _validate_tiers(self.tiers))
        object.__setattr__(self, "unit_size", _positive(self.unit_size, "unit size"))


@dataclass(frozen=True, slots=True)
class CostPlus:
    """Upstream cost × (1 + ``markup_percent`` / 100) + ``fee_per_unit`` per ``unit_size`` units."""

    markup_percent: Decimal
    fee_per_unit: Decimal = _ZERO
    unit_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        markup = self.markup_percent
        if isinstance(markup, bool) or not isinstance(markup, Decimal | int):
            raise InvalidPriceError(f"markup_percent must be a decimal number, not {type(markup).__name__}")
        markup = Decimal(markup)
        if not markup.is_finite() or markup < -100:
            raise InvalidPriceError(f"markup_percent must be -100 or more, not {markup}")
        object.__setattr__(self, "markup_percent", markup)
        object.__setattr__(self, "fee_per_unit", validate_unit_price(self.fee_per_unit, "fee per unit"))
        object.__setattr__(self, "unit_size", _positive(self.unit_size, "unit size"))


PriceModel = PerUnit | Package | Graduated | Volume | CostPlus


@dataclass(frozen=True, slots=True)
class Price:
    """How one meter's quantity in a period becomes one invoice line."""

    model: PriceModel
    currency: str = "USD"
    included_units: Decimal = _ZERO
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, PerUnit | Package | Graduated | Volume | CostPlus):
            raise InvalidPriceError(f"unknown price model {type(self.model).__name__}")
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        object.__setattr__(self, "included_units", _non_negative(self.included_units, "included units"))
        if self.minimum_amount is not None:
            object.__setattr__(self, "minimum_amount", _non_negative(self.minimum_amount, "minimum amount"))
        if self.maximum_amount is not None:
            object.__setattr__(self, "maximum_amount", _non_negative(self.maximum_amount, "maximum amount"))
        if (
            self.minimum_amount is not None
            and self.maximum_amount is not None
            and self.maximum_amount < self.minimum_amount
        ):
            raise InvalidPriceError(
                f"maximum amount {self.maximum_amount} is below minimum amount {self.minimum_amount}"
            )
