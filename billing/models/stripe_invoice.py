"""The ``stripe_invoices`` table: the Stripe side of one finalized spanledger invoice.

``sync_state`` only moves forward, and only after Stripe accepted the step:
``pending`` → ``created`` (Stripe invoice exists) → ``items_added`` → ``finalized`` →
``charged`` (a payment was requested). ``payment_status`` is what Stripe says about the money
(``paid``, ``failed``, ``void`` …), from the API or from webhooks; ``payment_event_at`` is the
creation time of the webhook event that last set it, so an older event never overrides a newer one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["StripeInvoiceSync"]


class StripeInvoiceSync(Base):
    __tablename__ = "stripe_invoices"

    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    sync_state: Mapped[str] = mapped_column(String(16))
    stripe_status: Mapped[str | None] = mapped_column(String(32))
    payment_status: Mapped[str | None] = mapped_column(String(32))
    payment_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
