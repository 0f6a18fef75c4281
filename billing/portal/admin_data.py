"""The admin's Cost Insights figures: margin per customer, per model and per day, the customers with
a negative margin, and usage anomalies — from SQL aggregates, never a Python loop over events.

The rules are :mod:`spanledger.billing.margin_report`'s: revenue is what non-void invoices of the
report currency charge, for invoices whose billing month starts in the window; upstream cost is the
stored cost of every event that occurred in the window (billed or not; unknown costs are counted,
never taken as 0). By model and by day, a usage line's amount is split over the ``(model, day)``
groups of the events it covers in proportion to their metered quantity (exact to the cent with
:func:`~spanledger.billing.margins.allocate`); the margin report splits per event, so a group may
differ from it by rounding (at most a cent per line and group), while per-customer figures agree
exactly. Other lines belong to ``(base fee)`` / ``(credit packs)`` / ``(credits)`` and to the day
their billing month starts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from spanledger.billing.margins import MarginRow, allocate, margin_rows
from spanledger.billing.meters import MeterDefinition, compile_filter
from spanledger.billing.models import Customer, EventRecord, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.portal.anomalies import Anomaly, usage_anomalies
from spanledger.billing.portal.sql import EVENTS_WITH_CUSTOMER, day_of, dialect_name, event_weight, model_of
from spanledger.billing.pricing import normalize_currency

__all__ = ["AdminView", "admin_view"]

_ZERO = Decimal(0)
_events = EventRecord.__table__.c
_customers = Customer.__table__.c
_lines = InvoiceLineRecord.__table__.c
_invoices = InvoiceRecord.__table__.c
_NON_USAGE = {"base_fee": "(base fee)", "seats": "(base fee)", "credit_pack": "(credit packs)"}


@dataclass(frozen=True, slots=True)
class AdminView:
    currency: str
    start: datetime
    end: datetime
    by_customer: list[MarginRow]
    by_model: list[MarginRow]
    by_day: list[MarginRow]
    negative: list[MarginRow]
    anomalies: list[Anomaly]
    requests: int


#: (customer, model, day) → [revenue, cost, unknown-cost events, requests]
_Cube = dict[tuple[str, str, str], list[Any]]


def _cost_cube(session: Session, currency: str, start: datetime, end: datetime) -> _Cube:
    """One ``GROUP BY customer, model, day`` over the window's events."""
    day = day_of(dialect_name(session)).label("day")
    model = model_of().label("model")
    in_currency = or_(_events.upstream_cost_currency.is_(None), _events.upstream_cost_currency == currency)
    statement = (
        select(
            _customers.external_id, model, day,
            func.sum(case((in_currency, _events.upstream_cost), else_=None)),
            func.count() - func.count(_events.upstream_cost),
            func.count(),
        )
        .select_from(EVENTS_WITH_CUSTOMER)
        .where(_events.occurred_at >= start, _events.occurred_at < end)
        .group_by(_customers.external_id, model, day)
    )  # fmt: skip
    cube: _Cube = {}
    for customer, model_name, day_text, cost, unknown, count in session.execute(statement):
        key = (customer, model_name or "(unknown model)", day_text)
        cube[key] = [_ZERO, Decimal(cost or 0), int(unknown or 0), int(count)]
    return cube


def _definition(snapshot: dict[str, Any]) -> MeterDefinition:
    return MeterDefinition.parse(
        snapshot.get("name", "meter"), snapshot["aggregation"], snapshot.get("field"),
        event_name=snapshot.get("event_name"), filter=snapshot.get("filter"),
    )  # fmt: skip


def _usage_weights(
    session: Session, snapshot: dict[str, Any], line_ids: list[int]
) -> dict[int, list[tuple[str, str, Decimal]]]:
    """Per usage line (all with the same meter snapshot): ``(model, day, weight)`` of its events, in
    one statement joining the lines' recorded selections to the events."""
    definition = _definition(snapshot)
    day = day_of(dialect_name(session)).label("day")
    model = model_of().label("model")
    joined = EVENTS_WITH_CUSTOMER.join(
        InvoiceRecord.__table__, _invoices.customer_id == _events.customer_id
    ).join(InvoiceLineRecord.__table__, _lines.invoice_id == _invoices.id)
    statement = (
        select(_lines.id, model, day, func.sum(event_weight(definition)))
        .select_from(joined)
        .where(
            _lines.id.in_(line_ids),
            _events.event_name == definition.event_name,
            _events.occurred_at >= _lines.window_start,
            _events.occurred_at < _lines.window_end,
            _events.sequence > func.coalesce(_lines.after_sequence, -1),
            _events.sequence <= _lines.max_sequence,
        )
        .group_by(_lines.id, model, day)
        .order_by(_lines.id, model, day)
    )
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    weights: dict[int, list[tuple[str, str, Decimal]]] = defaultdict(list)
    for line_id, model_name, day_text, weight in session.execute(statement):
        weights[line_id].append((model_name or "(unknown model)", day_text, Decimal(weight or 0)))
    return weights


def _add_revenue(session: Session, cube: _Cube, currency: str, start: datetime, end: datetime) -> None:
    joined = InvoiceLineRecord.__table__.join(
        InvoiceRecord.__table__, _invoices.id == _lines.invoice_id
    ).join(Customer.__table__, _customers.id == _invoices.customer_id)
    rows = session.execute(
        select(
            _lines.id, _lines.kind, _lines.amount, _lines.meter_snapshot, _customers.external_id,
            _invoices.period_start,
        )
        .select_from(joined)
        .where(
            _invoices.currency == currency, _invoices.status != "void",
            _invoices.period_start >= start, _invoices.period_start < end, _lines.amount != 0,
        )
        .order_by(_lines.id)
    ).all()  # fmt: skip
    by_snapshot: dict[str, list[int]] = defaultdict(list)
    for line_id, kind, _amount, snapshot, *_ in rows:
        if snapshot and kind in ("usage", "late_usage"):
            by_snapshot[json.dumps(snapshot, sort_keys=True)].append(line_id)
    weights: dict[int, list[tuple[str, str, Decimal]]] = {}
    for snapshot_text, line_ids in by_snapshot.items():
        weights.update(_usage_weights(session, json.loads(snapshot_text), line_ids))
    for line_id, kind, amount, _snapshot, customer, period_start in rows:
        groups = weights.get(line_id)
        if not groups:
            key = (
                customer,
                _NON_USAGE.get(kind, f"({kind.replace('_', ' ')})"),
                period_start.date().isoformat(),
            )
            cube.setdefault(key, [_ZERO, _ZERO, 0, 0])[0] += amount
            continue
        parts = allocate(amount, [weight for *_, weight in groups], currency)
        for (model, day_text, _weight), part in zip(groups, parts, strict=True):
            cube.setdefault((customer, model, day_text), [_ZERO, _ZERO, 0, 0])[0] += part


def _rows(cube: _Cube, axis: int) -> list[MarginRow]:
    return margin_rows((key[axis], values[0], values[1], values[2]) for key, values in cube.items())


def admin_view(session: Session, *, start: datetime, end: datetime, currency: str = "USD") -> AdminView:
    """Cost Insights over ``[start, end)`` in ``currency``."""
    currency = normalize_currency(currency)
    cube = _cost_cube(session, currency, start, end)
    requests = sum(values[3] for values in cube.values())
    daily: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for (customer, _model, day), values in cube.items():
        if values[3]:
            daily[customer][day] = daily[customer].get(day, _ZERO) + values[3]
    _add_revenue(session, cube, currency, start, end)
    by_customer = _rows(cube, 0)
    negative = sorted((r for r in by_customer if r.negative), key=lambda r: (r.gross_margin, r.key))
    anomalies = usage_anomalies({customer: sorted(days.items()) for customer, days in daily.items()})
    return AdminView(
        currency, start, end, by_customer, _rows(cube, 1), _rows(cube, 2), negative, anomalies, requests
    )
