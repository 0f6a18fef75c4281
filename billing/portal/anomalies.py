"""Usage anomalies (pure): a day on which a customer used more than their own p99 of daily usage.

Each day is compared with the customer's *earlier* days (so a spike is judged against the history
before it, not against itself), using the nearest-rank 99th percentile; a day needs at least
:data:`MIN_HISTORY_DAYS` earlier days with usage before it can be called an anomaly. With fewer than
100 earlier days the nearest-rank p99 is the previous maximum, so the rule then reads "a new record
day" — which is what an operator wants to look at.

Pure: the daily usage it judges (requests per customer and UTC day) is read by
:mod:`spanledger.billing.portal.admin_data` from the hourly rollups, never from the events.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["MIN_HISTORY_DAYS", "Anomaly", "nearest_rank_percentile", "usage_anomalies"]

MIN_HISTORY_DAYS = 7


@dataclass(frozen=True, slots=True)
class Anomaly:
    customer: str
    day: str
    usage: Decimal
    p99: Decimal
    history_days: int


def nearest_rank_percentile(values: Sequence[Decimal], percentile: int) -> Decimal:
    """The nearest-rank percentile of ``values`` (non-empty): the smallest value with at least
    ``percentile`` % of the values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile * len(ordered) / 100))
    return ordered[rank - 1]


def usage_anomalies(
    daily: Mapping[str, Sequence[tuple[str, Decimal]]], *, min_history: int = MIN_HISTORY_DAYS
) -> list[Anomaly]:
    """The anomalous ``(customer, day)`` pairs of ``daily`` (per customer: ``(YYYY-MM-DD, usage)``),
    the largest excess over p99 first."""
    found = []
    for customer, days in daily.items():
        history: list[Decimal] = []  # the earlier days' usage, kept sorted (not re-sorted per day)
        for index, (day, usage) in enumerate(sorted(days)):
            if index >= min_history:
                # nearest_rank_percentile(history, 99), read off the sorted history
                p99 = history[max(1, math.ceil(99 * index / 100)) - 1]
                if usage > p99:
                    found.append(Anomaly(customer, day, usage, p99, index))
            bisect.insort(history, usage)
    return sorted(found, key=lambda a: (-(a.usage - a.p99), a.customer, a.day))
