"""What a subscription owes for its base fee and seats in one billing period, and the proration rule.

The rule, stated once:

- The base fee is charged per billing period, in advance of nothing: it is simply part of the
  period's invoice. Monthly plans charge it every billing month; yearly plans charge it on the
  invoice of the billing month in which the yearly term starts (and nothing in the other eleven).
- A plan change in the middle of a billing month prorates the base fee **by the second**: each plan
  that was active during the month is charged ``base_fee × seconds active / seconds in the month``.
  A subscription that starts or is canceled mid-month is prorated the same way. Yearly plans are never
  prorated: changes to or from a yearly plan take effect at the end of the yearly term.
- Usage is never prorated: the whole month's usage is priced by the plan active at the end of the
  month (or at cancellation), with that plan's full included allowance.
- Seats are charged for the seat count at the end of the period, under the same proration fraction
  as the base fee of the plan that prices them.

Everything here is exact; the invoice rounds each resulting line once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from spanledger.billing.plans.models import Interval, Plan
from spanledger.billing.subscriptions.periods import Period, billing_period_containing

__all__ = ["BaseFeeCharge", "PlanSegment", "base_fee_charges"]


@dataclass(frozen=True, slots=True)
class PlanSegment:
    """The subscription was on ``plan`` from ``start`` until ``end`` (``None``: still is)."""

    plan: Plan
    start: datetime
    end: datetime | None = None
    seats: int = 0


@dataclass(frozen=True, slots=True)
class BaseFeeCharge:
    """One base-fee (or seats) line before rounding: ``amount = unit_amount × quantity × fraction``."""

    plan_code: str
    description: str
    start: datetime
    end: datetime
    unit_amount: Decimal
    quantity: Decimal
    fraction: Decimal
    amount: Decimal
    seats: bool = False


def base_fee_charges(
    segments: Sequence[PlanSegment], period: Period, anchor: datetime
) -> list[BaseFeeCharge]:
    """The base-fee and seat charges of ``period`` (one billing month) for the plan ``segments``.

    ``anchor`` is the subscription's billing anchor; it decides when a yearly term starts.
    """
    charges: list[BaseFeeCharge] = []
    for segment in segments:
        plan = segment.plan
        overlap = period.overlap_seconds(segment.start, segment.end)
        if overlap <= 0:
            continue
        start = max(segment.start, period.start)
        end = period.end if segment.end is None else min(segment.end, period.end)
        if plan.interval is Interval.YEAR:
            term = billing_period_containing(anchor, Interval.YEAR, period.start)
            if not period.contains(term.start):
                continue
            fraction = Decimal(1)
        else:
            fraction = overlap / period.seconds
        prorated = fraction != 1
        label = f"{plan.name} base fee" + (" (prorated)" if prorated else "")
        if plan.base_fee > 0:
            charges.append(
                BaseFeeCharge(
                    plan.code,
                    label,
                    start,
                    end,
                    plan.base_fee,
                    Decimal(1),
                    fraction,
                    plan.base_fee * fraction,
                )
            )
        if plan.seats is not None:
            extra = plan.seats.billable_seats(segment.seats)
            if extra and plan.seats.price_per_seat > 0:
                quantity = Decimal(extra)
                charges.append(
                    BaseFeeCharge(
                        plan.code,
                        f"{plan.name} extra seats" + (" (prorated)" if prorated else ""),
                        start,
                        end,
                        plan.seats.price_per_seat,
                        quantity,
                        fraction,
                        plan.seats.price_per_seat * quantity * fraction,
                        seats=True,
                    )
                )
    return charges
