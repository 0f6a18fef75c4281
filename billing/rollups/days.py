"""The pure core of daily rollups: hourly cells summed by UTC day.

A *day cell* is every hourly cell (:mod:`.cells`) of one customer on one UTC day with the same
dimensions. It keeps only sums and counts (no minimum or maximum), so a day cell is always the sum of
its hourly cells and a batch of new events is applied by adding its day deltas
(:meth:`DayMeasures.merge`). Whatever cannot be added (a merge that moves an event, re-pricing) is
recomputed from the hourly cells of the day by :mod:`.maintenance`.

Plain data in, plain data out: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from spanledger.billing.models import ROLLUP_DIMENSIONS, ROLLUP_MEASURED_FIELDS
from spanledger.billing.rollups.cells import CellKey, CellMeasures

__all__ = ["DayKey", "DayMeasures", "day_from_row", "day_to_row", "fold_cells"]

Number = int | Decimal


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
