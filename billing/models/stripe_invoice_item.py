"""The ``stripe_invoice_items`` table: the Stripe invoice item created for one invoice line."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["StripeInvoiceItem"]


class StripeInvoiceItem(Base):
    __tablename__ = "stripe_invoice_items"

    invoice_line_id: Mapped[int] = mapped_column(
        ForeignKey("invoice_lines.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_invoice_item_id: Mapped[str] = mapped_column(String(255), unique=True)
    #: The amount sent, in the currency's minor unit (cents), exactly as Stripe accepted it.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
