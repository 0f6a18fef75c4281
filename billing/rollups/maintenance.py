"""Keeping ``usage_rollups`` and ``usage_rollups_daily`` exact: inside the ingest transaction, and
rebuilt from events on demand.

:func:`update_rollups` is called by :func:`spanledger.billing.ingest.ingest` once per batch, after the
events are written and under the same ingest lock, so a rollup is exact the moment its events commit
(no compactor, no watermark, no lag — the price is a few extra statements per batch):

- **New events** (the rows ingest just inserted, still in memory) are folded into cells in Python
  (:func:`~spanledger.billing.rollups.cells.fold_batch`: plain tuples, one column at a time — every
  batch pays for it) and added to the stored cells in SQL: one ``SELECT`` of the touched cells' ids
  (built once; the hour is matched as the driver returns it, not parsed per row), one executemany
  ``UPDATE`` adding the deltas (sums and counts add, minimum and maximum compare), one multi-row
  ``INSERT`` of the new cells.
  A *late* event (one that occurred long ago) is no different: it lands in its own hour's cell.
- **Merged events** (a second record of a call filled NULL counts, models, provider or the customer)
  may have *moved* between cells, and a minimum or maximum cannot be un-added. So the cells the event
  can have left or joined — its hour for its customer and for the unattributed bucket it may have come
  from — are recomputed from the events of that customer-hour. Merges are rare and an hour of one
  customer is small, so this stays cheap and always exact.

The **daily** cells (:mod:`.days`: sums and counts only) follow the hourly ones in the same
transaction. New events add their day deltas — the batch's hourly cells summed by day
(:func:`~spanledger.billing.rollups.days.fold_batch_days`), no extra read of events and no second fold
of them: one ``SELECT`` of the touched day cells' ids, one ``UPDATE`` (executemany) that adds the
deltas in SQL, one ``INSERT``.
Whatever recomputes hourly cells (merges, :func:`refresh_rollups`) then recomputes the touched
(customer, day) cells from the hourly cells of that day (a delete, a read of at most 24 hourly cells
per customer and dimensions, an insert per distinct day), so a day cell is always the sum of its
hours.

:func:`rebuild_rollups` recomputes every cell (or those of some customers) from the events; the
migration that creates the table uses it to backfill an existing ledger. Every writer holds the
ingest lock, which is also what keeps (customer, hour, dimensions) unique without a unique index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.types import NullType

from spanledger.billing.driver_executemany import executemany
from spanledger.billing.models import (
    INGEST_STATE_ID,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURED_FIELDS,
    Customer,
    EventRecord,
    IngestState,
    UsageRollup,
    UsageRollupDaily,
)
from spanledger.billing.rollups.cells import (
    MEASURE_COLUMNS,
    SUMMARY_PARTS,
    CellKey,
    CellMeasures,
    KeyValues,
    cell_from_row,
    cell_to_row,
    fold_batch,
    fold_events,
    hour_of,
)
from spanledger.billing.rollups.days import (
    DAY_MEASURE_COLUMNS,
    DayKey,
    DayMeasures,
    day_to_row,
    fold_batch_days,
    fold_cells,
)
from spanledger.billing.usage_event import TOKEN_FIELDS, UNATTRIBUTED_CUSTOMER

__all__ = [
    "add_cells",
    "add_days",
    "rebuild_days",
    "rebuild_rollups",
    "refresh_rollups",
    "update_rollups",
    "write_cells",
    "write_days",
]

_events = EventRecord.__table__.c
_rollups = UsageRollup.__table__
_daily = UsageRollupDaily.__table__
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_CHUNK = 500
#: What a cell needs from an event.
_EVENT_COLUMNS = (
    _events.sequence,
    _events.customer_id,
    _events.occurred_at,
    *(_events[d] for d in ROLLUP_DIMENSIONS),
    *(_events[t] for t in TOKEN_FIELDS),
    _events.upstream_cost,
)


def update_rollups(
    connection: Connection,
    inserted_rows: Sequence[Mapping[str, Any]],
    merged_sequences: Sequence[int] = (),
) -> None:
    """Bring the rollups up to date with one ingest batch (in its transaction, under its lock).

    ``inserted_rows`` are the rows just inserted (``usage_events`` columns, ``sequence`` included),
    folded as they are rather than read back.
    """
    if inserted_rows:
        add_cells(connection, fold_batch(inserted_rows))
    if merged_sequences:
        _recompute_merged(connection, merged_sequences)


def add_cells(connection: Connection, cells: Mapping[KeyValues, Sequence[Any]]) -> None:
    """Add ``cells`` (from :func:`~spanledger.billing.rollups.cells.fold_batch`) to the stored hourly
    rollups and their sums by day to the daily rollups: one read of the touched cells' ids, one
    executemany ``UPDATE`` that adds in SQL (sums, counts, minimum, maximum), one ``INSERT`` of the new
    cells (per 500 customers or hours)."""
    if not cells:
        return
    _add_deltas(connection, _HOURLY, cells)
    add_days(connection, fold_batch_days(cells))


def _cell_delta(row_id: int, measures: CellMeasures) -> dict[str, Any]:
    """The :data:`_ADD_CELL_DELTA` parameters adding ``measures`` to the stored cell ``row_id``."""
    return dict(zip(_HOURLY.delta_names, (row_id, *measures.values()), strict=True))


def _add_cell_delta() -> Any:
    """``UPDATE`` adding a cell delta in SQL (no read of the stored measures): sums and counts add, the
    minimum and maximum take the smaller and larger value; a field with nothing counted in the delta
    keeps its stored values (a sum stays NULL while nothing is counted, like SQL's ``SUM``; the delta's
    own sum, NULL then, is not read).

    Each delta value appears as few times as the logic allows, and the zeros are literals: every
    placeholder is bound (and an exact decimal converted) once per row by the driver. ``x <= NULL``
    is NULL, so ``CASE WHEN nothing added OR new >= stored THEN stored ELSE new END`` takes the new
    minimum when the stored one is NULL."""
    c = _rollups.c
    later = bindparam("d_max_sequence", type_=BigInteger())
    values: dict[str, Any] = {
        "event_count": c.event_count + bindparam("d_event_count", type_=BigInteger()),
        "unknown_cost_events": c.unknown_cost_events + bindparam("d_unknown", type_=BigInteger()),
        "max_sequence": case((later <= c.max_sequence, c.max_sequence), else_=later),
    }
    for name in ROLLUP_MEASURED_FIELDS:
        total, count, low, high = (c[f"{name}_{part}"] for part in SUMMARY_PARTS)
        added = bindparam(f"d_{name}_count", type_=BigInteger())
        new_low = bindparam(f"d_{name}_min", type_=low.type)
        new_high = bindparam(f"d_{name}_max", type_=high.type)
        values[f"{name}_sum"] = case(
            (added == _ZERO, total),
            else_=func.coalesce(total, _ZERO) + bindparam(f"d_{name}_sum", type_=total.type),
        )
        values[f"{name}_count"] = count + added
        values[f"{name}_min"] = case((or_(added == _ZERO, new_low >= low), low), else_=new_low)
        values[f"{name}_max"] = case((or_(added == _ZERO, new_high <= high), high), else_=new_high)
    return update(_rollups).where(c.id == bindparam("row_id")).values(values)


#: A zero written into the SQL, not bound per row (on SQLite an exact decimal's zero is the integer 0).
_ZERO = literal_column("0")


def add_days(connection: Connection, days: Mapping[KeyValues, Sequence[Any]]) -> None:
    """Add ``days`` (day deltas from :func:`~spanledger.billing.rollups.days.fold_batch_days`) to the
    stored daily rollups: one read of the touched day cells' ids, one executemany ``UPDATE`` that adds
    in SQL, one ``INSERT`` (per 500 customers or days)."""
    if not days:
        return
    _add_deltas(connection, _DAILY, days)


def _add_day_delta() -> Any:
    """``UPDATE`` adding a day delta in SQL (no read of the stored measures). A sum stays NULL while
    no value is counted, like SQL's ``SUM`` over the hourly cells (the delta's own sum, NULL then, is
    not read); SET reads the values before the update on both databases."""
    values: dict[str, Any] = {
        "event_count": _daily.c.event_count + bindparam("d_event_count", type_=BigInteger()),
        "unknown_cost_events": _daily.c.unknown_cost_events + bindparam("d_unknown", type_=BigInteger()),
    }
    for name in ROLLUP_MEASURED_FIELDS:
        total, count = _daily.c[f"{name}_sum"], _daily.c[f"{name}_count"]
        added = bindparam(f"d_{name}_count", type_=BigInteger())
        values[f"{name}_sum"] = case(
            (added == _ZERO, total),
            else_=func.coalesce(total, _ZERO) + bindparam(f"d_{name}_sum", type_=total.type),
        )
        values[f"{name}_count"] = count + added
    return update(_daily).where(_daily.c.id == bindparam("row_id")).values(values)


@dataclass(frozen=True, slots=True)
class _Rollup:
    """One rollup table as the delta maintenance sees it: its cells are keyed by customer, a period
    (``hour`` or ``day``) and the dimensions (the key values of a plain-data cell); deltas (measures
    in ``measure_columns`` order) are added in SQL by ``add_delta``, new cells inserted; ``select_ids``
    finds the stored ones."""

    table: Table
    period: str
    measure_columns: tuple[str, ...]
    add_delta: Any
    select_ids: Any

    @property
    def key_names(self) -> tuple[str, ...]:
        return ("customer_id", self.period, *ROLLUP_DIMENSIONS)

    @property
    def delta_names(self) -> tuple[str, ...]:
        """``add_delta``'s parameters: the row id, then the delta of each measure column."""
        names = {"event_count": "d_event_count", "unknown_cost_events": "d_unknown"}
        return ("row_id", *(names.get(column, f"d_{column}") for column in self.measure_columns))


def _select_ids(table: Table, period: str) -> Any:
    """``SELECT`` of the id and key of the cells of some customers (``customers``) in some periods
    (``periods``): expanding parameters, so it is built once and compiled once per dialect (SQLAlchemy
    caches it), not per batch. The period comes back as the driver gives it (see :func:`_stored_ids`)."""
    c = table.c
    return select(
        c.id, c.customer_id, type_coerce(c[period], NullType()), *(c[d] for d in ROLLUP_DIMENSIONS)
    ).where(
        c.customer_id.in_(bindparam("customers", expanding=True)),
        c[period].in_(bindparam("periods", expanding=True)),
    )


_HOURLY = _Rollup(_rollups, "hour", MEASURE_COLUMNS, _add_cell_delta(), _select_ids(_rollups, "hour"))
_DAILY = _Rollup(_daily, "day", DAY_MEASURE_COLUMNS, _add_day_delta(), _select_ids(_daily, "day"))
_ADD_CELL_DELTA = _HOURLY.add_delta


def _add_deltas(connection: Connection, rollup: _Rollup, cells: Mapping[KeyValues, Sequence[Any]]) -> None:
    """Add ``cells`` (key values → measures of a batch) to ``rollup``'s table: one read of the touched
    cells' ids, one executemany ``UPDATE`` that adds in SQL, one ``INSERT`` of the new cells (per 500
    customers or periods)."""
    stored = _stored_ids(connection, rollup, {key[:2] for key in cells})
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    delta_names = rollup.delta_names
    columns = (*rollup.key_names, *rollup.measure_columns)
    for key, measures in cells.items():
        row_id = stored.get(key)
        if row_id is None:
            inserts.append(dict(zip(columns, (*key, *measures), strict=True)))
        else:
            updates.append(dict(zip(delta_names, (row_id, *measures), strict=True)))
    if updates:
        executemany(connection, rollup.add_delta, updates)
    _insert_rows(connection, rollup.table, inserts)


def write_days(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert new daily rollup rows (from :func:`~spanledger.billing.rollups.days.day_to_row`)."""
    _insert_rows(connection, _daily, rows)


def write_cells(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert new hourly rollup rows (from :func:`~spanledger.billing.rollups.cells.cell_to_row`);
    the caller keeps the daily rollups in step (:func:`add_days`, or a recompute of the days)."""
    _insert_rows(connection, _rollups, rows)


def _insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        connection.execute(insert(table), rows[start : start + _CHUNK])


def _stored_ids(
    connection: Connection, rollup: _Rollup, customer_periods: set[tuple[int, Any]]
) -> dict[KeyValues, int]:
    """The ids of ``rollup``'s stored cells of ``customer_periods``, by their key values."""
    found: dict[KeyValues, int] = {}
    customers = sorted({customer_id for customer_id, _ in customer_periods})
    periods = sorted({period for _, period in customer_periods})
    # A stored period comes back as the driver's value, not parsed into a datetime per row (on SQLite
    # that parse was most of this read): it is one of the periods asked for, as the column type binds
    # them — the WHERE matched it against exactly that value (PostgreSQL may return a datetime in
    # another time zone: it equals, and hashes like, the UTC one).
    bound = _bind_processor(connection, rollup.table.c[rollup.period])
    period_of = {bound(period): period for period in periods}
    for start in range(0, len(customers), _CHUNK):
        chunk = customers[start : start + _CHUNK]
        for period_start in range(0, len(periods), _CHUNK):
            chosen = {"customers": chunk, "periods": periods[period_start : period_start + _CHUNK]}
            for row_id, customer_id, stored_period, *dimensions in connection.execute(
                rollup.select_ids, chosen
            ).all():
                key = (customer_id, period_of[stored_period], *dimensions)
                if key[:2] in customer_periods:
                    found[key] = row_id
    return found


def _bind_processor(connection: Connection, column: Any) -> Callable[[Any], Any]:
    """How ``column``'s type turns a value into what the driver is given (and stores)."""
    dialect = connection.dialect
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else _same


def _same(value: Any) -> Any:
    return value


def refresh_rollups(connection: Connection, sequences: Sequence[int]) -> None:
    """Recompute the cells of stored events changed in place outside ingest (re-pricing).

    Takes the ingest lock, so no ingest batch adds to a cell while it is recomputed.
    """
    if sequences:
        _lock_ingest(connection)
        _recompute_cells_of(connection, sequences, include_unattributed=False)


def _lock_ingest(connection: Connection) -> None:
    connection.execute(
        update(IngestState)
        .where(IngestState.id == INGEST_STATE_ID)
        .values(ingested_events=IngestState.ingested_events)
    )


def _recompute_merged(connection: Connection, merged_sequences: Sequence[int]) -> None:
    _recompute_cells_of(connection, merged_sequences, include_unattributed=True)


def _recompute_cells_of(
    connection: Connection, sequences: Sequence[int], *, include_unattributed: bool
) -> None:
    unattributed = None
    if include_unattributed:
        unattributed = connection.scalar(
            select(Customer.id).where(Customer.external_id == UNATTRIBUTED_CUSTOMER)
        )
    customer_hours: set[tuple[int, datetime]] = set()
    ordered = sorted(set(sequences))
    for start in range(0, len(ordered), _CHUNK):
        rows = connection.execute(
            select(_events.customer_id, _events.occurred_at).where(
                _events.sequence.in_(ordered[start : start + _CHUNK])
            )
        )
        for customer_id, occurred_at in rows:
            hour = hour_of(occurred_at)
            customer_hours.add((customer_id, hour))
            if unattributed is not None and customer_id != unattributed:
                # A merge may have attributed an event of the unattributed bucket to this customer.
                customer_hours.add((unattributed, hour))
    for customer_id, hour in sorted(customer_hours):
        _recompute_cell_hour(connection, customer_id, hour)
    _recompute_days(connection, {(customer_id, hour.date()) for customer_id, hour in customer_hours})


def _recompute_days(connection: Connection, customer_days: set[tuple[int, date]]) -> None:
    """Replace the daily cells of ``customer_days`` with the sums of their (already exact) hourly cells."""
    by_day: dict[date, list[int]] = {}
    for customer_id, day in customer_days:
        by_day.setdefault(day, []).append(customer_id)
    for day, day_customers in sorted(by_day.items()):
        start_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC)
        ordered = sorted(day_customers)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            connection.execute(delete(_daily).where(_daily.c.day == day, _daily.c.customer_id.in_(chunk)))
            rows = connection.execute(
                select(_rollups).where(
                    _rollups.c.customer_id.in_(chunk),
                    _rollups.c.hour >= start_of_day,
                    _rollups.c.hour < start_of_day + _DAY,
                )
            ).mappings()
            days = fold_cells(cell_from_row(row) for row in rows)
            write_days(connection, [day_to_row(k, m) for k, m in days.items()])


def _recompute_cell_hour(connection: Connection, customer_id: int, hour: datetime) -> None:
    connection.execute(delete(_rollups).where(_rollups.c.customer_id == customer_id, _rollups.c.hour == hour))
    rows = connection.execute(
        select(*_EVENT_COLUMNS).where(
            _events.customer_id == customer_id,
            _events.occurred_at >= hour,
            _events.occurred_at < hour + _HOUR,
        )
    ).mappings()
    write_cells(connection, [cell_to_row(k, m) for k, m in fold_events(rows).items()])


def rebuild_rollups(
    connection: Connection, customer_ids: Iterable[int] | None = None, *, days: bool = True
) -> int:
    """Recompute the hourly and daily rollups of ``customer_ids`` (default: every customer) from the
    events.

    Takes the ingest lock first, so no batch is ingested half-way through. Returns the number of
    hourly rollup rows written. ``days=False`` leaves the daily rollups alone (migration 0901 runs
    this before the daily table exists; 0905 then fills it with :func:`rebuild_days`).
    Memory grows with the number of cells, not of events.
    """
    _lock_ingest(connection)
    wanted = None if customer_ids is None else sorted(set(customer_ids))
    clear = delete(_rollups)
    clear_days = delete(_daily)
    events = select(*_EVENT_COLUMNS)
    if wanted is not None:
        clear = clear.where(_rollups.c.customer_id.in_(wanted))
        clear_days = clear_days.where(_daily.c.customer_id.in_(wanted))
        events = events.where(_events.customer_id.in_(wanted))
    connection.execute(clear)
    if days:
        connection.execute(clear_days)
    cells: dict[CellKey, CellMeasures] = {}
    for partition in connection.execute(events.execution_options(yield_per=10_000)).mappings().partitions():
        fold_events(partition, into=cells)
    rows = [cell_to_row(key, measures) for key, measures in cells.items()]
    write_cells(connection, rows)
    if days:
        write_days(connection, [day_to_row(k, m) for k, m in fold_cells(cells.items()).items()])
    return len(rows)


def rebuild_days(connection: Connection) -> int:
    """Recompute every daily rollup from the hourly rollups (not the events); returns the rows written.

    Takes the ingest lock first. Memory grows with the number of day cells.
    """
    _lock_ingest(connection)
    connection.execute(delete(_daily))
    days: dict[DayKey, DayMeasures] = {}
    rows = connection.execute(select(_rollups).execution_options(yield_per=10_000)).mappings()
    for partition in rows.partitions():
        fold_cells((cell_from_row(row) for row in partition), into=days)
    write_days(connection, [day_to_row(k, m) for k, m in days.items()])
    return len(days)
