"""The one rounding rule of spanledger, and the precision of unit prices.

Money is exact :class:`~decimal.Decimal` everywhere. An invoice line's amount is computed exactly from
its quantity and its price (no intermediate rounding, never per event), and only then rounded, once, by
:func:`round_line_amount`: to the currency's minor unit (cents for USD), half-up (``0.125 → 0.13``).
Half-up is what a person checking an invoice by hand expects, and because rounding happens once per
line the bias of half-up is at most half a minor unit per line. Totals are sums of rounded lines, so
an invoice always adds up exactly as printed.

Unit prices (``$0.000002`` per token) keep up to :data:`UNIT_PRICE_PLACES` decimal places, the precision
of the ``Numeric(.., 12)`` columns that store them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from spanledger.billing.errors import ConfigurationError

__all__ = [
    "UNIT_PRICE_PLACES",
    "InvalidPriceError",
    "currency_exponent",
    "normalize_currency",
    "round_line_amount",
    "validate_unit_price",
]

UNIT_PRICE_PLACES = 12

# ISO 4217 currencies whose minor unit is not the hundredth. Every other three-letter code has 2.
_NON_DECIMAL_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


class InvalidPriceError(ConfigurationError):
    """A price, tier, plan or credit definition that cannot be used; the message says why."""


def normalize_currency(currency: str) -> str:
    """The upper-case ISO 4217 code for ``currency`` (``usd`` → ``USD``); raise if it is not one."""
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise InvalidPriceError(f"currency {currency!r} is not a three-letter ISO 4217 code such as USD")
    return code


def currency_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (USD 2, JPY 0, KWD 3)."""
    return _NON_DECIMAL_EXPONENTS.get(normalize_currency(currency), 2)


def round_line_amount(amount: Decimal, currency: str) -> Decimal:
    """Round one invoice line's exact amount to the currency's minor unit, half-up.

    This is the only place an amount is rounded. Call it once per line, on the exact amount.
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    quantum = Decimal(1).scaleb(-currency_exponent(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def validate_unit_price(value: Decimal, what: str = "unit price") -> Decimal:
    """Return ``value`` if it is a finite, non-negative Decimal with at most 12 decimal places."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidPriceError(f"{what} must be a decimal number, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise InvalidPriceError(f"{what} must be a finite number")
    if value < 0:
        raise InvalidPriceError(f"{what} must not be negative ({value})")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > UNIT_PRICE_PLACES:
        raise InvalidPriceError(f"{what} {value} has more than {UNIT_PRICE_PLACES} decimal places")
    return value
