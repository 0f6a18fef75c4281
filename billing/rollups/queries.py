"""Answering meters from rollups, and only where the answer is exactly the event scan's.

A meter can be answered from ``usage_rollups`` (:func:`answerable`) when:

- its aggregation is ``count``, ``sum``, ``max``, ``min`` or ``avg`` — never ``unique``: distinct
  values do not add up across hours, so ``unique`` always reads the events;
- its field is one the rollups measure (token counts, ``total_tokens``, ``upstream_cost``) — not a
  metadata key;
- its filter and grouping use only dimensions (``event_name``, ``customer``, ``provider``,
  ``operation``, ``model``, ``request_model``, ``response_model``) — a filter on a metadata key or a
  numeric comparison selects single events, which a cell cannot.

Everything else reads the events, as before. Rollups are meter-independent, so a meter created
after its events were ingested is answered from rollups at once (no backfill per meter).

Rollups cover whole UTC hours. A window that does not start or end on the hour is answered from the
rollups of its whole hours plus the events of its ragged edges (at most two partial hours per
customer), combined with :func:`combine_partials`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, Engine, and_, case, cast, func, or_, select, text
from sqlalchemy.orm import Session

from spanledger.billing.errors import InvalidMeterError
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.meters.definition import MeterDefinition
from spanledger.billing.meters.filters import Clause, Filter, Group
from spanledger.billing.models import (
    ROLLUP_MEASURED_FIELDS,
    Customer,
    EventRecord,
    UsageRollup,
    UsageRollupDaily,
)
from spanledger.billing.models.usage_event import FOREIGN_COST_CONDITION
from spanledger.billing.rollups.cells import hour_of

__all__ = [
    "COST_AXES",
    "DIMENSION_FIELDS",
    "CostCells",
    "Window",
    "answerable",
    "combine_partials",
    "compile_rollup_filter",
    "cost_totals",
    "daily_costs",
    "day_text",
    "reporting_memory",
    "rollup_totals_row",
    "rollup_usage_partials",
    "split_days",
    "split_window",
    "utc_day",
]

DIMENSION_FIELDS = frozenset(
    {"event_name", "customer", "provider", "operation", "model", "request_model", "response_model"}
)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_rollups = UsageRollup.__table__.c
_daily = UsageRollupDaily.__table__.c
_customers = Customer.__table__.c
_events = EventRecord.__table__.c
_JOINED = UsageRollup.__table__.join(Customer.__table__, _customers.id == _rollups.customer_id)

Window = tuple[datetime, datetime]


def answerable(definition: MeterDefinition, group_by: str | None = None) -> bool:
    """Whether rollups give exactly the event scan's answer for this meter (see the module docstring)."""
    if definition.aggregation is Aggregation.UNIQUE:
        return False
    if definition.field is not None and definition.field not in ROLLUP_MEASURED_FIELDS:
        return False
    if group_by is not None and group_by not in DIMENSION_FIELDS:
        return False
    return _filter_fields(definition.filter) <= DIMENSION_FIELDS


def _filter_fields(filter_: Filter | None) -> set[str]:
    if filter_ is None:
        return set()
    if isinstance(filter_, Group):
        return set().union(*(_filter_fields(m) for m in filter_.members))
    return {filter_.field}


def split_window(start: datetime, end: datetime) -> tuple[Window | None, list[Window]]:
    """``[start, end)`` as (its whole UTC hours, or ``None``; the ragged edges before and after)."""
    first = hour_of(start)
    if first < start:
        first += _HOUR
    last = hour_of(end)
    if first >= last:
        return None, [(start, end)]
    edges = [w for w in ((start, first), (last, end)) if w[0] < w[1]]
    return (first, last), edges


def dimension_expression(name: str, columns: Any = None) -> ColumnElement[Any]:
    """A dimension field over ``usage_rollups`` (or the daily rollups: ``columns``, a table's ``.c``)
    joined with ``customers`` (as meters read events)."""
    table = _rollups if columns is None else columns
    if name == "model":
        return func.coalesce(table.response_model, table.request_model)
    if name == "customer":
        return _customers.external_id
    if name not in DIMENSION_FIELDS:
        raise InvalidMeterError(f"{name} is not a rollup dimension")
    column: ColumnElement[Any] = table[name]
    return column


def compile_rollup_filter(filter_: Filter | None, columns: Any = None) -> ColumnElement[bool] | None:
    """The SQL condition of a dimension-only filter over the hourly rollups (or the daily ones:
    ``columns``); the same SQL operators as :func:`spanledger.billing.meters.compile_filter` uses on
    events, so the same rows match."""
    if filter_ is None:
        return None
    if isinstance(filter_, Group):
        compiled = [c for c in (compile_rollup_filter(m, columns) for m in filter_.members) if c is not None]
        return and_(*compiled) if filter_.combinator == "and" else or_(*compiled)
    return _clause(filter_, columns)


def _clause(clause: Clause, columns: Any) -> ColumnElement[bool]:
    expression = dimension_expression(clause.field, columns)
    match clause.op:
        case "eq":
            return expression == clause.value
        case "ne":
            return expression != clause.value
        case "like":
            return expression.like(clause.value)
        case "in":
            return expression.in_(clause.value)
    raise InvalidMeterError(f"{clause.op} cannot compare the text field {clause.field}")


def rollup_aggregates(aggregation: Aggregation, field: str | None) -> list[ColumnElement[Any]]:
    """The SQL over rollup cells whose values equal :meth:`Aggregation.sql_columns` over the events."""
    if aggregation is Aggregation.COUNT:
        return [func.sum(_rollups.event_count)]
    assert field is not None
    if aggregation is Aggregation.SUM:
        return [func.sum(_rollups[f"{field}_sum"])]
    if aggregation is Aggregation.MAX:
        return [func.max(_rollups[f"{field}_max"])]
    if aggregation is Aggregation.MIN:
        return [func.min(_rollups[f"{field}_min"])]
    if aggregation is Aggregation.AVG:
        return [func.sum(_rollups[f"{field}_sum"]), func.sum(_rollups[f"{field}_count"])]
    raise InvalidMeterError("unique cannot be answered from rollups")


def combine_partials(
    aggregation: Aggregation, first: tuple[Any, ...], second: tuple[Any, ...]
) -> tuple[Any, ...]:
    """Two partial aggregates (of disjoint sets of events) as one, in the shape of ``sql_columns``."""
    if aggregation is Aggregation.MAX:
        return (_pick(max, first[0], second[0]),)
    if aggregation is Aggregation.MIN:
        return (_pick(min, first[0], second[0]),)
    return tuple(_add(a, b) for a, b in zip(first, second, strict=True))


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _pick(choose: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)


def _base(definition: MeterDefinition, hours: Window, columns: list[ColumnElement[Any]]) -> Any:
    statement = (
        select(*columns)
        .select_from(_JOINED)
        .where(
            _rollups.event_name == definition.event_name,
            _rollups.hour >= hours[0],
            _rollups.hour < hours[1],
        )
    )
    condition = compile_rollup_filter(definition.filter)
    return statement if condition is None else statement.where(condition)


def rollup_usage_partials(
    session: Session,
    definition: MeterDefinition,
    hours: Window,
    *,
    customer: str | None = None,
    group_by: str | None = None,
) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    """Per (customer external id, group): the partial aggregate over the whole hours ``hours``."""
    keys: list[ColumnElement[Any]] = [_customers.external_id]
    if group_by is not None:
        keys.append(dimension_expression(group_by))
    aggregates = rollup_aggregates(definition.aggregation, definition.field)
    statement = _base(definition, hours, [*keys, *aggregates]).group_by(*keys)
    if customer is not None:
        statement = statement.where(_customers.external_id == customer)
    width = len(keys)
    result: dict[tuple[str, str | None], tuple[Any, ...]] = {}
    for row in session.execute(statement):
        group = None if group_by is None or row[1] is None else str(row[1])
        result[(row[0], group)] = tuple(row[width:])
    return result


def rollup_totals_row(
    session: Session, definition: MeterDefinition, customer_id: int, hours: Window
) -> tuple[tuple[Any, ...], tuple[Any, Any, Any, Any], int | None]:
    """(partial aggregate, (upstream cost, unknown-cost events, events, highest sequence), ingestion
    head) for one customer over the whole hours ``hours``.

    The head — the highest committed sequence — is read in the same statement, so a caller that
    needs events up to a sequence knows whether anything newer could be in these cells.
    """
    aggregates = rollup_aggregates(definition.aggregation, definition.field)
    head = select(func.max(_events.sequence)).scalar_subquery()
    statement = _base(
        definition,
        hours,
        [
            *aggregates,
            func.sum(_rollups.upstream_cost_sum),
            func.sum(_rollups.unknown_cost_events),
            func.sum(_rollups.event_count),
            func.max(_rollups.max_sequence),
            head,
        ],
    ).where(_rollups.customer_id == customer_id)
    row = session.execute(statement).one()
    width = len(aggregates)
    cost, unknown, count, top, current = row[width:]
    return tuple(row[:width]), (cost, unknown, count, top), None if current is None else int(current)


#: (customer external id, model, provider, UTC day) — or the axes asked for, in their order — →
#: [upstream cost, unknown-cost events, events, events with a known cost in the report currency]
CostCells = dict[tuple[Any, ...], list[Any]]
#: The axes :func:`daily_costs` can group by.
COST_AXES = ("customer", "model", "provider", "day")
_DEFAULT_COST_CURRENCY = "USD"  # the built-in price table's; other currencies come from price overrides


def utc_day(dialect: str, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, cheaply: a ``date`` on PostgreSQL (``to_char`` costs
    twice as much per row), the ``YYYY-MM-DD`` prefix of the stored naive UTC text on SQLite. Read the
    value with :func:`day_text`."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.substr(column, 1, 10)


def reporting_memory(session: Session) -> None:
    """On PostgreSQL, let this transaction's aggregates hash in memory: a report groups hundreds of
    thousands of cells into tens of thousands of groups, which under the default 4 MB ``work_mem``
    spills to an on-disk sort and takes half as long again. ``SET LOCAL`` ends with the transaction."""
    if _dialect(session) == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def day_text(value: date | str) -> str:
    """A :func:`utc_day` value as ``YYYY-MM-DD``."""
    return value if isinstance(value, str) else value.isoformat()


def _dialect(session: Session) -> str:
    bind = session.get_bind()
    return bind.dialect.name if isinstance(bind, Engine) else bind.engine.dialect.name


def _hours_and_edges(start: datetime | None, end: datetime | None) -> tuple[bool, Any, Any, list[Window]]:
    """(any whole hours?, their first hour or None, their end or None, the ragged edges) of a window
    whose bounds may be open."""
    if start is not None and end is not None:
        hours, edges = split_window(start, end)
        return (True, *hours, edges) if hours is not None else (False, None, None, edges)
    first = None if start is None else hour_of(start)
    if start is not None and first is not None and first < start:
        first += _HOUR
    last = None if end is None else hour_of(end)
    edges = []
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if end is not None and last is not None and last < end:
        edges.append((last, end))
    return True, first, last, edges


def daily_costs(
    session: Session,
    currency: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    by: tuple[str, ...] = COST_AXES,
) -> CostCells:
    """Upstream cost in ``currency``, unknown-cost events and events per customer, model, provider and
    UTC day over ``[start, end)`` (either bound may be open) — exactly the event scan's figures.

    ``by`` (some of :data:`COST_AXES`, in the key's order) groups by fewer axes in SQL, so a report
    that needs totals per customer or per day fetches those, not every cell; :func:`cost_totals` gives
    several groupings at once.

    Whole UTC days inside the window come from the daily rollups, the other whole hours from the hourly
    rollups (both are sums of the same events, so they add up), the ragged edge hours from the events.
    Rollups sum costs whatever their currency, so costs in another
    currency than the report's are corrected with the events of ``ix_usage_events_foreign_cost``
    (costs not in USD: only price overrides produce them, so there are few): a USD report takes them
    off the rollups' sums; a report in another currency sums just those in its currency.
    """
    return cost_totals(session, currency, start, end, [by])[0]


def cost_totals(
    session: Session,
    currency: str,
    start: datetime | None,
    end: datetime | None,
    groupings: list[tuple[str, ...]],
) -> list[CostCells]:
    """:func:`daily_costs` once per grouping of ``groupings`` (each some of :data:`COST_AXES`): each
    grouping sums the rollups in SQL; the few events (ragged edge hours, costs not in USD) are read
    once, by all the axes any grouping uses, and folded into every grouping."""
    for by in groupings:
        if not by or set(by) - set(COST_AXES):
            raise ValueError(f"cannot group costs by {by!r}; choose some of {', '.join(COST_AXES)}")
    axes = tuple(axis for axis in COST_AXES if any(axis in by for by in groupings))
    dialect = _dialect(session)
    folds = [_Fold(by, axes) for by in groupings]  # keyed by customer id until the end
    any_hours, first, last, edges = _hours_and_edges(start, end)
    in_usd = currency == _DEFAULT_COST_CURRENCY
    if any_hours:
        reporting_memory(session)
        days, hour_windows = split_days(first, last)
        for fold in folds:
            if days is not None:
                _add_rollups(session, fold.cells, in_usd, fold.by, _daily, _daily.day, _daily.day, days)
            for hours in hour_windows:
                day = utc_day(dialect, _rollups.hour)
                _add_rollups(session, fold.cells, in_usd, fold.by, _rollups, _rollups.hour, day, hours)
        _correct_currency(session, folds, currency, axes, first, last)
    for edge in edges:
        _add_edge(session, folds, currency, axes, edge)
    return [fold.named(session) for fold in folds]


class _Fold:
    """The cells of one grouping ``by``, and how to pick its key out of a key by all ``axes``."""

    def __init__(self, by: tuple[str, ...], axes: tuple[str, ...]) -> None:
        self.by = by
        self.cells: dict[tuple[Any, ...], list[Any]] = {}
        self._picks = [axes.index(axis) for axis in by]

    def entry(self, key: tuple[Any, ...]) -> list[Any]:
        return self.cells.setdefault(tuple(key[i] for i in self._picks), [Decimal(0), 0, 0, 0])

    def named(self, session: Session) -> CostCells:
        """The cells with customer external ids instead of ids."""
        if "customer" not in self.by:
            return self.cells
        at = self.by.index("customer")
        names = _external_ids(session, {key[at] for key in self.cells})
        return {(*key[:at], names[key[at]], *key[at + 1 :]): values for key, values in self.cells.items()}


def split_days(
    first: datetime | None, last: datetime | None
) -> tuple[tuple[date | None, date | None] | None, list[tuple[datetime | None, datetime | None]]]:
    """Whole UTC hours ``[first, last)`` (either bound may be open) as (its whole UTC days
    ``[from, to)`` or ``None``; the whole hours before and after them)."""
    day_from = None if first is None else _day_at_or_after(first)
    day_to = None if last is None else last.replace(hour=0)
    if day_from is not None and day_to is not None and day_from >= day_to:
        return None, [(first, last)]
    hours: list[tuple[datetime | None, datetime | None]] = []
    if first is not None and day_from is not None and first < day_from:
        hours.append((first, day_from))
    if last is not None and day_to is not None and day_to < last:
        hours.append((day_to, last))
    days = (None if day_from is None else day_from.date(), None if day_to is None else day_to.date())
    return days, hours


def _day_at_or_after(hour: datetime) -> datetime:
    day = hour.replace(hour=0)
    return day if day == hour else day + _DAY


def _axis_columns(by: tuple[str, ...], columns: Any, day: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """The GROUP BY columns of the axes ``by`` over rollups or events (``columns``, a table's ``.c``):
    the model as its two plain columns (cheaper per cell than coalesce), coalesced by :func:`_cell_key`."""
    found: list[ColumnElement[Any]] = []
    for axis in by:
        if axis == "customer":
            found.append(columns.customer_id)
        elif axis == "model":
            found.extend((columns.response_model, columns.request_model))
        elif axis == "provider":
            found.append(columns.provider)
        else:
            found.append(day)
    return found


def _cell_key(by: tuple[str, ...], values: Any) -> tuple[Any, ...]:
    """The cell key of a row's leading :func:`_axis_columns` values; the rest of the row is returned
    as the key's last item."""
    key: list[Any] = []
    index = 0
    for axis in by:
        if axis == "model":
            response_model, request_model = values[index], values[index + 1]
            key.append(response_model if response_model is not None else request_model)
            index += 2
            continue
        key.append(day_text(values[index]) if axis == "day" else values[index])
        index += 1
    return (*key, tuple(values[index:]))


def _add_rollups(
    session: Session,
    cells: dict[tuple[Any, ...], list[Any]],
    in_usd: bool,
    by: tuple[str, ...],
    table: Any,
    time: ColumnElement[Any],
    day: ColumnElement[Any],
    bounds: tuple[Any, Any],
) -> None:
    """Add the cost cells of hourly or daily rollups (``table``: their columns) whose ``time`` (hour or
    day) is in ``[low, high)`` (``bounds``, either may be ``None``: open)."""
    low, high = bounds
    # Grouped by plain columns (the customer id, both model columns): cheaper per cell than the
    # external id and coalesce; the cells are merged by key below.
    keys = _axis_columns(by, table, day)
    statement = select(
        *keys,
        func.sum(table.upstream_cost_sum),
        func.sum(table.unknown_cost_events),
        func.sum(table.event_count),
    )
    if low is not None:
        statement = statement.where(time >= low)
    if high is not None:
        statement = statement.where(time < high)
    for row in session.execute(statement.group_by(*keys)).all():  # one fetchall, not a fetch per row
        *key, (cost, unknown, count) = _cell_key(by, row)
        # A report in another currency than USD takes only the foreign costs in its currency.
        known = Decimal(cost or 0) if in_usd else Decimal(0)
        priced = int(count or 0) - int(unknown or 0) if in_usd else 0
        entry = cells.setdefault(tuple(key), [Decimal(0), 0, 0, 0])
        entry[0] += known
        entry[1] += int(unknown or 0)
        entry[2] += int(count or 0)
        entry[3] += priced


def _external_ids(session: Session, customer_ids: set[int]) -> dict[int, str]:
    ids = sorted(customer_ids)
    names: dict[int, str] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = session.execute(select(_customers.id, _customers.external_id).where(_customers.id.in_(chunk)))
        names.update({customer_id: external_id for customer_id, external_id in rows})
    return names


def _event_keys(dialect: str, by: tuple[str, ...]) -> list[ColumnElement[Any]]:
    # No join: SQLite then picks the partial index (joined to customers, it scanned every customer's events).
    return _axis_columns(by, _events, utc_day(dialect, _events.occurred_at))


def _correct_currency(
    session: Session,
    folds: list[_Fold],
    currency: str,
    by: tuple[str, ...],
    first: datetime | None,
    last: datetime | None,
) -> None:
    keys = _event_keys(_dialect(session), by)
    statement = (
        select(*keys, _events.upstream_cost_currency, func.sum(_events.upstream_cost), func.count())
        .where(text(FOREIGN_COST_CONDITION))  # word for word the partial index's condition
        .group_by(*keys, _events.upstream_cost_currency)
    )
    if first is not None:
        statement = statement.where(_events.occurred_at >= first)
    if last is not None:
        statement = statement.where(_events.occurred_at < last)
    in_usd = currency == _DEFAULT_COST_CURRENCY
    for row in session.execute(statement):
        *key, (cost_currency, cost, count) = _cell_key(by, row)
        for fold in folds:
            entry = fold.entry(tuple(key))
            if in_usd:
                entry[0] -= Decimal(cost or 0)
                entry[3] -= int(count)
            elif cost_currency == currency:
                entry[0] += Decimal(cost or 0)
                entry[3] += int(count)


def _add_edge(
    session: Session, folds: list[_Fold], currency: str, by: tuple[str, ...], edge: Window
) -> None:
    keys = _event_keys(_dialect(session), by)
    in_currency = or_(_events.upstream_cost_currency.is_(None), _events.upstream_cost_currency == currency)
    statement = (
        select(
            *keys,
            func.sum(case((in_currency, _events.upstream_cost), else_=None)),
            func.count() - func.count(_events.upstream_cost),
            func.count(),
            func.count(case((in_currency, _events.upstream_cost), else_=None)),
        )
        .where(_events.occurred_at >= edge[0], _events.occurred_at < edge[1])
        .group_by(*keys)
    )
    for row in session.execute(statement):
        *key, (cost, unknown, count, priced) = _cell_key(by, row)
        for fold in folds:
            entry = fold.entry(tuple(key))
            entry[0] += Decimal(cost or 0)
            entry[1] += int(unknown or 0)
            entry[2] += int(count or 0)
            entry[3] += int(priced or 0)
