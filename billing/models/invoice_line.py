"""The ``invoice_lines`` table: one line of an invoice, with its audit trail.

A usage line records exactly which events it covers: the customer, the meter (and a snapshot of its
filter and aggregation), the window ``[window_start, window_end)`` of ``occurred_at``, and the
ingestion sequence range ``(after_sequence, max_sequence]``. ``spanledger invoices explain`` replays
that selection and recomputes the amount from the price snapshot.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal, UTCDateTime

__all__ = ["InvoiceLineRecord"]


class InvoiceLineRecord(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(512))
    # Text on SQLite: a month of tokens can exceed the scaled-integer range (see models/types.py).
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(12, sqlite_storage="text"))
    unit_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    #: The unrounded amount as text: it may need more than 12 decimal places.
    exact_amount: Mapped[str] = mapped_column(String(80))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(12))
    upstream_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    meter_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    price_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    after_sequence: Mapped[int | None] = mapped_column(BigInteger)
    max_sequence: Mapped[int | None] = mapped_column(BigInteger)
