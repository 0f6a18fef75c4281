"""Where a usage line's revenue goes: the ``(model, provider, day)`` groups of the events it covers and
what each group weighs, so the line's amount can be split by model and by day.

A group's *weight* is its metered quantity — the number of events for a ``count`` meter, else the sum
of the metered field — over exactly the line's recorded selection (meter event name and filter, the
customer, ``occurred_at`` in the window, ingestion sequence in ``(after, max]``): the same events
``invoices explain`` replays. Readers split the line's amount over the groups they need (by model, by
day, by model and day…) with :func:`spanledger.billing.margins.allocate`, exact to the cent.

- **Finalized invoices** (also paid and void) have their groups stored in ``invoice_line_weights``,
  written once in the transaction that finalizes the invoice (:func:`store_line_weights`) — a
  finalized invoice never changes, so neither does its split — and by migration ``0903`` for
  invoices finalized before it. Reading them costs O(groups), never O(events).
- **Drafts** are split when read (:func:`line_weights`). A usage line whose meter the rollups answer
  exactly (:func:`spanledger.billing.rollups.answerable`) reads the daily rollups of the window's
  whole UTC days and the hourly rollups of its other whole hours, adds the events of the ragged edge
  hours, and takes off the events ingested after the line's ``max_sequence`` (they are in the rollups
  but not in the line) — sums and counts, so exact. Other lines (late usage: a sequence range no
  rollup cell can answer; ``unique`` meters, metadata filters) read their events, grouped in SQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from spanledger.billing.invoices.selection import event_value_column
from spanledger.billing.meters import MeterDefinition, compile_filter
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.meters.filters import Filter, Group
from spanledger.billing.models import (
    Customer,
    EventRecord,
    InvoiceLineRecord,
    InvoiceLineWeight,
    InvoiceRecord,
    UsageRollup,
    UsageRollupDaily,
)
from spanledger.billing.rollups.queries import (
    answerable,
    compile_rollup_filter,
    day_text,
    reporting_memory,
    split_days,
    split_window,
    utc_day,
)

__all__ = [
    "USAGE_KINDS",
    "LineSelection",
    "RevenueLine",
    "WeightGroup",
    "line_selections",
    "line_weights",
    "revenue_line_weights",
    "revenue_lines",
    "scan_line_weights",
    "store_line_weights",
    "stored_line_weights",
]

#: The line kinds whose amount follows the events they cover.
USAGE_KINDS = ("usage", "late_usage")
_ZERO = Decimal(0)
_events = EventRecord.__table__.c
_rollups = UsageRollup.__table__.c
_daily = UsageRollupDaily.__table__.c
_lines = InvoiceLineRecord.__table__.c
_invoices = InvoiceRecord.__table__.c
_weights = InvoiceLineWeight.__table__.c
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class WeightGroup:
    """The events of one line in one ``(model, provider, day)``: how many, and their metered quantity."""

    model: str | None
    provider: str | None
    day: str
    weight: Decimal
    events: int


@dataclass(frozen=True, slots=True)
class LineSelection:
    """A usage line's recorded selection of events."""

    line_id: int
    customer_id: int
    snapshot: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    after_sequence: int | None
    max_sequence: int | None

    @property
    def definition(self) -> MeterDefinition:
        s = self.snapshot
        return MeterDefinition.parse(
            s.get("name", "meter"), s["aggregation"], s.get("field"),
            event_name=s.get("event_name"), filter=s.get("filter"),
        )  # fmt: skip


_LINES_WITH_INVOICE = InvoiceLineRecord.__table__.join(
    InvoiceRecord.__table__, _invoices.id == _lines.invoice_id
)
_EVENTS_WITH_CUSTOMER = EventRecord.__table__.join(
    Customer.__table__, Customer.__table__.c.id == _events.customer_id
)
_ROLLUPS_WITH_CUSTOMER = UsageRollup.__table__.join(
    Customer.__table__, Customer.__table__.c.id == _rollups.customer_id
)
_DAILY_WITH_CUSTOMER = UsageRollupDaily.__table__.join(
    Customer.__table__, Customer.__table__.c.id == _daily.customer_id
)
_SELECTION_COLUMNS = (
    _lines.id, _invoices.customer_id, _lines.meter_snapshot, _lines.window_start, _lines.window_end,
    _lines.after_sequence, _lines.max_sequence,
)  # fmt: skip


def line_selections(session: Session, invoice_ids: Sequence[int]) -> list[LineSelection]:
    """The usage lines (with a meter snapshot) of ``invoice_ids``."""
    found: list[LineSelection] = []
    for start in range(0, len(invoice_ids), _CHUNK):
        rows = session.execute(
            select(*_SELECTION_COLUMNS)
            .select_from(_LINES_WITH_INVOICE)
            .where(
                _lines.invoice_id.in_(invoice_ids[start : start + _CHUNK]),
                _lines.kind.in_(USAGE_KINDS),
                _lines.meter_snapshot.is_not(None),
            )
            .order_by(_lines.id)
        )  # fmt: skip
        found += [LineSelection(*row) for row in rows]
    return found


def _dialect(session: Session) -> str:
    bind = session.get_bind()
    return bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name


def _event_weight(definition: MeterDefinition) -> ColumnElement[Any]:
    if definition.aggregation is Aggregation.COUNT:
        return literal(1)
    return event_value_column(definition)  # type: ignore[no-any-return]


_Groups = dict[tuple[str | None, str | None, str], list[Any]]  # → [weight, events]


def _add(
    groups: _Groups, model: Any, provider: Any, day: date | str, weight: Any, events: int, sign: int = 1
) -> None:
    entry = groups.setdefault((model, provider, day_text(day)), [_ZERO, 0])
    entry[0] += sign * Decimal(weight or 0)
    entry[1] += sign * events


def _finished(groups: _Groups) -> list[WeightGroup]:
    return [
        WeightGroup(model, provider, day, weight, events)
        for (model, provider, day), (weight, events) in sorted(groups.items(), key=_order)
        if events > 0
    ]


def _order(item: tuple[tuple[str | None, str | None, str], list[Any]]) -> tuple[str, str, str]:
    model, provider, day = item[0]
    return (day, model or "", provider or "")


def _events_statement(session: Session, definition: MeterDefinition, *extra: Any) -> Select[Any]:
    model = func.coalesce(_events.response_model, _events.request_model)
    statement = select(
        model, _events.provider, utc_day(_dialect(session), _events.occurred_at), *extra
    ).where(_events.event_name == definition.event_name)
    condition = compile_filter(definition.filter)
    if condition is None:
        return statement
    # Joined to the customers only when a filter needs them (it may test the external id): SQLite
    # plans the join customer by customer, which defeats the sequence and time ranges.
    if _tests_customer(definition.filter):
        statement = statement.select_from(_EVENTS_WITH_CUSTOMER)
    return statement.where(condition)


def _tests_customer(filter_: Filter | None) -> bool:
    if filter_ is None:
        return False
    if isinstance(filter_, Group):
        return any(_tests_customer(member) for member in filter_.members)
    return filter_.field == "customer"


def scan_line_weights(session: Session, selections: Iterable[LineSelection]) -> dict[int, list[WeightGroup]]:
    """The groups of each line, from its events (one grouped statement per line)."""
    result: dict[int, list[WeightGroup]] = {}
    for selection in selections:
        definition = selection.definition
        weight = _event_weight(definition)
        statement = _events_statement(session, definition, func.sum(weight), func.count())
        statement = statement.where(_events.customer_id == selection.customer_id)
        if selection.window_start is not None:
            statement = statement.where(_events.occurred_at >= selection.window_start)
        if selection.window_end is not None:
            statement = statement.where(_events.occurred_at < selection.window_end)
        if selection.after_sequence is not None:
            statement = statement.where(_events.sequence > selection.after_sequence)
        if selection.max_sequence is not None:
            statement = statement.where(_events.sequence <= selection.max_sequence)
        groups: _Groups = {}
        grouped = statement.group_by(*statement.selected_columns[:3])
        for model, provider, day, total, count in session.execute(grouped):
            _add(groups, model, provider, day, total, int(count))
        result[selection.line_id] = _finished(groups)
    return result


def _rollup_ready(selection: LineSelection) -> bool:
    return (
        selection.after_sequence is None
        and selection.max_sequence is not None
        and selection.window_start is not None
        and selection.window_end is not None
        and answerable(selection.definition)
    )


def _rollup_weight(definition: MeterDefinition, columns: Any) -> ColumnElement[Any]:
    if definition.aggregation is Aggregation.COUNT:
        column: ColumnElement[Any] = columns.event_count
        return column
    assert definition.field is not None
    column = columns[f"{definition.field}_sum"]
    return column


def _rollup_groups(
    session: Session,
    definition: MeterDefinition,
    customers: list[int],
    hours: tuple[datetime, datetime],
    daily: bool,
) -> Iterator[tuple[Any, ...]]:
    """(customer id, response model, request model, provider, day, weight, events) of the rollups of
    ``customers`` over the whole hours ``hours``: whole UTC days from the daily rollups (a line of a
    month reads ~30 day cells per customer and dimensions instead of ~720 hourly ones), the hours of
    partial days from the hourly rollups (every hour when not ``daily``)."""
    days, hour_windows = split_days(*hours) if daily else (None, [hours])
    pieces: list[tuple[Any, Any, ColumnElement[Any], ColumnElement[Any], Any]] = [
        (_rollups, _ROLLUPS_WITH_CUSTOMER, _rollups.hour, utc_day(_dialect(session), _rollups.hour), window)
        for window in hour_windows
    ]
    if days is not None:
        pieces.append((_daily, _DAILY_WITH_CUSTOMER, _daily.day, _daily.day, days))
    for columns, joined, time, day, (low, high) in pieces:
        keys = (columns.customer_id, columns.response_model, columns.request_model, columns.provider, day)
        statement = (
            select(*keys, func.sum(_rollup_weight(definition, columns)), func.sum(columns.event_count))
            .where(
                columns.customer_id.in_(customers), columns.event_name == definition.event_name,
                time >= low, time < high,
            )
            .group_by(*keys)
        )  # fmt: skip
        condition = compile_rollup_filter(definition.filter, columns)
        if condition is not None:
            statement = statement.where(condition)
            if _tests_customer(definition.filter):
                statement = statement.select_from(joined)
        yield from session.execute(statement).all()


def _rollup_line_weights(
    session: Session, selections: list[LineSelection], daily: bool
) -> dict[int, list[WeightGroup]]:
    """The groups of lines sharing one meter snapshot and window, from rollups (see the module doc)."""
    first = selections[0]
    definition = first.definition
    assert first.window_start is not None and first.window_end is not None
    hours, edges = split_window(first.window_start, first.window_end)
    by_customer: dict[int, list[LineSelection]] = defaultdict(list)
    for selection in selections:
        by_customer[selection.customer_id].append(selection)
    customers = sorted(by_customer)
    groups: dict[int, _Groups] = {s.line_id: {} for s in selections}
    if hours is not None:
        reporting_memory(session)
        for customer_id, response_model, request_model, provider, day_value, total, count in _rollup_groups(
            session, definition, customers, hours, daily
        ):
            model_name = response_model if response_model is not None else request_model
            for selection in by_customer[customer_id]:
                _add(groups[selection.line_id], model_name, provider, day_value, total, int(count))
    extra = (_events.customer_id, _events.sequence, _event_weight(definition))
    if edges:
        statement = _events_statement(session, definition, *extra).where(
            _events.customer_id.in_(customers),
            or_(*(and_(_events.occurred_at >= a, _events.occurred_at < b) for a, b in edges)),
        )
        for model_name, provider, day_value, customer_id, sequence, weight in session.execute(statement):
            for selection in by_customer[customer_id]:
                if sequence <= (selection.max_sequence or 0):
                    _add(groups[selection.line_id], model_name, provider, day_value, weight, 1)
    if hours is not None:
        # Events ingested after a line was computed are in the rollups but not in the line: take them off.
        oldest = min(s.max_sequence or 0 for s in selections)
        statement = _events_statement(session, definition, *extra).where(
            _events.sequence > oldest, _events.customer_id.in_(customers),
            _events.occurred_at >= hours[0], _events.occurred_at < hours[1],
        )  # fmt: skip
        for model_name, provider, day_value, customer_id, sequence, weight in session.execute(statement):
            for selection in by_customer[customer_id]:
                if sequence > (selection.max_sequence or 0):
                    _add(groups[selection.line_id], model_name, provider, day_value, weight, 1, sign=-1)
    return {line_id: _finished(line_groups) for line_id, line_groups in groups.items()}


def line_weights(
    session: Session, selections: Iterable[LineSelection], *, daily: bool = True
) -> dict[int, list[WeightGroup]]:
    """The groups of each line, computed now: from rollups where they are exact, else from events.

    ``daily=False`` reads whole days from the hourly rollups too (the same figures): migration 0903
    computes weights before 0905 creates the daily rollups."""
    batches: dict[tuple[str, datetime, datetime], list[LineSelection]] = defaultdict(list)
    scanned: list[LineSelection] = []
    for selection in selections:
        if _rollup_ready(selection):
            assert selection.window_start is not None and selection.window_end is not None
            snapshot = json.dumps(selection.snapshot, sort_keys=True)
            batches[(snapshot, selection.window_start, selection.window_end)].append(selection)
        else:
            scanned.append(selection)
    result = scan_line_weights(session, scanned)
    for batch in batches.values():
        for start in range(0, len(batch), _CHUNK):
            result.update(_rollup_line_weights(session, batch[start : start + _CHUNK], daily))
    return result


def stored_line_weights(session: Session, line_ids: Sequence[int]) -> dict[int, list[WeightGroup]]:
    """The stored groups of finalized lines (a line with no events has none)."""
    result: dict[int, list[WeightGroup]] = defaultdict(list)
    for start in range(0, len(line_ids), _CHUNK):
        rows = session.execute(
            select(_weights.line_id, _weights.model, _weights.provider, _weights.day, _weights.weight,
                   _weights.events)
            .where(_weights.line_id.in_(line_ids[start : start + _CHUNK]))
            .order_by(_weights.line_id, _weights.id)
        )  # fmt: skip
        for line_id, model, provider, day, weight, events in rows:
            result[line_id].append(WeightGroup(model, provider, day, weight, int(events)))
    return dict(result)


def store_line_weights(session: Session, invoice_ids: Sequence[int], *, daily: bool = True) -> int:
    """Compute and store the groups of the usage lines of ``invoice_ids`` (being finalized); returns
    the number of rows written. Called in the finalizing transaction. ``daily``: see :func:`line_weights`."""
    computed = line_weights(session, line_selections(session, invoice_ids), daily=daily)
    rows = [
        {"line_id": line_id, "model": g.model, "provider": g.provider, "day": g.day, "weight": g.weight,
         "events": g.events}
        for line_id, groups in sorted(computed.items())
        for g in groups
    ]  # fmt: skip
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(InvoiceLineWeight.__table__), rows[start : start + _CHUNK])
    return len(rows)


def revenue_line_weights(
    session: Session, drafts: Sequence[LineSelection], finalized_line_ids: Sequence[int]
) -> dict[int, list[WeightGroup]]:
    """The groups of the usage lines a margin attributes: stored for finalized invoices, computed
    for drafts."""
    result = stored_line_weights(session, finalized_line_ids)
    result.update(line_weights(session, drafts))
    return result


@dataclass(frozen=True, slots=True)
class RevenueLine:
    """A non-zero invoice line a margin attributes, with its groups (empty for a line that follows no
    events: base fee, seats, credit packs, credits — or when the groups were not asked for)."""

    line_id: int
    kind: str
    amount: Decimal
    customer: str
    period_start: datetime
    groups: list[WeightGroup]


def revenue_lines(
    session: Session, currency: str, start: datetime | None, end: datetime | None, *, groups: bool = True
) -> list[RevenueLine]:
    """The non-zero lines of the non-void invoices in ``currency`` whose billing month starts in
    ``[start, end)`` (either bound may be open), in invoice and line order, with their groups
    (:func:`revenue_line_weights`) unless ``groups`` is false — a margin by customer needs none."""
    customers = Customer.__table__.c
    statement = (
        select(
            _lines.id, _lines.kind, _lines.amount, _lines.meter_snapshot, customers.external_id,
            _invoices.period_start, _invoices.status, _invoices.customer_id, _lines.window_start,
            _lines.window_end, _lines.after_sequence, _lines.max_sequence,
        )
        .select_from(
            InvoiceLineRecord.__table__.join(InvoiceRecord.__table__, _invoices.id == _lines.invoice_id)
            .join(Customer.__table__, customers.id == _invoices.customer_id)
        )
        .where(_invoices.currency == currency, _invoices.status != "void", _lines.amount != 0)
        .order_by(_invoices.id, _lines.position)
    )  # fmt: skip
    if start is not None:
        statement = statement.where(_invoices.period_start >= start)
    if end is not None:
        statement = statement.where(_invoices.period_start < end)
    rows = session.execute(statement).all()
    weights: dict[int, list[WeightGroup]] = {}
    if groups:
        drafts: list[LineSelection] = []
        finalized: list[int] = []
        for row in rows:
            if row.meter_snapshot and row.kind in USAGE_KINDS:
                if row.status == "draft":
                    drafts.append(LineSelection(
                        row.id, row.customer_id, row.meter_snapshot, row.window_start, row.window_end,
                        row.after_sequence, row.max_sequence,
                    ))  # fmt: skip
                else:
                    finalized.append(row.id)
        weights = revenue_line_weights(session, drafts, finalized)
    return [
        RevenueLine(row.id, row.kind, row.amount, row.external_id, row.period_start, weights.get(row.id, []))
        for row in rows
    ]
