"""The ``subscription_phases`` table: the subscription was on ``plan_id`` during ``[start, end)``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["SubscriptionPhase"]


class SubscriptionPhase(Base):
    __tablename__ = "subscription_phases"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime | None] = mapped_column(UTCDateTime())
