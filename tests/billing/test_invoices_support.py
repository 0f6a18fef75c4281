"""Shared builders for the invoice tests (plain functions; this module holds no tests).

Subscriptions are inserted as model rows directly, so these tests do not depend on the
subscriptions service.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal as D

from sqlalchemy.orm import Session

from spanledger.billing.catalog import plan_from_json
from spanledger.billing.catalog.schema import plan_to_json
from spanledger.billing.customers import create_customer
from spanledger.billing.ingest import ingest
from spanledger.billing.meters import MeterDefinition, create_meter
from spanledger.billing.models import CreditMeter, PlanRecord, SubscriptionPhase, SubscriptionRecord
from spanledger.billing.usage_event import UsageEvent

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
OCT = datetime(2026, 10, 1, tzinfo=UTC)

WRITER = {
    "code": "writer",
    "name": "Writer",
    "base_fee": "29",
    "prices": [
        {
            "meter": "tokens",
            "model": "per_unit",
            "unit_price": "0.02",
            "unit_size": 1000,
            "included_units": 50000,
        }
    ],
}
GRADUATED = {
    "code": "graduated",
    "name": "Graduated",
    "base_fee": "0",
    "prices": [
        {
            "meter": "tokens",
            "model": "graduated",
            "unit_size": 1000,
            "tiers": [
                {"up_to": 100000, "unit_price": "0.02"},
                {"up_to": 1000000, "unit_price": "0.015"},
                {"up_to": 10000000, "unit_price": "0.01"},
                {"up_to": None, "unit_price": "0.008"},
            ],
        }
    ],
}


def add_meter(session: Session, credits_per: D | None = None) -> None:
    meter = create_meter(session, MeterDefinition.parse("tokens", "sum", "total_tokens"))
    if credits_per is not None:
        session.add(CreditMeter(meter_id=meter.id, units_per_credit=credits_per))
    session.flush()


def add_plan(session: Session, definition: dict) -> PlanRecord:
    plan = plan_from_json(definition)
    record = PlanRecord(
        code=plan.code, name=plan.name, currency=plan.currency, definition=plan_to_json(plan),
        updated_at=NOV,
    )  # fmt: skip
    session.add(record)
    session.flush()
    return record


def subscribe(
    session: Session, customer: str, plan: PlanRecord, start: datetime = OCT, seats: int = 0
) -> None:
    record = create_customer(session, customer)
    subscription = SubscriptionRecord(
        customer_id=record.id, anchor=start, started_at=start, seats=seats, created_at=start
    )
    session.add(subscription)
    session.flush()
    session.add(SubscriptionPhase(subscription_id=subscription.id, plan_id=plan.id, start=start, end=None))
    session.flush()


def call(key: str, customer: str, tokens: int, at: datetime) -> UsageEvent:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return UsageEvent(
        key, at, customer, provider="openai", response_model="gpt-4o", input_tokens=tokens, output_tokens=0,
        trace_id=digest[:32], span_id=digest[32:48],
    )  # fmt: skip


def writer_setup(session: Session, credits_per: D | None = None) -> None:
    """Meter ``tokens``, plan Writer, customer ``acme`` subscribed since October."""
    with session.begin():
        add_meter(session, credits_per)
        subscribe(session, "acme", add_plan(session, WRITER))


def store(session: Session, *events: UsageEvent) -> None:
    with session.begin():
        ingest(session, list(events))
