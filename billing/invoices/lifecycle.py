"""The invoice lifecycle (pure): draft → finalized → paid or void.

A draft is recomputed by every ``invoices run`` of its period. Finalizing gives it the next gapless
number of its currency and freezes it: a finalized invoice never changes again (paying or voiding it
only records the fact and when). Corrections are new documents; usage that arrives late for a
finalized period is billed on the next open invoice (see :mod:`spanledger.billing.invoices.lines`).
"""

from __future__ import annotations

from enum import StrEnum

from spanledger.billing.errors import ConflictError, ImmutableInvoiceError

__all__ = ["InvoiceStatus", "check_editable", "check_transition", "format_number"]


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINALIZED = "finalized"
    PAID = "paid"
    VOID = "void"


_ALLOWED: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.FINALIZED, InvoiceStatus.VOID}),
    InvoiceStatus.FINALIZED: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset(),
    InvoiceStatus.VOID: frozenset(),
}


def check_transition(current: str, target: str, label: str = "the invoice") -> None:
    """Raise :class:`ConflictError` unless ``current`` may become ``target``."""
    source, destination = InvoiceStatus(current), InvoiceStatus(target)
    if destination not in _ALLOWED[source]:
        allowed = ", ".join(sorted(_ALLOWED[source])) or "nothing"
        raise ConflictError(f"{label} is {source}; it can become {allowed}, not {destination}")


def check_editable(current: str, label: str = "the invoice") -> None:
    """Raise :class:`ImmutableInvoiceError` unless the invoice is still a draft."""
    if InvoiceStatus(current) is not InvoiceStatus.DRAFT:
        raise ImmutableInvoiceError(f"{label} is {current} and can no longer change; issue a new document")


def format_number(currency: str, sequence: int) -> str:
    """The printed invoice number: ``USD-000042`` (gapless per currency)."""
    return f"{currency}-{sequence:06d}"
