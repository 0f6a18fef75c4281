"""The Cost Insights view and the margin report as they were computed before they read rollups and
stored line splits (every event scanned): the reference the new figures are compared with, to the cent.
Kept in the tests only."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from spanledger.billing.invoices.selection import event_value_column
from spanledger.billing.margin_report import MarginGrouping
from spanledger.billing.margins import MarginRow, TimeBucket, allocate, bucket_start, margin_rows
from spanledger.billing.meters import MeterDefinition, compile_filter
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.models import Customer, EventRecord, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.portal.admin_data import AdminView
from spanledger.billing.portal.anomalies import usage_anomalies
from spanledger.billing.portal.sql import EVENTS_WITH_CUSTOMER, day_of, dialect_name, event_weight, model_of
from spanledger.billing.pricing import normalize_currency

_ZERO = Decimal(0)
_events = EventRecord.__table__.c
_customers = Customer.__table__.c
_lines = InvoiceLineRecord.__table__.c
_invoices = InvoiceRecord.__table__.c
_NON_USAGE = {"base_fee": "(base fee)", "seats": "(base fee)", "credit_pack": "(credit packs)"}


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


def old_admin_view(session: Session, *, start: datetime, end: datetime, currency: str = "USD") -> AdminView:
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


_NON_USAGE_KEYS = _NON_USAGE


def _event_key(
    by: MarginGrouping, customer: str, model: str | None, provider: str | None, at: datetime
) -> str:
    if by is MarginGrouping.CUSTOMER:
        return customer
    if by is MarginGrouping.MODEL:
        return model or "(unknown model)"
    if by is MarginGrouping.PROVIDER:
        return provider or "(unknown provider)"
    return bucket_start(at, TimeBucket(by.value)).isoformat()


def _line_key(by: MarginGrouping, customer: str, kind: str, period_start: datetime) -> str:
    if by is MarginGrouping.CUSTOMER:
        return customer
    if by in (MarginGrouping.MODEL, MarginGrouping.PROVIDER):
        return _NON_USAGE_KEYS.get(kind, f"({kind.replace('_', ' ')})")
    return bucket_start(period_start, TimeBucket(by.value)).isoformat()


def _cost_items(
    session: Session, by: MarginGrouping, currency: str, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, Decimal, Decimal, int]]:
    statement = select(
        _customers.external_id,
        _events.response_model,
        _events.request_model,
        _events.provider,
        _events.occurred_at,
        _events.upstream_cost,
        _events.upstream_cost_currency,
    ).select_from(EventRecord.__table__.join(Customer.__table__, _customers.id == _events.customer_id))
    if start is not None:
        statement = statement.where(_events.occurred_at >= start)
    if end is not None:
        statement = statement.where(_events.occurred_at < end)
    for customer, response_model, request_model, provider, at, cost, cost_currency in session.execute(
        statement.execution_options(yield_per=5000)
    ):
        key = _event_key(by, customer, response_model or request_model, provider, at)
        if cost is None:
            yield key, _ZERO, _ZERO, 1
        elif cost_currency in (None, currency):
            yield key, _ZERO, cost, 0


def _line_events(session: Session, invoice: InvoiceRecord, line: InvoiceLineRecord) -> list[Any]:
    """The events a usage line covers (its recorded selection), with each one's metered quantity."""
    snapshot = dict(line.meter_snapshot or {})
    definition = MeterDefinition.parse(
        snapshot.get("name", "meter"),
        snapshot["aggregation"],
        snapshot.get("field"),
        event_name=snapshot.get("event_name"),
        filter=snapshot.get("filter"),
    )
    counted = definition.aggregation is Aggregation.COUNT
    value = None if counted else event_value_column(definition)
    columns = [_events.response_model, _events.request_model, _events.provider, _events.occurred_at]
    statement = select(*columns, *([] if value is None else [value])).where(
        _events.customer_id == invoice.customer_id, _events.event_name == definition.event_name
    )
    if line.window_start is not None:
        statement = statement.where(_events.occurred_at >= line.window_start)
    if line.window_end is not None:
        statement = statement.where(_events.occurred_at < line.window_end)
    if line.after_sequence is not None:
        statement = statement.where(_events.sequence > line.after_sequence)
    if line.max_sequence is not None:
        statement = statement.where(_events.sequence <= line.max_sequence)
    condition = compile_filter(definition.filter)
    if condition is not None:
        statement = statement.where(condition)
    rows = []
    for row in session.execute(statement.order_by(_events.sequence)):
        weight = Decimal(1) if counted else Decimal(row[4] or 0)
        rows.append((row[0] or row[1], row[2], row[3], weight))
    return rows


def _revenue_items(
    session: Session, by: MarginGrouping, currency: str, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, Decimal, Decimal, int]]:
    statement = (
        select(InvoiceRecord, _customers.external_id)
        .join(Customer.__table__, _customers.id == InvoiceRecord.customer_id)
        .where(InvoiceRecord.currency == currency, InvoiceRecord.status != "void")
        .order_by(InvoiceRecord.id)
    )
    if start is not None:
        statement = statement.where(InvoiceRecord.period_start >= start)
    if end is not None:
        statement = statement.where(InvoiceRecord.period_start < end)
    for invoice, customer in session.execute(statement).all():
        lines = session.scalars(
            select(InvoiceLineRecord)
            .where(InvoiceLineRecord.invoice_id == invoice.id)
            .order_by(InvoiceLineRecord.position)
        )
        for line in lines:
            if line.amount == 0:
                continue
            events = _line_events(session, invoice, line) if line.meter_snapshot else []
            if by is MarginGrouping.CUSTOMER or not events:
                yield _line_key(by, customer, line.kind, invoice.period_start), line.amount, _ZERO, 0
                continue
            parts = allocate(line.amount, [weight for *_, weight in events], currency)
            for (model, provider, at, _weight), part in zip(events, parts, strict=True):
                yield _event_key(by, customer, model, provider, at), part, _ZERO, 0


def old_margin_report(
    session: Session, by: str, *, start: datetime, end: datetime, currency: str = "USD"
) -> list[MarginRow]:
    grouping = MarginGrouping(by)
    items = [
        *_revenue_items(session, grouping, currency, start, end),
        *_cost_items(session, grouping, currency, start, end),
    ]
    return margin_rows(items)
