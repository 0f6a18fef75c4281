"""Mode ``meters`` (pure): usage events aggregated into Stripe meter events.

Usage is summed per customer, Stripe meter and interval (five minutes by default), so Stripe gets
one request per customer and meter per interval, never one per LLM call. Each meter event's
``identifier`` is a hash of what it covers — the Stripe meter, the sequence range of the batch, the
customer and the interval — so recomputing an interrupted batch yields the same identifiers, and
Stripe's identifier de-duplication drops any event it already has.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

__all__ = ["MeterEventBatch", "UsagePoint", "aggregate_usage", "meter_event_identifier"]

#: Stripe accepts meter events at most 35 days old.
MAX_EVENT_AGE = timedelta(days=35)


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """One usage event's contribution to a meter: 1 for a count, the field's value for a sum."""

    customer_id: int
    occurred_at: datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class MeterEventBatch:
    """One meter event to send: a customer's total for one Stripe meter over one interval."""

    stripe_event_name: str
    customer_id: int
    interval_start: datetime
    value: Decimal
    events: int
    identifier: str

    @property
    def timestamp(self) -> int:
        return int(self.interval_start.timestamp())

    @property
    def value_text(self) -> str:
        """The value as Stripe's payload wants it: a plain decimal string (``"1500"``, ``"0.25"``)."""
        text = format(self.value.normalize(), "f")
        return "0" if text == "-0" else text


def meter_event_identifier(
    stripe_event_name: str,
    after_sequence: int,
    upto_sequence: int,
    customer_id: int,
    interval_start: datetime,
) -> str:
    """A stable identifier (at most 100 characters, as Stripe requires) for one meter event."""
    basis = "|".join(
        (
            stripe_event_name,
            str(after_sequence),
            str(upto_sequence),
            str(customer_id),
            str(int(interval_start.timestamp())),
        )
    )
    return "spanledger-" + hashlib.sha256(basis.encode()).hexdigest()[:48]


def _interval_start(moment: datetime, interval_seconds: int) -> datetime:
    epoch = int(moment.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_seconds, UTC)


def aggregate_usage(
    points: Iterable[UsagePoint],
    *,
    stripe_event_name: str,
    interval_seconds: int,
    after_sequence: int,
    upto_sequence: int,
) -> list[MeterEventBatch]:
    """Sum ``points`` per customer and interval; intervals whose total is zero are left out."""
    totals: dict[tuple[int, datetime], tuple[Decimal, int]] = {}
    for point in points:
        key = (point.customer_id, _interval_start(point.occurred_at, interval_seconds))
        value, count = totals.get(key, (Decimal(0), 0))
        totals[key] = (value + point.value, count + 1)
    return [
        MeterEventBatch(
            stripe_event_name=stripe_event_name,
            customer_id=customer_id,
            interval_start=start,
            value=value,
            events=count,
            identifier=meter_event_identifier(
                stripe_event_name, after_sequence, upto_sequence, customer_id, start
            ),
        )
        for (customer_id, start), (value, count) in sorted(
            totals.items(), key=lambda kv: (kv[0][1], kv[0][0])
        )
        if value != 0
    ]
