"""Meter operations on the database (the session is passed in; the caller owns the transaction).

Queries scan ``usage_events`` through the ``(customer_id, occurred_at)`` index. Issue 8 replaces
the scan of long windows with hourly rollups kept in the ingest transaction; ``meter_usage`` is the
one function that will choose between rollups and events, so callers do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConflictError, InvalidMeterError, NotFoundError
from spanledger.billing.meters.definition import MeterDefinition, validate_group_by
from spanledger.billing.meters.fields import resolve_field
from spanledger.billing.meters.filters import compile_filter, filter_to_json
from spanledger.billing.models import Customer, EventRecord, Meter

__all__ = ["UsageRow", "create_meter", "get_meter", "list_meters", "meter_usage", "to_definition"]

_events = EventRecord.__table__.c
_customers = Customer.__table__.c


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The value of a meter for one customer (and one group, when grouped) over a window."""

    customer: str
    group: str | None
    value: Decimal | None


def to_definition(meter: Meter) -> MeterDefinition:
    return MeterDefinition.parse(
        meter.name,
        meter.aggregation,
        meter.field,
        event_name=meter.event_name,
        filter=meter.filter,
        description=meter.description,
    )


def create_meter(session: Session, definition: MeterDefinition) -> Meter:
    """Store a new meter; :class:`ConflictError` if the name is taken."""
    if session.scalar(select(Meter.id).where(Meter.name == definition.name)) is not None:
        raise ConflictError(f"a meter named {definition.name!r} already exists")
    meter = Meter(
        name=definition.name,
        description=definition.description,
        event_name=definition.event_name,
        aggregation=definition.aggregation.value,
        field=definition.field,
        filter=filter_to_json(definition.filter),
        created_at=datetime.now(UTC),
    )
    session.add(meter)
    try:
        with storage_errors():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a meter named {definition.name!r} already exists") from exc
    return meter


def get_meter(session: Session, name: str) -> Meter:
    meter = session.scalar(select(Meter).where(Meter.name == name))
    if meter is None:
        raise NotFoundError(f"no meter named {name!r}; see `spanledger meters list`")
    return meter


def list_meters(session: Session) -> list[Meter]:
    return list(session.scalars(select(Meter).order_by(Meter.name)))


def meter_usage(
    session: Session,
    definition: MeterDefinition,
    *,
    start: datetime,
    end: datetime,
    customer: str | None = None,
    group_by: str | None = None,
) -> list[UsageRow]:
    """The meter's value per customer (and group) over ``[start, end)`` of ``occurred_at``.

    With ``customer`` given and no group, exactly one row comes back, even with no events (0 for
    count/sum/unique, ``None`` for max/min/avg).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidMeterError("the usage window needs timezone-aware timestamps")
    if end <= start:
        raise InvalidMeterError(f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    validate_group_by(group_by)
    field = resolve_field(definition.field) if definition.field else None
    aggregates = definition.aggregation.sql_columns(field)
    group_expression = resolve_field(group_by).text_expression() if group_by else None
    columns = [_customers.external_id.label("customer")]
    if group_expression is not None:
        columns.append(group_expression.label("group"))
    statement = (
        select(*columns, *aggregates)
        .select_from(EventRecord.__table__.join(Customer.__table__, _customers.id == _events.customer_id))
        .where(
            _events.event_name == definition.event_name,
            _events.occurred_at >= start,
            _events.occurred_at < end,
        )
        .group_by(*columns)
        .order_by(*columns)
    )
    if customer is not None:
        statement = statement.where(_customers.external_id == customer)
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    width = len(columns)
    with storage_errors():
        result = session.execute(statement).all()
    rows = [
        UsageRow(
            customer=row[0],
            group=None if group_expression is None or row[1] is None else str(row[1]),
            value=definition.aggregation.finish(tuple(row[width:])),
        )
        for row in result
    ]
    if not rows and customer is not None and group_by is None:
        empty = (None, 0) if len(aggregates) == 2 else (None,)
        rows = [UsageRow(customer, None, definition.aggregation.finish(empty))]
    return rows
