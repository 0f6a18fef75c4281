"""SQL pieces the portal's reads share: the UTC day of an event, a meter's selection and the
per-event weight its usage line is allocated by.

The selection is the same one an invoice line records and ``invoices explain`` replays (meter event
name and filter, one customer, ``occurred_at`` in ``[start, end)``, sequence in ``(after, max]``), so
the drill-down shows exactly the audit trail's events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, func, literal
from sqlalchemy.orm import Session

from spanledger.billing.invoices.selection import event_value_column
from spanledger.billing.meters import MeterDefinition, compile_filter
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.models import Customer, EventRecord

__all__ = [
    "EVENTS_WITH_CUSTOMER",
    "day_of",
    "dialect_name",
    "event_weight",
    "model_of",
    "select_meter_events",
]

_events = EventRecord.__table__.c
_customers = Customer.__table__.c

#: Events joined to their customer (a meter filter may test the external customer id).
EVENTS_WITH_CUSTOMER = EventRecord.__table__.join(Customer.__table__, _customers.id == _events.customer_id)


def dialect_name(session: Session) -> str:
    bind = session.get_bind()
    return bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name


def day_of(dialect: str, column: Any = None) -> ColumnElement[str]:
    """The UTC calendar day of ``column`` (default: the event's ``occurred_at``) as ``YYYY-MM-DD``."""
    column = _events.occurred_at if column is None else column
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite stores naive UTC text ("2026-11-03 10:00:00.000000"); its first ten characters are the day.
    return func.substr(column, 1, 10)


def model_of() -> ColumnElement[Any]:
    return func.coalesce(_events.response_model, _events.request_model)


def event_weight(definition: MeterDefinition) -> ColumnElement[Any]:
    """How much one event counts when a usage line's amount is split over its events (as the margin
    report splits it): 1 for ``count`` meters, else the event's metered value."""
    if definition.aggregation is Aggregation.COUNT:
        return literal(1)
    return event_value_column(definition)


def select_meter_events(
    statement: Select[Any],
    definition: MeterDefinition,
    *,
    customer_id: int,
    start: datetime,
    end: datetime,
    after_sequence: int | None = None,
    max_sequence: int | None = None,
) -> Select[Any]:
    """``statement`` restricted to the meter's events of one customer in the selection."""
    statement = statement.where(
        _events.event_name == definition.event_name,
        _events.customer_id == customer_id,
        _events.occurred_at >= start,
        _events.occurred_at < end,
    )
    if after_sequence is not None:
        statement = statement.where(_events.sequence > after_sequence)
    if max_sequence is not None:
        statement = statement.where(_events.sequence <= max_sequence)
    condition = compile_filter(definition.filter)
    return statement if condition is None else statement.where(condition)
