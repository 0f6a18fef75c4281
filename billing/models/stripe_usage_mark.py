"""The ``stripe_usage_marks`` table: how far usage has been pushed to Stripe as meter events.

One row per Stripe meter event name. ``last_sequence`` is the high-water mark: every usage event
with ``sequence <= last_sequence`` has been sent. A batch first records its upper bound in
``pending_sequence`` (committed before anything is sent), so a batch interrupted by a crash is
recomputed over exactly the same events and re-sent with the same identifiers, which Stripe
de-duplicates. Sequences grow in commit order, so nothing can appear below a mark later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["StripeUsageMark"]


class StripeUsageMark(Base):
    __tablename__ = "stripe_usage_marks"

    stripe_event_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_sequence: Mapped[int | None] = mapped_column(BigInteger)
    #: How many meter events of the pending batch Stripe already accepted (skipped on resume).
    pending_sent: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
