"""Subscriptions service: subscribe, change plan mid-period (prorated base fee), cancel, statuses."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from catalog_support import catalog_with_customer

from spanledger.billing.errors import ConflictError, NotFoundError
from spanledger.billing.subscriptions import (
    Period,
    SubscriptionStatus,
    base_fee_charges,
    cancel,
    change_plan,
    list_subscriptions,
    plan_segments,
    subscribe,
    subscription_view,
)

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
MID_NOV = datetime(2026, 11, 16, tzinfo=UTC)  # 15 of November's 30 days have passed

CATALOG = {
    "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
    "plans": [
        {"code": "writer", "name": "Writer", "base_fee": 29},
        {"code": "team", "name": "Team", "base_fee": 99, "seats": {"included": 5, "price_per_seat": 12}},
        {"code": "annual", "name": "Annual", "base_fee": 990, "interval": "year"},
        {"code": "euro", "name": "Euro", "base_fee": 25, "currency": "EUR"},
    ],
}


@pytest.fixture
def catalog_session(session):
    return catalog_with_customer(session, CATALOG)


def test_subscribe_is_active_with_its_billing_period(catalog_session):
    record = subscribe(catalog_session, "acme", "writer", start=NOV, seats=2)
    view = subscription_view(catalog_session, record, now=MID_NOV)
    assert (view.customer, view.plan, view.status, view.seats) == (
        "acme",
        "writer",
        SubscriptionStatus.ACTIVE,
        2,
    )
    assert view.current_period == Period(NOV, DEC)
    charges = base_fee_charges(plan_segments(catalog_session, record), Period(NOV, DEC), record.anchor)
    assert [c.amount for c in charges] == [Decimal(29)]


def test_mid_month_change_prorates_both_base_fees_by_the_second(catalog_session):
    record = subscribe(catalog_session, "acme", "writer", start=NOV, seats=7)
    assert change_plan(catalog_session, record.id, "team", at=MID_NOV) == MID_NOV
    charges = base_fee_charges(plan_segments(catalog_session, record), Period(NOV, DEC), record.anchor)
    by_line = {c.description: c.amount for c in charges}
    assert by_line == {
        "Writer base fee (prorated)": Decimal("14.5"),  # 29 × 15/30
        "Team base fee (prorated)": Decimal("49.5"),  # 99 × 15/30
        "Team extra seats (prorated)": Decimal(12),  # 2 seats above 5 × 12 × 15/30
    }
    view = subscription_view(catalog_session, record, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert view.plan == "team"
    assert [(p.plan, p.end) for p in view.phases] == [("writer", MID_NOV), ("team", None)]


def test_change_involving_a_yearly_plan_waits_for_the_term_end(catalog_session):
    record = subscribe(catalog_session, "acme", "annual", start=NOV)
    effective = change_plan(catalog_session, record.id, "writer", at=datetime(2027, 3, 5, tzinfo=UTC))
    assert effective == datetime(2027, 11, 1, tzinfo=UTC)
    with pytest.raises(ConflictError, match="already has a scheduled plan change"):
        change_plan(catalog_session, record.id, "team", at=datetime(2027, 4, 1, tzinfo=UTC))


def test_cancel_at_period_end_then_canceled(catalog_session):
    record = subscribe(catalog_session, "acme", "writer", start=NOV)
    assert cancel(catalog_session, record.id, at=MID_NOV) == DEC
    assert (
        subscription_view(catalog_session, record, now=MID_NOV).status
        is SubscriptionStatus.CANCELED_AT_PERIOD_END
    )
    assert subscription_view(catalog_session, record, now=DEC).status is SubscriptionStatus.CANCELED
    # Once it has ended, the customer may subscribe again.
    again = subscribe(catalog_session, "acme", "team", start=DEC)
    assert [s.id for s in list_subscriptions(catalog_session, "acme")] == [record.id, again.id]


def test_cancel_now_prorates_the_last_month(catalog_session):
    record = subscribe(catalog_session, "acme", "writer", start=NOV)
    assert cancel(catalog_session, record.id, at=MID_NOV, at_period_end=False) == MID_NOV
    charges = base_fee_charges(plan_segments(catalog_session, record), Period(NOV, DEC), record.anchor)
    assert [c.amount for c in charges] == [Decimal("14.5")]
    with pytest.raises(ConflictError, match="already canceled"):
        cancel(catalog_session, record.id, at=DEC)


def test_cancel_drops_a_scheduled_change(catalog_session):
    record = subscribe(catalog_session, "acme", "annual", start=NOV)
    change_plan(catalog_session, record.id, "writer", at=datetime(2027, 3, 5, tzinfo=UTC))
    cancel(catalog_session, record.id, at=datetime(2027, 3, 6, tzinfo=UTC), at_period_end=False)
    assert [p.plan for p in subscription_view(catalog_session, record).phases] == ["annual"]


def test_unhappy_paths(catalog_session):
    with pytest.raises(NotFoundError, match="no plan 'gold'"):
        subscribe(catalog_session, "acme", "gold", start=NOV)
    with pytest.raises(NotFoundError, match="no customer 'nobody'"):
        subscribe(catalog_session, "nobody", "writer", start=NOV)
    with pytest.raises(ConflictError, match="timezone-aware"):
        subscribe(catalog_session, "acme", "writer", start=datetime(2026, 11, 1))
    record = subscribe(catalog_session, "acme", "writer", start=NOV)
    with pytest.raises(ConflictError, match="already has subscription"):
        subscribe(catalog_session, "acme", "team", start=MID_NOV)
    with pytest.raises(ConflictError, match="already on plan 'writer'"):
        change_plan(catalog_session, record.id, "writer", at=MID_NOV)
    with pytest.raises(ConflictError, match="in EUR"):
        change_plan(catalog_session, record.id, "euro", at=MID_NOV)
    with pytest.raises(ConflictError, match="not active"):
        change_plan(catalog_session, record.id, "team", at=datetime(2026, 10, 1, tzinfo=UTC))
    with pytest.raises(NotFoundError, match="no subscription 999"):
        cancel(catalog_session, 999, at=MID_NOV)
