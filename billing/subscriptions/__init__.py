"""Subscriptions: billing periods, the proration rule and status (pure), and their storage service."""

from spanledger.billing.subscriptions.periods import (
    Period,
    add_months,
    billing_month_starting_in,
    billing_period_containing,
    parse_period,
)
from spanledger.billing.subscriptions.proration import BaseFeeCharge, PlanSegment, base_fee_charges
from spanledger.billing.subscriptions.service import (
    PhaseView,
    SubscriptionView,
    cancel,
    change_plan,
    get_plan,
    get_subscription,
    list_plans,
    list_subscriptions,
    plan_segments,
    subscribe,
    subscription_view,
)
from spanledger.billing.subscriptions.status import SubscriptionStatus, status_at

__all__ = [
    "BaseFeeCharge",
    "Period",
    "PhaseView",
    "PlanSegment",
    "SubscriptionStatus",
    "SubscriptionView",
    "add_months",
    "base_fee_charges",
    "billing_month_starting_in",
    "billing_period_containing",
    "cancel",
    "change_plan",
    "get_plan",
    "get_subscription",
    "list_plans",
    "list_subscriptions",
    "parse_period",
    "plan_segments",
    "status_at",
    "subscribe",
    "subscription_view",
]
