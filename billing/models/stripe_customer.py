"""The ``stripe_customers`` table: which Stripe customer pays for which spanledger customer.

One row per linked customer. ``mode`` overrides the deployment's default Stripe mode for this
customer (``invoices``: spanledger rates and Stripe collects; ``meters``: Stripe rates from meter
events); ``None`` means the default (``SPANLEDGER_STRIPE_MODE``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["StripeCustomerLink"]


class StripeCustomerLink(Base):
    __tablename__ = "stripe_customers"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    #: ``None`` while only the mode is set; the next sync links (finds or creates) the Stripe customer.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    mode: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
