"""Subscription status as a pure function of its dates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

__all__ = ["SubscriptionStatus", "status_at"]


class SubscriptionStatus(StrEnum):
    """``active``; ``canceled_at_period_end`` (still active, ends at ``ends_at``); ``canceled``."""

    ACTIVE = "active"
    CANCELED_AT_PERIOD_END = "canceled_at_period_end"
    CANCELED = "canceled"


def status_at(started_at: datetime, ends_at: datetime | None, moment: datetime) -> SubscriptionStatus | None:
    """The status at ``moment``; ``None`` before the subscription starts."""
    if moment < started_at:
        return None
    if ends_at is None:
        return SubscriptionStatus.ACTIVE
    if moment < ends_at:
        return SubscriptionStatus.CANCELED_AT_PERIOD_END
    return SubscriptionStatus.CANCELED
