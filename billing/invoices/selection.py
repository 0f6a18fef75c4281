"""Which stored events a meter counts, as one SQL statement shared by ingest, invoices and explain.

The selection is: the meter's event name and filter, one customer, ``occurred_at`` in
``[start, end)``, and ingestion sequence in ``(after_sequence, max_sequence]``. Invoices record these
bounds on each line, so ``invoices explain`` selects exactly the same events again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

# Imported as a module: the rollups read meter definitions (see spanledger.billing.meters.service).
import spanledger.billing.rollups.queries as rollup_queries
from spanledger.billing.meters import MeterDefinition, compile_filter, resolve_field
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.models import Customer, EventRecord

__all__ = ["MeterTotals", "event_value_column", "meter_events", "meter_totals"]

_events = EventRecord.__table__.c
_customers = Customer.__table__.c
_JOINED = EventRecord.__table__.join(Customer.__table__, _customers.id == _events.customer_id)


def event_value_column(definition: MeterDefinition) -> Any:
    """One event's contribution to a ``count`` or ``sum`` meter, as an SQL expression."""
    if definition.aggregation is Aggregation.COUNT:
        return func.count()  # never used per event; see meter_events
    if definition.field is None:
        raise ValueError("a sum meter needs a field")
    return resolve_field(definition.field).numeric_expression()


def _where(
    statement: Select[Any],
    definition: MeterDefinition,
    *,
    customer_id: int | None,
    start: datetime | None,
    end: datetime | None,
    after_sequence: int | None,
    max_sequence: int | None,
) -> Select[Any]:
    statement = statement.where(_events.event_name == definition.event_name)
    if customer_id is not None:
        statement = statement.where(_events.customer_id == customer_id)
    if start is not None:
        statement = statement.where(_events.occurred_at >= start)
    if end is not None:
        statement = statement.where(_events.occurred_at < end)
    if after_sequence is not None:
        statement = statement.where(_events.sequence > after_sequence)
    if max_sequence is not None:
        statement = statement.where(_events.sequence <= max_sequence)
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    return statement


class MeterTotals:
    """A meter's value over a selection, with the upstream cost of the same events."""

    __slots__ = ("event_count", "max_sequence", "unknown_cost_events", "upstream_cost", "value")

    def __init__(
        self,
        value: Decimal,
        upstream_cost: Decimal,
        unknown_cost_events: int,
        event_count: int,
        max_sequence: int | None,
    ) -> None:
        self.value = value
        self.upstream_cost = upstream_cost
        self.unknown_cost_events = unknown_cost_events
        self.event_count = event_count
        self.max_sequence = max_sequence


def meter_totals(
    session: Session,
    definition: MeterDefinition,
    *,
    customer_id: int,
    start: datetime,
    end: datetime,
    after_sequence: int | None = None,
    max_sequence: int | None = None,
) -> MeterTotals:
    """Aggregate the selection (the meter's own aggregation) plus cost and sequence bounds.

    A selection with no lower sequence bound (an invoice's usage line) is read from the hourly rollups
    when they answer the meter exactly (:func:`spanledger.billing.rollups.answerable`), plus the
    events of the window's partial hours; everything else — and the rare case where events above
    ``max_sequence`` already sit in the window's rollups — scans the events.
    """
    row = None
    if after_sequence is None and rollup_queries.answerable(definition):
        row = _rollup_row(session, definition, customer_id, start, end, max_sequence)
    if row is None:
        row = _event_row(session, definition, customer_id, (start, end), after_sequence, max_sequence)
    width = len(row) - 4
    value = definition.aggregation.finish(tuple(row[:width])) or Decimal(0)
    cost, unknown, count, top = row[width:]
    return MeterTotals(value, Decimal(cost or 0), int(unknown or 0), int(count or 0), top)


def _event_row(
    session: Session,
    definition: MeterDefinition,
    customer_id: int,
    window: tuple[datetime, datetime],
    after_sequence: int | None,
    max_sequence: int | None,
) -> tuple[Any, ...]:
    """(the meter's SQL aggregates…, upstream cost, unknown-cost events, events, highest sequence)."""
    field = resolve_field(definition.field) if definition.field else None
    aggregates = definition.aggregation.sql_columns(field)
    statement = select(
        *aggregates,
        func.sum(_events.upstream_cost),
        func.count(_events.sequence) - func.count(_events.upstream_cost),
        func.count(_events.sequence),
        func.max(_events.sequence),
    ).select_from(_JOINED)
    statement = _where(
        statement,
        definition,
        customer_id=customer_id,
        start=window[0],
        end=window[1],
        after_sequence=after_sequence,
        max_sequence=max_sequence,
    )
    return tuple(session.execute(statement).one())


def _rollup_row(
    session: Session,
    definition: MeterDefinition,
    customer_id: int,
    start: datetime,
    end: datetime,
    max_sequence: int | None,
) -> tuple[Any, ...] | None:
    """The same row as :func:`_event_row` from rollups and edge events, or ``None`` to scan instead."""
    hours, edges = rollup_queries.split_window(start, end)
    if hours is None:
        return None
    partial, extra, head = rollup_queries.rollup_totals_row(session, definition, customer_id, hours)
    if max_sequence is not None and head is not None and head > max_sequence:
        # Events committed after the caller fixed its bound: exact only if none of them is in these cells.
        newer = _where(
            select(func.count()).select_from(_JOINED),
            definition,
            customer_id=customer_id,
            start=hours[0],
            end=hours[1],
            after_sequence=max_sequence,
            max_sequence=head,
        )
        if session.scalar(newer):
            return None
    cost, unknown, count, top = extra
    for edge in edges:
        row = _event_row(session, definition, customer_id, edge, None, max_sequence)
        width = len(row) - 4
        partial = rollup_queries.combine_partials(definition.aggregation, partial, row[:width])
        cost, unknown, count = (
            _plus(cost, row[width]),
            _plus(unknown, row[width + 1]),
            _plus(count, row[width + 2]),
        )
        top = row[width + 3] if top is None else (top if row[width + 3] is None else max(top, row[width + 3]))
    return (*partial, cost, unknown, count, top)


def _plus(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else a + b


def meter_events(
    session: Session,
    definition: MeterDefinition,
    *,
    customer_id: int,
    start: datetime,
    end: datetime,
    after_sequence: int | None = None,
    max_sequence: int | None = None,
) -> list[Any]:
    """The event rows of the selection, in sequence order (for explain and exports)."""
    statement = select(EventRecord.__table__, _customers.external_id.label("customer")).select_from(_JOINED)
    statement = _where(
        statement,
        definition,
        customer_id=customer_id,
        start=start,
        end=end,
        after_sequence=after_sequence,
        max_sequence=max_sequence,
    ).order_by(_events.sequence)
    return list(session.execute(statement).mappings())
