"""Meter operations on the database (the session is passed in; the caller owns the transaction).

``meter_usage`` is the one function that chooses between the hourly rollups
(:mod:`spanledger.billing.rollups`, kept exact in the ingest transaction) and a scan of
``usage_events`` through the ``(customer_id, occurred_at)`` index: rollups answer every meter they
answer exactly (no ``unique``, no metadata filter, field or grouping), so a long window costs
O(customers × hours) instead of O(events); the rest scans the events. Callers do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

# Imported as a module: rollups read meter definitions, so a name import here would be circular.
import spanledger.billing.rollups.queries as rollup_queries
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

    Rows come sorted by customer, then group (no group first). With ``customer`` given and no
    group, exactly one row comes back, even with no events (0 for count/sum/unique, ``None`` for
    max/min/avg).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidMeterError("the usage window needs timezone-aware timestamps")
    if end <= start:
        raise InvalidMeterError(f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    validate_group_by(group_by)
    aggregation = definition.aggregation
    with storage_errors():
        hours, edges = rollup_queries.split_window(start, end)
        if hours is None or not rollup_queries.answerable(definition, group_by):
            partials = _event_partials(session, definition, (start, end), customer, group_by)
        else:
            partials = rollup_queries.rollup_usage_partials(
                session, definition, hours, customer=customer, group_by=group_by
            )
            for edge in edges:
                for key, values in _event_partials(session, definition, edge, customer, group_by).items():
                    known = partials.get(key)
                    partials[key] = values if known is None else rollup_queries.combine_partials(
                        aggregation, known, values
                    )
    rows = [
        UsageRow(customer=key[0], group=key[1], value=aggregation.finish(values))
        for key, values in sorted(partials.items(), key=lambda item: _sort_key(item[0]))
    ]
    if not rows and customer is not None and group_by is None:
        empty = (None, 0) if aggregation.value == "avg" else (None,)
        rows = [UsageRow(customer, None, aggregation.finish(empty))]
    return rows


def _sort_key(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    return key[0], key[1] is not None, key[1] or ""


def _event_partials(
    session: Session,
    definition: MeterDefinition,
    window: tuple[datetime, datetime],
    customer: str | None,
    group_by: str | None,
) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    """Per (customer, group): the meter's SQL aggregates over the events of ``window``."""
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
            _events.occurred_at >= window[0],
            _events.occurred_at < window[1],
        )
        .group_by(*columns)
    )
    if customer is not None:
        statement = statement.where(_customers.external_id == customer)
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    width = len(columns)
    return {
        (row[0], None if group_expression is None or row[1] is None else str(row[1])): tuple(row[width:])
        for row in session.execute(statement)
    }
