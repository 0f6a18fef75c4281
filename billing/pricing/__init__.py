"""Pricing: plain data in, Decimal out. No database, no clock.

``price_usage(price, quantity)`` prices one period of one meter; ``round_line_amount`` is the one
rounding rule (see :mod:`spanledger.billing.pricing.rounding`).
"""

from spanledger.billing.pricing.charges import (
    LineCharge,
    TierCharge,
    graduated_charges,
    price_usage,
    volume_charge,
)
from spanledger.billing.pricing.models import (
    CostPlus,
    Graduated,
    Package,
    PerUnit,
    Price,
    PriceModel,
    Tier,
    Volume,
)
from spanledger.billing.pricing.rounding import (
    UNIT_PRICE_PLACES,
    InvalidPriceError,
    currency_exponent,
    normalize_currency,
    round_line_amount,
    validate_unit_price,
)

__all__ = [
    "UNIT_PRICE_PLACES",
    "CostPlus",
    "Graduated",
    "InvalidPriceError",
    "LineCharge",
    "Package",
    "PerUnit",
    "Price",
    "PriceModel",
    "Tier",
    "TierCharge",
    "Volume",
    "currency_exponent",
    "graduated_charges",
    "normalize_currency",
    "price_usage",
    "round_line_amount",
    "validate_unit_price",
    "volume_charge",
]
