"""Margin arithmetic (pure): revenue against upstream cost, and how revenue is attributed.

Revenue is what invoices charge; upstream cost is what providers charged for the same usage. A usage
line's amount is attributed to the events it covers in proportion to their metered quantity
(:func:`allocate`, exact to the minor unit: the parts always add up to the line), so revenue can be
grouped by model, provider or day as well as by customer. Base fees and seats belong to the customer
only (model and provider ``(base fee)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from spanledger.billing.pricing import currency_exponent

__all__ = ["MarginRow", "TimeBucket", "allocate", "bucket_start", "margin_rows"]

_ZERO = Decimal(0)


class TimeBucket(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class MarginRow:
    """Revenue, upstream cost and margin for one group. ``margin_percent`` is ``None`` without revenue."""

    key: str
    revenue: Decimal
    upstream_cost: Decimal
    unknown_cost_events: int = 0

    @property
    def gross_margin(self) -> Decimal:
        return self.revenue - self.upstream_cost

    @property
    def margin_percent(self) -> Decimal | None:
        if self.revenue == 0:
            return None
        return (self.gross_margin * 100 / self.revenue).quantize(Decimal("0.01"))

    @property
    def negative(self) -> bool:
        return self.gross_margin < 0


def margin_rows(items: Iterable[tuple[str, Decimal, Decimal, int]]) -> list[MarginRow]:
    """Group ``(key, revenue, cost, unknown_cost_events)`` items by key, sorted by key."""
    totals: dict[str, list[Decimal | int]] = {}
    for key, revenue, cost, unknown in items:
        entry = totals.setdefault(key, [_ZERO, _ZERO, 0])
        entry[0] += revenue
        entry[1] += cost
        entry[2] += unknown
    return [MarginRow(key, Decimal(v[0]), Decimal(v[1]), int(v[2])) for key, v in sorted(totals.items())]


def allocate(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split ``amount`` (already in minor units of ``currency``) in proportion to ``weights``.

    Largest remainder: every part is a whole number of minor units and the parts sum to ``amount``.
    Zero total weight splits evenly.
    """
    if not weights:
        return []
    quantum = Decimal(1).scaleb(-currency_exponent(currency))
    total_weight = sum(weights, _ZERO)
    if total_weight == 0:
        weights = [Decimal(1)] * len(weights)
        total_weight = Decimal(len(weights))
    exact = [amount * w / total_weight for w in weights]
    floors = [e.quantize(quantum, rounding=ROUND_FLOOR) for e in exact]
    left = int(((amount - sum(floors, _ZERO)) / quantum).to_integral_value())
    order = sorted(range(len(weights)), key=lambda i: (floors[i] - exact[i], i))
    for index in order[:left]:
        floors[index] += quantum
    return floors


def bucket_start(moment: datetime, bucket: TimeBucket) -> date:
    """The first day of the day/ISO week/month that contains ``moment`` (UTC)."""
    day = moment.date()
    bucket = TimeBucket(bucket)
    if bucket is TimeBucket.DAY:
        return day
    if bucket is TimeBucket.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)
