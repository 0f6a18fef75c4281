"""Credit packs: credits sold for a price (``Starter 10,000 credits $29``, ``Enterprise unlimited $999``).

A purchase records what was sold on its ledger entry — the pack's code, price and currency, and its
name in the entry's reason (``purchased pack starter: Starter``) — so an invoice describes the pack as
it was sold, whatever the catalog says later (:func:`sold_pack_name`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from spanledger.billing.credits.ledger import CreditEntry, EntryKind, GrantSource
from spanledger.billing.pricing import InvalidPriceError, normalize_currency, validate_unit_price

__all__ = ["CreditPack", "purchase_entry", "sold_pack_name"]

_REASON = "purchased pack {code}"
#: The ledger's ``reason`` column holds at most this many characters.
_REASON_LENGTH = 512


@dataclass(frozen=True, slots=True)
class CreditPack:
    """``credits`` (``None``: unlimited) for ``meter`` at ``price``, valid ``valid_days`` (``None``: ever)."""

    code: str
    name: str
    meter: str
    credits: Decimal | None
    price: Decimal
    currency: str = "USD"
    valid_days: int | None = None

    def __post_init__(self) -> None:
        if not self.code or not self.code.strip():
            raise InvalidPriceError("a credit pack needs a code")
        if self.credits is not None:
            credits = validate_unit_price(self.credits, "pack credits")
            if credits == 0:
                raise InvalidPriceError(f"credit pack {self.code} grants no credits")
            object.__setattr__(self, "credits", credits)
        object.__setattr__(self, "price", validate_unit_price(self.price, "pack price"))
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        if self.valid_days is not None and (isinstance(self.valid_days, bool) or self.valid_days <= 0):
            raise InvalidPriceError(f"valid_days of pack {self.code} must be a positive whole number")
        if self.credits is None and self.valid_days is None:
            raise InvalidPriceError(f"unlimited pack {self.code} needs valid_days (e.g. 30)")

    @property
    def unlimited(self) -> bool:
        return self.credits is None


def purchase_entry(pack: CreditPack, purchased_at: datetime) -> CreditEntry:
    """The grant entry a purchase of ``pack`` appends to the ledger."""
    expires_at = None if pack.valid_days is None else purchased_at + timedelta(days=pack.valid_days)
    return CreditEntry(
        EntryKind.GRANT,
        pack.credits if pack.credits is not None else Decimal(0),
        purchased_at,
        source=GrantSource.PURCHASE,
        expires_at=expires_at,
        unlimited=pack.unlimited,
        reason=_purchase_reason(pack),
    )


def _purchase_reason(pack: CreditPack) -> str:
    plain = _REASON.format(code=pack.code)
    named = f"{plain}: {pack.name}"
    # A name too long for the column is left out: the invoice then shows the catalog's name.
    return named if len(named) <= _REASON_LENGTH else plain


def sold_pack_name(reason: str | None, code: str) -> str | None:
    """The pack's name as sold, read from its purchase entry's ``reason``; ``None`` for purchases
    recorded before names were kept (the caller falls back to the catalog)."""
    prefix = _REASON.format(code=code) + ": "
    if reason is None or not reason.startswith(prefix) or len(reason) == len(prefix):
        return None
    return reason[len(prefix) :]
