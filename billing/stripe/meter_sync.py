"""Mode ``meters``: push usage to Stripe as meter events, once, behind a high-water mark.

Per configured Stripe meter (``SPANLEDGER_STRIPE_METERS``), one batch per run covers the usage
events with ``last_sequence < sequence <= pending_sequence``. The batch's upper bound is committed
*before* anything is sent, and every accepted meter event is counted (``pending_sent``), so an
interrupted batch is recomputed over exactly the same events and resumes after the last event
Stripe accepted; identifiers (see :mod:`~spanledger.billing.stripe.meter_batches`) and idempotency
keys make even a repeated request harmless. Only when the whole batch is accepted does the mark
advance. Usage of customers billed in mode ``invoices`` is skipped (not sent, mark still advances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.meters.fields import resolve_field
from spanledger.billing.meters.filters import compile_filter
from spanledger.billing.meters.service import get_meter, to_definition
from spanledger.billing.models import Customer, EventRecord, StripeCustomerLink, StripeUsageMark
from spanledger.billing.stripe.client import call_stripe
from spanledger.billing.stripe.customers import customer_mode, ensure_stripe_customer
from spanledger.billing.stripe.errors import StripeSyncError
from spanledger.billing.stripe.meter_batches import (
    MAX_EVENT_AGE,
    MeterEventBatch,
    UsagePoint,
    aggregate_usage,
)
from spanledger.billing.stripe.settings import StripeMode, StripeSettings

__all__ = ["DEFAULT_BATCH_EVENTS", "MeterSyncResult", "sync_meter_usage"]

#: The most usage events one batch covers; a backlog is worked off over several runs.
DEFAULT_BATCH_EVENTS = 50_000


@dataclass
class MeterSyncResult:
    meter: str
    stripe_event_name: str
    outcome: str
    after_sequence: int = 0
    upto_sequence: int = 0
    usage_events: int = 0
    meter_events_sent: int = 0
    skipped_too_old: int = 0
    meter_events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _points(session: Session, meter_name: str, after: int, upto: int) -> list[tuple[int, UsagePoint]]:
    definition = to_definition(get_meter(session, meter_name))
    if definition.aggregation is Aggregation.COUNT:
        value = literal(1)
    elif definition.aggregation is Aggregation.SUM and definition.field:
        value = resolve_field(definition.field).numeric_expression()
    else:
        raise ConfigurationError(
            f"meter {meter_name!r} aggregates with {definition.aggregation}; "
            "only sum and count meters can be pushed to Stripe (Stripe adds the values up)"
        )
    statement = (
        select(EventRecord.sequence, EventRecord.customer_id, EventRecord.occurred_at, value)
        .select_from(EventRecord.__table__.join(Customer.__table__, Customer.id == EventRecord.customer_id))
        .where(
            EventRecord.sequence > after,
            EventRecord.sequence <= upto,
            EventRecord.event_name == definition.event_name,
        )
        .order_by(EventRecord.sequence)
    )
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    with storage_errors():
        rows = session.execute(statement).all()
    return [
        (customer_id, UsagePoint(customer_id, occurred_at, Decimal(str(amount))))
        for _, customer_id, occurred_at, amount in rows
        if amount is not None
    ]


def _batch_upper_bound(session: Session, after: int, limit: int) -> int:
    window = select(EventRecord.sequence).where(EventRecord.sequence > after).order_by(EventRecord.sequence)
    upper = session.scalar(select(func.max(window.limit(limit).subquery().c.sequence)))
    return int(upper) if upper is not None else after


def _mark(session: Session, event_name: str) -> StripeUsageMark:
    mark = session.get(StripeUsageMark, event_name)
    if mark is None:
        mark = StripeUsageMark(
            stripe_event_name=event_name, last_sequence=0, pending_sent=0, updated_at=_now()
        )
        session.add(mark)
        session.flush()
    return mark


def _billed_by_meters(session: Session, settings: StripeSettings, customer_ids: set[int]) -> set[int]:
    links = {link.customer_id: link for link in session.scalars(select(StripeCustomerLink))}
    return {cid for cid in customer_ids if customer_mode(links.get(cid), settings) is StripeMode.METERS}


def _sync_one(
    sessions: sessionmaker[Session],
    client: stripe.StripeClient | None,
    settings: StripeSettings,
    meter_name: str,
    event_name: str,
    dry_run: bool,
    batch_events: int,
) -> MeterSyncResult:
    result = MeterSyncResult(meter_name, event_name, "would_send" if dry_run else "sent")
    with sessions() as session, session.begin(), storage_errors():
        # A dry run reads the mark but never creates or moves it.
        mark = session.get(StripeUsageMark, event_name) if dry_run else _mark(session, event_name)
        after = mark.last_sequence if mark else 0
        pending = mark.pending_sequence if mark else None
        upto = pending or _batch_upper_bound(session, after, batch_events)
        already_sent = mark.pending_sent if mark and pending else 0
        if mark is not None and not dry_run and pending is None:
            mark.pending_sequence, mark.pending_sent, mark.updated_at = upto, 0, _now()
        points = _points(session, meter_name, after, upto)
        eligible = _billed_by_meters(session, settings, {cid for cid, _ in points})
    result.after_sequence, result.upto_sequence = after, upto
    result.usage_events = sum(1 for cid, _ in points if cid in eligible)
    batches = aggregate_usage(
        (point for cid, point in points if cid in eligible),
        stripe_event_name=event_name,
        interval_seconds=settings.meter_interval_seconds,
        after_sequence=after,
        upto_sequence=upto,
    )
    oldest_allowed = _now() - MAX_EVENT_AGE
    result.meter_events = [_describe(batch) for batch in batches]
    if dry_run:
        return result
    assert client is not None
    try:
        for index, batch in enumerate(batches):
            if index < already_sent:
                continue
            if batch.interval_start < oldest_allowed:
                result.skipped_too_old += 1
            else:
                _send(sessions, client, settings, batch)
                result.meter_events_sent += 1
            with sessions() as session, session.begin(), storage_errors():
                mark = _mark(session, event_name)
                mark.pending_sent, mark.updated_at = index + 1, _now()
    except StripeSyncError as exc:
        result.outcome, result.error, result.error_kind = "failed", str(exc), exc.kind
        return result
    with sessions() as session, session.begin(), storage_errors():
        mark = _mark(session, event_name)
        mark.last_sequence, mark.pending_sequence, mark.pending_sent, mark.updated_at = upto, None, 0, _now()
    return result


def _send(
    sessions: sessionmaker[Session],
    client: stripe.StripeClient,
    settings: StripeSettings,
    batch: MeterEventBatch,
) -> None:
    with sessions() as session, session.begin(), storage_errors():
        customer = session.get(Customer, batch.customer_id)
        assert customer is not None
        stripe_customer = ensure_stripe_customer(session, client, settings, customer).stripe_customer_id
    assert stripe_customer is not None
    call_stripe(
        lambda: client.v1.billing.meter_events.create(
            params={
                "event_name": batch.stripe_event_name,
                "identifier": batch.identifier,
                "timestamp": batch.timestamp,
                "payload": {"stripe_customer_id": stripe_customer, "value": batch.value_text},
            },
            options={"idempotency_key": batch.identifier},
        ),
        settings,
    )


def _describe(batch: MeterEventBatch) -> dict[str, Any]:
    return {
        "customer_id": batch.customer_id,
        "interval_start": batch.interval_start,
        "value": batch.value_text,
        "usage_events": batch.events,
        "identifier": batch.identifier,
    }


def sync_meter_usage(
    sessions: sessionmaker[Session],
    client: stripe.StripeClient | None,
    settings: StripeSettings,
    *,
    dry_run: bool = False,
    batch_events: int = DEFAULT_BATCH_EVENTS,
) -> list[MeterSyncResult]:
    """Push one batch per configured Stripe meter; errors are reported per meter, never raised."""
    return [
        _sync_one(sessions, client, settings, meter_name, event_name, dry_run, batch_events)
        for meter_name, event_name in sorted(settings.meters.items())
    ]
