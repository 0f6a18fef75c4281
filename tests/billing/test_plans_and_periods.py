from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.plans import CreditGrantRule, Interval, Plan, PlanPrice, SeatPricing
from spanledger.billing.pricing import InvalidPriceError, PerUnit, Price, price_usage
from spanledger.billing.subscriptions import (
    Period,
    PlanSegment,
    SubscriptionStatus,
    add_months,
    base_fee_charges,
    billing_month_starting_in,
    billing_period_containing,
    parse_period,
    status_at,
)


def tokens(price_per_1k: str, included: int) -> PlanPrice:
    return PlanPrice("tokens", Price(PerUnit(D(price_per_1k), unit_size=D(1000)), included_units=D(included)))


WRITER = Plan("writer", "Writer", "USD", D(29), prices=(tokens("0.02", 50_000),))
TEAM = Plan("team", "Team", "USD", D(99), prices=(tokens("0.015", 250_000),), seats=SeatPricing(5, D(15)))
AGENCY = Plan("agency", "Agency", "USD", D(299), prices=(tokens("0.01", 1_000_000),), seats=SeatPricing(None))
NOV = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("plan", "usage", "overage"),
    [(WRITER, 175_000, D("2.50")), (TEAM, 450_000, D("3.00")), (AGENCY, 3_000_000, D("20.00"))],
)
def test_plans_from_the_issue(plan, usage, overage):
    assert price_usage(plan.price_for("tokens"), D(usage)).amount == overage
    charges = base_fee_charges([PlanSegment(plan, NOV.start)], NOV, NOV.start)
    assert [c.amount for c in charges] == [plan.base_fee]


def test_team_charges_seats_above_five_and_agency_never():
    team = base_fee_charges([PlanSegment(TEAM, NOV.start, seats=8)], NOV, NOV.start)
    assert [(c.seats, c.quantity, c.amount) for c in team] == [(False, 1, D(99)), (True, 3, D(45))]
    agency = base_fee_charges([PlanSegment(AGENCY, NOV.start, seats=500)], NOV, NOV.start)
    assert len(agency) == 1


def test_mid_month_plan_change_prorates_base_fee_by_the_second():
    change = datetime(2026, 11, 16, tzinfo=UTC)  # 15 of 30 days on Writer, 15 on Team
    charges = base_fee_charges(
        [PlanSegment(WRITER, datetime(2026, 10, 1, tzinfo=UTC), change), PlanSegment(TEAM, change)],
        NOV,
        datetime(2026, 10, 1, tzinfo=UTC),
    )
    assert [(c.plan_code, c.fraction, c.amount) for c in charges] == [
        ("writer", D("0.5"), D("14.5")),
        ("team", D("0.5"), D("49.5")),
    ]
    assert all("prorated" in c.description for c in charges)


def test_yearly_plan_charges_base_fee_once_a_year():
    yearly = Plan("writer-yearly", "Writer yearly", "USD", D(290), interval=Interval.YEAR)
    anchor = datetime(2026, 3, 1, tzinfo=UTC)
    assert base_fee_charges([PlanSegment(yearly, anchor)], NOV, anchor) == []
    march = billing_month_starting_in(anchor, 2027, 3)
    assert [c.amount for c in base_fee_charges([PlanSegment(yearly, anchor)], march, anchor)] == [D(290)]


def test_anchor_on_the_31st_clamps_and_does_not_drift():
    anchor = datetime(2026, 1, 31, 9, tzinfo=UTC)
    assert add_months(anchor, 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(anchor, 2) == datetime(2026, 3, 31, 9, tzinfo=UTC)
    feb = billing_month_starting_in(anchor, 2026, 2)
    assert (feb.start.day, feb.end.day) == (28, 31)


def test_billing_period_containing():
    anchor = datetime(2026, 1, 15, tzinfo=UTC)
    period = billing_period_containing(anchor, Interval.MONTH, datetime(2026, 11, 3, tzinfo=UTC))
    assert (period.start, period.end) == (
        datetime(2026, 10, 15, tzinfo=UTC),
        datetime(2026, 11, 15, tzinfo=UTC),
    )
    year = billing_period_containing(anchor, Interval.YEAR, datetime(2027, 1, 14, tzinfo=UTC))
    assert (year.start.year, year.end.year) == (2026, 2027)


def test_parse_period():
    assert parse_period("2026-11") == (2026, 11)
    for bad in ("2026-13", "Nov 2026", "2026-1"):
        with pytest.raises(ConfigurationError, match="YYYY-MM"):
            parse_period(bad)


def test_status():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime(2026, 12, 1, tzinfo=UTC)
    assert status_at(start, None, end) is SubscriptionStatus.ACTIVE
    assert (
        status_at(start, end, datetime(2026, 11, 5, tzinfo=UTC)) is SubscriptionStatus.CANCELED_AT_PERIOD_END
    )
    assert status_at(start, end, end) is SubscriptionStatus.CANCELED
    assert status_at(start, None, datetime(2026, 10, 1, tzinfo=UTC)) is None


def test_plan_validation():
    with pytest.raises(InvalidPriceError, match="more than once"):
        Plan("x", "X", "USD", D(1), prices=(tokens("0.01", 0), tokens("0.02", 0)))
    with pytest.raises(InvalidPriceError, match="is in USD"):
        Plan("x", "X", "USD", D(1), prices=(PlanPrice("t", Price(PerUnit(D(1)), currency="EUR")),))
    with pytest.raises(InvalidPriceError, match="seats"):
        SeatPricing(-1)
    assert CreditGrantRule("tokens", D(100), every="month").every is Interval.MONTH
