"""The ``invoices`` table: one invoice per customer and billing month (``period``, e.g. 2026-11).

``number`` is set when the invoice is finalized (gapless per currency, see ``invoice_numbers``);
a finalized invoice never changes except for ``paid_at`` / ``voided_at`` and its status.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal, UTCDateTime

__all__ = ["InvoiceRecord"]


class InvoiceRecord(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("customer_id", "period"),
        UniqueConstraint("currency", "number_sequence"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    period: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    number_sequence: Mapped[int | None] = mapped_column(BigInteger)
    subtotal: Mapped[Decimal] = mapped_column(ExactDecimal(12))
    total: Mapped[Decimal] = mapped_column(ExactDecimal(12))
    upstream_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    margin: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    unknown_cost_events: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
