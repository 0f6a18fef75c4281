"""Subscriptions: billing periods, the proration rule and status (pure), and their storage service."""

from spanledger.billing.subscriptions.periods import (
    Period,
    add_months,
    billing_month_starting_in,
    billing_period_containing,
    parse_period,
)
from spanledger.billing.subscriptions.proration import BaseFeeCharge, PlanSegment, base_fee_charges
from spanledger.billing.subscriptions.status import SubscriptionStatus, status_at

__all__ = [
    "BaseFeeCharge",
    "Period",
    "PlanSegment",
    "SubscriptionStatus",
    "add_months",
    "base_fee_charges",
    "billing_month_starting_in",
    "billing_period_containing",
    "parse_period",
    "status_at",
]
