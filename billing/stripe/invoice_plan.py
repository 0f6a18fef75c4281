"""What a finalized spanledger invoice becomes in Stripe (pure: plain data in, request parameters out).

One Stripe invoice item per invoice line, in the line's order, with the amount in the currency's
minor unit. Line amounts are already rounded by the one rounding rule
(:func:`~spanledger.billing.pricing.round_line_amount`); converting to minor units is exact, and a
line that is not (a bug upstream) is refused rather than rounded a second time.

Idempotency keys are derived from our ids only, so a re-run after a crash sends byte-identical
requests with identical keys, and Stripe answers with the objects it already created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from spanledger.billing.errors import ConflictError
from spanledger.billing.pricing import currency_exponent, round_line_amount

__all__ = [
    "InvoiceLineSnapshot",
    "InvoiceSnapshot",
    "PlannedItem",
    "idempotency_key",
    "invoice_metadata",
    "item_description",
    "plan_items",
    "to_minor_units",
]

#: Prefix of every idempotency key and metadata key spanledger writes to Stripe.
KEY_PREFIX = "spanledger"


@dataclass(frozen=True, slots=True)
class InvoiceLineSnapshot:
    id: int
    position: int
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceSnapshot:
    id: int
    number: str
    customer_external_id: str
    period: str
    currency: str
    total: Decimal
    lines: tuple[InvoiceLineSnapshot, ...]


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One invoice item to create: the line it comes from and the exact Stripe parameters."""

    line_id: int
    amount_minor: int
    description: str
    idempotency_key: str
    metadata: dict[str, str]


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.34")`` USD → ``1234``; refuses an amount that is not already rounded."""
    if round_line_amount(amount, currency) != amount:
        raise ConflictError(f"{amount} {currency} is not rounded to the currency's minor unit")
    return int(amount.scaleb(currency_exponent(currency)))


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def item_description(line: InvoiceLineSnapshot, currency: str) -> str:
    """``"gpt-4o output tokens: 1500000 × 0.00001 USD"`` — what the customer reads on Stripe's invoice."""
    quantity = _plain(line.quantity)
    if line.unit_amount is None:
        return f"{line.description} (quantity {quantity})"[:500]
    return f"{line.description}: {quantity} × {_plain(line.unit_amount)} {currency.upper()}"[:500]


def idempotency_key(invoice_id: int, step: str) -> str:
    """The idempotency key of one write about invoice ``invoice_id`` (``create``, ``line-7``, …)."""
    return f"{KEY_PREFIX}-invoice-{invoice_id}-{step}"


def invoice_metadata(invoice: InvoiceSnapshot) -> dict[str, str]:
    return {
        f"{KEY_PREFIX}_invoice_id": str(invoice.id),
        f"{KEY_PREFIX}_invoice_number": invoice.number,
        f"{KEY_PREFIX}_period": invoice.period,
    }


def plan_items(invoice: InvoiceSnapshot) -> list[PlannedItem]:
    """The invoice items of ``invoice``, one per line; their sum is the invoice total."""
    lines: Sequence[InvoiceLineSnapshot] = sorted(invoice.lines, key=lambda line: (line.position, line.id))
    items = [
        PlannedItem(
            line_id=line.id,
            amount_minor=to_minor_units(line.amount, invoice.currency),
            description=item_description(line, invoice.currency),
            idempotency_key=idempotency_key(invoice.id, f"line-{line.id}"),
            metadata={
                f"{KEY_PREFIX}_invoice_id": str(invoice.id),
                f"{KEY_PREFIX}_invoice_line_id": str(line.id),
            },
        )
        for line in lines
    ]
    if sum(item.amount_minor for item in items) != to_minor_units(invoice.total, invoice.currency):
        raise ConflictError(f"invoice {invoice.number}: its lines do not add up to its total {invoice.total}")
    return items
