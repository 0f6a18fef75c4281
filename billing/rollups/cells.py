"""The pure core of rollups: fold usage events into hourly cells, and combine cells.

A *cell* is every event of one customer in one UTC hour that shares the rollup dimensions (event
name, provider, operation, request model, response model). Its :class:`CellMeasures` keep, per
numeric field, the sum, the number of non-NULL values, the minimum and the maximum — exactly the
partial states from which SQL's ``count``, ``sum``, ``max``, ``min`` and ``avg`` over the same
events are recovered. Sums of cells are sums of events, so adding a batch of new events to a cell
is :meth:`CellMeasures.merge`; nothing here is ever subtracted (see :mod:`.maintenance` for why).

Plain data in, plain data out: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from spanledger.billing.models import ROLLUP_DIMENSIONS, ROLLUP_MEASURED_FIELDS

__all__ = [
    "CellKey",
    "CellMeasures",
    "FieldSummary",
    "cell_from_row",
    "cell_to_row",
    "fold_events",
    "hour_of",
]

Number = int | Decimal


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True, order=True)
class CellKey:
    """Which cell an event belongs to."""

    customer_id: int
    hour: datetime
    event_name: str
    provider: str | None
    operation: str | None
    request_model: str | None
    response_model: str | None

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> CellKey:
        return cls(
            event["customer_id"], hour_of(event["occurred_at"]), *(event[d] for d in ROLLUP_DIMENSIONS)
        )


@dataclass(slots=True)
class FieldSummary:
    """Sum, non-NULL count, minimum and maximum of one numeric field (sum is ``None`` when count is 0,
    like SQL's ``SUM`` over no values)."""

    total: Number | None = None
    count: int = 0
    minimum: Number | None = None
    maximum: Number | None = None

    @classmethod
    def of(cls, values: list[Number]) -> FieldSummary:
        """The summary of ``values`` (none of them ``None``)."""
        if not values:
            return cls()
        total: Number = values[0]
        for value in values[1:]:
            total += value
        return cls(total, len(values), min(values), max(values))

    def merge(self, other: FieldSummary) -> None:
        if not other.count:
            return
        assert other.total is not None and other.minimum is not None and other.maximum is not None
        self.total = other.total if self.total is None else self.total + other.total
        self.count += other.count
        self.minimum = other.minimum if self.minimum is None else min(self.minimum, other.minimum)
        self.maximum = other.maximum if self.maximum is None else max(self.maximum, other.maximum)


def _summaries() -> dict[str, FieldSummary]:
    return {name: FieldSummary() for name in ROLLUP_MEASURED_FIELDS}


@dataclass(slots=True)
class CellMeasures:
    """What a cell knows about its events."""

    event_count: int = 0
    unknown_cost_events: int = 0
    max_sequence: int = 0
    fields: dict[str, FieldSummary] = field(default_factory=_summaries)

    def add_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Add the events of this cell (one pass per field, with builtins: ingest folds whole batches)."""
        if not events:
            return
        self.event_count += len(events)
        self.max_sequence = max(self.max_sequence, max(event["sequence"] for event in events))
        self.unknown_cost_events += sum(1 for event in events if event["upstream_cost"] is None)
        for name, summary in self.fields.items():
            summary.merge(FieldSummary.of(_field_values(events, name)))

    def merge(self, other: CellMeasures) -> None:
        self.event_count += other.event_count
        self.unknown_cost_events += other.unknown_cost_events
        self.max_sequence = max(self.max_sequence, other.max_sequence)
        for name, summary in self.fields.items():
            summary.merge(other.fields[name])


def _field_values(events: Sequence[Mapping[str, Any]], name: str) -> list[Number]:
    """The non-NULL values of field ``name`` over ``events``."""
    if name != "total_tokens":
        return [value for value in (event[name] for event in events) if value is not None]
    # The same derivation as the meter field: NULL only when both input and output are unknown.
    totals: list[Number] = []
    for event in events:
        input_tokens, output_tokens = event["input_tokens"], event["output_tokens"]
        if input_tokens is not None or output_tokens is not None:
            totals.append(int(input_tokens or 0) + int(output_tokens or 0))
    return totals


def fold_events(
    events: Iterable[Mapping[str, Any]], into: dict[CellKey, CellMeasures] | None = None
) -> dict[CellKey, CellMeasures]:
    """Add ``events`` (mappings with the usage event columns and ``sequence``) to cells."""
    cells = {} if into is None else into
    # Grouped by a plain tuple first: one CellKey per cell, not per event.
    by_cell: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for event in events:
        key = (event["customer_id"], hour_of(event["occurred_at"]), *_dimension_values(event))
        members = by_cell.get(key)
        if members is None:
            by_cell[key] = [event]
        else:
            members.append(event)
    for values, members in by_cell.items():
        cell = CellKey(*values)
        measures = cells.get(cell)
        if measures is None:
            measures = cells[cell] = CellMeasures()
        measures.add_events(members)
    return cells


_dimension_values = itemgetter(*ROLLUP_DIMENSIONS)


def cell_to_row(key: CellKey, measures: CellMeasures) -> dict[str, Any]:
    """The ``usage_rollups`` column values of a cell."""
    row: dict[str, Any] = {
        "customer_id": key.customer_id,
        "hour": key.hour,
        **{d: getattr(key, d) for d in ROLLUP_DIMENSIONS},
        "event_count": measures.event_count,
        "unknown_cost_events": measures.unknown_cost_events,
        "max_sequence": measures.max_sequence,
    }
    for name, summary in measures.fields.items():
        row[f"{name}_sum"] = summary.total
        row[f"{name}_count"] = summary.count
        row[f"{name}_min"] = summary.minimum
        row[f"{name}_max"] = summary.maximum
    return row


def cell_from_row(row: Mapping[str, Any]) -> tuple[CellKey, CellMeasures]:
    """Read back a ``usage_rollups`` row (the inverse of :func:`cell_to_row`)."""
    key = CellKey(row["customer_id"], row["hour"], *(row[d] for d in ROLLUP_DIMENSIONS))
    fields = {
        name: FieldSummary(
            _number(row[f"{name}_sum"]),
            int(row[f"{name}_count"]),
            _number(row[f"{name}_min"]),
            _number(row[f"{name}_max"]),
        )
        for name in ROLLUP_MEASURED_FIELDS
    }
    measures = CellMeasures(
        int(row["event_count"]), int(row["unknown_cost_events"]), int(row["max_sequence"]), fields
    )
    return key, measures


def _number(value: Any) -> Number | None:
    if value is None or isinstance(value, int | Decimal):
        return value
    raise TypeError(f"a rollup measure must be an int or a Decimal, not {type(value).__name__}")
