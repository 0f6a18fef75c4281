"""Billing periods: pure date arithmetic on aware UTC datetimes.

A subscription's billing months start on its anchor's day of month at the anchor's time of day; a
month without that day uses its last day (anchor Jan 31 → Feb 28 → Mar 31), so periods never drift.
Periods are half-open ``[start, end)``. ``invoices run --period 2026-11`` bills, for each subscription,
the billing month that *starts* in November 2026 (with the default anchor, the 1st, exactly November).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.plans.models import Interval

__all__ = [
    "Period",
    "add_months",
    "billing_month_starting_in",
    "billing_period_containing",
    "parse_period",
]

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open window ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigurationError("period bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ConfigurationError(f"period end {self.end} is not after its start {self.start}")

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in the period."""
        return self.start <= moment < self.end

    @property
    def seconds(self) -> Decimal:
        """The period's length in seconds, exactly."""
        return _seconds(self.end - self.start)

    def overlap_seconds(self, start: datetime, end: datetime | None) -> Decimal:
        """How many seconds of ``[start, end)`` (``end`` ``None``: open) fall inside the period."""
        lower = max(start, self.start)
        upper = self.end if end is None else min(end, self.end)
        return _seconds(upper - lower) if upper > lower else Decimal(0)

    def label(self) -> str:
        """``2026-11`` for a period starting in November 2026."""
        return f"{self.start.year:04d}-{self.start.month:02d}"


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(1_000_000)


def parse_period(text: str) -> tuple[int, int]:
    """``"2026-11"`` → ``(2026, 11)``; raise a one-sentence error otherwise."""
    match = _PERIOD.match(text.strip()) if isinstance(text, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ConfigurationError(f"period {text!r} is not a month in the form YYYY-MM, e.g. 2026-11")
    return int(match.group(1)), int(match.group(2))


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by ``months`` calendar months, clamping the day to the month's last day."""
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def _months_between(anchor: datetime, year: int, month: int) -> int:
    return (year * 12 + month - 1) - (anchor.year * 12 + anchor.month - 1)


def billing_month_starting_in(anchor: datetime, year: int, month: int) -> Period:
    """The billing month of a subscription anchored at ``anchor`` that starts in ``year``-``month``."""
    anchor = anchor.astimezone(UTC)
    offset = _months_between(anchor, year, month)
    return Period(add_months(anchor, offset), add_months(anchor, offset + 1))


def billing_period_containing(anchor: datetime, interval: Interval, moment: datetime) -> Period:
    """The monthly or yearly billing period (anchored at ``anchor``) that contains ``moment``."""
    anchor = anchor.astimezone(UTC)
    step = 12 if Interval(interval) is Interval.YEAR else 1
    offset = _months_between(anchor, moment.year, moment.month)
    offset -= offset % step
    start = add_months(anchor, offset)
    while start > moment:
        offset -= step
        start = add_months(anchor, offset)
    while add_months(anchor, offset + step) <= moment:
        offset += step
    return Period(add_months(anchor, offset), add_months(anchor, offset + step))
