"""The pure core of rollups: fold usage events into hourly cells, and combine cells.

A *cell* is every event of one customer in one UTC hour that shares the rollup dimensions (event
name, provider, operation, request model, response model). Its :class:`CellMeasures` keep, per
numeric field, the sum, the number of non-NULL values, the minimum and the maximum — exactly the
partial states from which SQL's ``count``, ``sum``, ``max``, ``min`` and ``avg`` over the same
events are recovered. Sums of cells are sums of events, so adding a batch of new events to a cell
is :meth:`CellMeasures.merge`; nothing here is ever subtracted (see :mod:`.maintenance` for why).

:func:`fold_batch` is the one fold. It gives each cell as plain tuples — the key values (customer id,
hour, dimensions) and the measures in :data:`MEASURE_COLUMNS` order — the form ingest writes: every
ingest batch pays for the fold, so it groups events once and then summarises each cell column by
column with builtins, instead of per event and field. :func:`fold_events` gives the same cells as
:class:`CellKey` and :class:`CellMeasures` objects, for rebuilds and tests.

Plain data in, plain data out: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial, reduce
from operator import add, is_not, itemgetter
from typing import Any

from spanledger.billing.models import ROLLUP_DIMENSIONS, ROLLUP_MEASURED_FIELDS

__all__ = [
    "MEASURE_COLUMNS",
    "SUMMARY_PARTS",
    "CellKey",
    "CellMeasures",
    "FieldSummary",
    "cell_from_row",
    "cell_to_row",
    "fold_batch",
    "fold_events",
    "hour_of",
]

Number = int | Decimal
#: The parts of one measured field, in the order of its ``usage_rollups`` columns.
SUMMARY_PARTS = ("sum", "count", "min", "max")
#: The ``usage_rollups`` measure columns, in the order of a cell's measures from :func:`fold_batch`.
MEASURE_COLUMNS: tuple[str, ...] = (
    "event_count",
    "unknown_cost_events",
    "max_sequence",
    *(f"{name}_{part}" for name in ROLLUP_MEASURED_FIELDS for part in SUMMARY_PARTS),
)


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

    @classmethod
    def of_values(cls, values: Sequence[Any]) -> CellMeasures:
        """The measures given in :data:`MEASURE_COLUMNS` order (a cell of :func:`fold_batch`)."""
        fields = {
            name: FieldSummary(*values[3 + 4 * index : 7 + 4 * index])
            for index, name in enumerate(ROLLUP_MEASURED_FIELDS)
        }
        return cls(values[0], values[1], values[2], fields)

    def values(self) -> tuple[Any, ...]:
        """The measures in :data:`MEASURE_COLUMNS` order."""
        parts: list[Any] = [self.event_count, self.unknown_cost_events, self.max_sequence]
        for summary in self.fields.values():
            parts += (summary.total, summary.count, summary.minimum, summary.maximum)
        return tuple(parts)

    def merge(self, other: CellMeasures) -> None:
        self.event_count += other.event_count
        self.unknown_cost_events += other.unknown_cost_events
        self.max_sequence = max(self.max_sequence, other.max_sequence)
        for name, summary in self.fields.items():
            summary.merge(other.fields[name])


#: Cell key values: (customer id, UTC hour, *dimensions), in :class:`CellKey`'s field order.
KeyValues = tuple[Any, ...]

_customer_and_dimensions = itemgetter("customer_id", *ROLLUP_DIMENSIONS)
#: The event columns a cell's measures come from (``total_tokens`` is derived from two of them).
_SOURCES = ("sequence", *(name for name in ROLLUP_MEASURED_FIELDS if name != "total_tokens"))
_source_values = itemgetter(*_SOURCES)
_INPUT, _OUTPUT = _SOURCES.index("input_tokens"), _SOURCES.index("output_tokens")
#: Per measured field, its column in ``_SOURCES`` (``None``: total tokens, derived).
_FIELD_SOURCES = tuple(
    None if name == "total_tokens" else _SOURCES.index(name) for name in ROLLUP_MEASURED_FIELDS
)


def fold_batch(events: Iterable[Mapping[str, Any]]) -> dict[KeyValues, tuple[Any, ...]]:
    """The cells of ``events`` (mappings with the usage event columns and ``sequence``) as plain data:
    key values → measures in :data:`MEASURE_COLUMNS` order."""
    members_of: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for event in events:
        moment = event["occurred_at"]
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        # The hour as plain fields: a datetime per cell below, not a replace() per event.
        key = (_customer_and_dimensions(event), moment.year, moment.month, moment.day, moment.hour)
        members = members_of.get(key)
        if members is None:
            members_of[key] = [event]
        else:
            members.append(event)
    cells: dict[KeyValues, tuple[Any, ...]] = {}
    for (values, year, month, day, hour), members in members_of.items():
        start = datetime(year, month, day, hour, tzinfo=UTC)
        cells[(values[0], start, *values[1:])] = _measures(members)
    return cells


def _measures(members: list[Mapping[str, Any]]) -> tuple[Any, ...]:
    """The measures of one cell's events, one column at a time."""
    columns = list(zip(*map(_source_values, members), strict=True))
    measures: list[Any] = [len(members), 0, max(columns[0])]
    for source in _FIELD_SOURCES:
        if source is not None:
            measures += _summary(columns[source])
            continue
        # The same derivation as the meter field: NULL only when both input and output are unknown.
        inputs, outputs = columns[_INPUT], columns[_OUTPUT]
        if None in inputs or None in outputs:
            totals = [
                int(input_tokens or 0) + int(output_tokens or 0)
                for input_tokens, output_tokens in zip(inputs, outputs, strict=True)
                if input_tokens is not None or output_tokens is not None
            ]
        else:
            totals = list(map(add, map(int, inputs), map(int, outputs)))
        measures += _summary(totals)
    measures[1] = len(members) - measures[_COST_COUNT]
    return tuple(measures)


#: Whether a value is not NULL, as an identity test (``None in`` compares, and comparing a Decimal
#: with None costs an ABC check per value).
_known = partial(is_not, None)
_COST_COUNT = MEASURE_COLUMNS.index("upstream_cost_count")


def _summary(values: Sequence[Number | None]) -> tuple[Any, Any, Any, Any]:
    """(sum, non-NULL count, minimum, maximum) of ``values`` (sum ``None`` when nothing is counted)."""
    if values and type(values[0]) is int and None not in values:  # tokens: sum() adds ints in C
        return sum(values), len(values), min(values), max(values)
    known = list(filter(_known, values))
    if not known:
        return None, 0, None, None
    # reduce, not sum(): no 0 + first value, so a lone Decimal is kept exactly as it is.
    return reduce(add, known), len(known), min(known), max(known)


def fold_events(
    events: Iterable[Mapping[str, Any]], into: dict[CellKey, CellMeasures] | None = None
) -> dict[CellKey, CellMeasures]:
    """Add ``events`` (mappings with the usage event columns and ``sequence``) to cells."""
    cells = {} if into is None else into
    for values, measures in fold_batch(events).items():
        key = CellKey(*values)
        added = CellMeasures.of_values(measures)
        stored = cells.get(key)
        if stored is None:
            cells[key] = added
        else:
            stored.merge(added)
    return cells


def cell_to_row(key: CellKey, measures: CellMeasures) -> dict[str, Any]:
    """The ``usage_rollups`` column values of a cell."""
    row: dict[str, Any] = {
        "customer_id": key.customer_id,
        "hour": key.hour,
        **{d: getattr(key, d) for d in ROLLUP_DIMENSIONS},
    }
    row.update(zip(MEASURE_COLUMNS, measures.values(), strict=True))
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
