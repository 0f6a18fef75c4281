"""The pure core of daily rollups: hourly cells summed by UTC day.

A *day cell* is every hourly cell (:mod:`.cells`) of one customer on one UTC day with the same
dimensions. It keeps only sums and counts (no minimum or maximum), so a day cell is always the sum of
its hourly cells and a batch of new events is applied by adding its day deltas
(:meth:`DayMeasures.merge`). Whatever cannot be added (a merge that moves an event, re-pricing) is
recomputed from the hourly cells of the day by :mod:`.maintenance`.

:func:`fold_batch_days` sums the plain-data cells of :func:`~.cells.fold_batch` by day (measures in
:data:`DAY_MEASURE_COLUMNS` order), the form ingest writes; :func:`fold_cells` does the same for
:class:`~.cells.CellKey` and :class:`~.cells.CellMeasures` objects.

Plain data in, plain data out: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from spanledger.billing.models import ROLLUP_DIMENSIONS, ROLLUP_MEASURED_FIELDS
from spanledger.billing.rollups.cells import CellKey, CellMeasures, KeyValues

__all__ = [
    "DAY_MEASURE_COLUMNS",
    "DayKey",
    "DayMeasures",
    "day_from_row",
    "day_to_row",
    "fold_batch_days",
    "fold_cells",
]

Number = int | Decimal
#: The ``usage_rollups_daily`` measure columns, in the order of a day's measures from
#: :func:`fold_batch_days`.
DAY_MEASURE_COLUMNS: tuple[str, ...] = (
    "event_count",
    "unknown_cost_events",
    *(f"{name}_{part}" for name in ROLLUP_MEASURED_FIELDS for part in ("sum", "count")),
)
#: Where each (sum, count) of an hourly cell's measures (``MEASURE_COLUMNS`` order) goes in a day's.
_SUM_COUNT_PAIRS = tuple((3 + 4 * index, 2 + 2 * index) for index in range(len(ROLLUP_MEASURED_FIELDS)))


@dataclass(frozen=True, slots=True, order=True)
class DayKey:
    """Which day cell an hourly cell belongs to."""

    customer_id: int
    day: date
    event_name: str
    provider: str | None
    operation: str | None
    request_model: str | None
    response_model: str | None

    @classmethod
    def of(cls, cell: CellKey) -> DayKey:
        # CellKey.hour is a UTC hour start, so its date is the UTC day.
        return cls(cell.customer_id, cell.hour.date(), *(getattr(cell, d) for d in ROLLUP_DIMENSIONS))


def _zero_sums() -> dict[str, Number | None]:
    return dict.fromkeys(ROLLUP_MEASURED_FIELDS)


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(ROLLUP_MEASURED_FIELDS, 0)


@dataclass(slots=True)
class DayMeasures:
    """What a day cell knows: event counts, and per measured field the sum (``None`` while no value
    was counted, like SQL's ``SUM``) and the number of non-NULL values."""

    event_count: int = 0
    unknown_cost_events: int = 0
    sums: dict[str, Number | None] = field(default_factory=_zero_sums)
    counts: dict[str, int] = field(default_factory=_zero_counts)

    def add_cell(self, cell: CellMeasures) -> None:
        self.event_count += cell.event_count
        self.unknown_cost_events += cell.unknown_cost_events
        for name, summary in cell.fields.items():
            self._add(name, summary.total, summary.count)

    def merge(self, other: DayMeasures) -> None:
        self.event_count += other.event_count
        self.unknown_cost_events += other.unknown_cost_events
        for name in ROLLUP_MEASURED_FIELDS:
            self._add(name, other.sums[name], other.counts[name])

    def _add(self, name: str, total: Number | None, count: int) -> None:
        if not count:
            return
        assert total is not None
        current = self.sums[name]
        self.sums[name] = total if current is None else current + total
        self.counts[name] += count


def fold_cells(
    cells: Iterable[tuple[CellKey, CellMeasures]], into: dict[DayKey, DayMeasures] | None = None
) -> dict[DayKey, DayMeasures]:
    """Add hourly ``cells`` (key, measures pairs) to day cells."""
    days = {} if into is None else into
    for key, measures in cells:
        day = DayKey.of(key)
        total = days.get(day)
        if total is None:
            total = days[day] = DayMeasures()
        total.add_cell(measures)
    return days


def fold_batch_days(cells: Mapping[KeyValues, Sequence[Any]]) -> dict[KeyValues, list[Any]]:
    """The cells of :func:`~.cells.fold_batch` summed by day: day key values (customer id, UTC day,
    *dimensions) → measures in :data:`DAY_MEASURE_COLUMNS` order."""
    days: dict[KeyValues, list[Any]] = {}
    for (customer_id, hour, *dimensions), measures in cells.items():
        # An hour is a UTC hour start, so its date is the UTC day.
        key = (customer_id, hour.date(), *dimensions)
        total = days.get(key)
        if total is None:
            total = days[key] = [0, 0, *(None, 0) * len(ROLLUP_MEASURED_FIELDS)]
        total[0] += measures[0]
        total[1] += measures[1]
        for source, target in _SUM_COUNT_PAIRS:
            count = measures[source + 1]
            if count:
                current = total[target]
                total[target] = measures[source] if current is None else current + measures[source]
                total[target + 1] += count
    return days


def day_to_row(key: DayKey, measures: DayMeasures) -> dict[str, Any]:
    """The ``usage_rollups_daily`` column values of a day cell."""
    row: dict[str, Any] = {
        "customer_id": key.customer_id,
        "day": key.day,
        **{d: getattr(key, d) for d in ROLLUP_DIMENSIONS},
        "event_count": measures.event_count,
        "unknown_cost_events": measures.unknown_cost_events,
    }
    for name in ROLLUP_MEASURED_FIELDS:
        row[f"{name}_sum"] = measures.sums[name]
        row[f"{name}_count"] = measures.counts[name]
    return row


def day_from_row(row: Mapping[str, Any]) -> tuple[DayKey, DayMeasures]:
    """Read back a ``usage_rollups_daily`` row (the inverse of :func:`day_to_row`)."""
    key = DayKey(row["customer_id"], row["day"], *(row[d] for d in ROLLUP_DIMENSIONS))
    measures = DayMeasures(
        int(row["event_count"]),
        int(row["unknown_cost_events"]),
        {name: _number(row[f"{name}_sum"]) for name in ROLLUP_MEASURED_FIELDS},
        {name: int(row[f"{name}_count"]) for name in ROLLUP_MEASURED_FIELDS},
    )
    return key, measures


def _number(value: Any) -> Number | None:
    if value is None or isinstance(value, int | Decimal):
        return value
    raise TypeError(f"a rollup measure must be an int or a Decimal, not {type(value).__name__}")
