"""Plans: base fee, priced meters, seats and credit grants (pure data) and their storage service."""

from spanledger.billing.plans.models import CreditGrantRule, Interval, Plan, PlanPrice, SeatPricing

__all__ = ["CreditGrantRule", "Interval", "Plan", "PlanPrice", "SeatPricing"]
