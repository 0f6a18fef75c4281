"""Meter aggregations: each knows its SQL form and its Python meaning, and both agree.

Results are ``Decimal``. ``count`` counts matching events; ``sum`` adds a numeric field (NULLs are
skipped; no events → 0); ``max``/``min`` → ``None`` when no event has the field; ``avg`` is the
exact ``sum / count`` of the non-NULL values, computed in Python from SQL's sum and count (so
SQLite and PostgreSQL agree to the last digit), to :data:`AVERAGE_PLACES` places with banker's
rounding; ``unique`` counts distinct non-NULL values of any field, compared as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, distinct, func

from spanledger.billing.errors import InvalidMeterError
from spanledger.billing.meters.fields import MeterField, resolve_field

__all__ = ["AVERAGE_PLACES", "Aggregation", "aggregate_values", "validate_aggregation"]

AVERAGE_PLACES = 12


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    MIN = "min"
    AVG = "avg"
    UNIQUE = "unique"

    @classmethod
    def parse(cls, value: str) -> Aggregation:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(a.value for a in cls)
            raise InvalidMeterError(f"unknown aggregation {value!r}; use one of {choices}") from None

    def sql_columns(self, field: MeterField | None) -> list[ColumnElement[Any]]:
        """The SQL aggregate(s) whose row values :meth:`finish` turns into the result."""
        if self is Aggregation.COUNT:
            return [func.count()]
        assert field is not None
        if self is Aggregation.UNIQUE:
            return [func.count(distinct(field.text_expression()))]
        numeric = field.numeric_expression()
        if self is Aggregation.SUM:
            return [func.sum(numeric)]
        if self is Aggregation.MAX:
            return [func.max(numeric)]
        if self is Aggregation.MIN:
            return [func.min(numeric)]
        return [func.sum(numeric), func.count(numeric)]

    def finish(self, values: tuple[Any, ...]) -> Decimal | None:
        """The result from the values of :meth:`sql_columns` for one group."""
        if self is Aggregation.AVG:
            total, count = values
            return None if total is None else _average(_to_decimal(total), int(count or 0))
        (value,) = values
        if value is None:
            return Decimal(0) if self in (Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE) else None
        return _to_decimal(value)


def validate_aggregation(aggregation: str, field: str | None) -> tuple[Aggregation, MeterField | None]:
    """Check that ``aggregation`` can be computed over ``field``."""
    parsed = Aggregation.parse(aggregation)
    if parsed is Aggregation.COUNT:
        if field:
            raise InvalidMeterError("count counts events and takes no field; use unique to count values")
        return parsed, None
    if not field:
        raise InvalidMeterError(f"{parsed.value} needs a field (for example --field input_tokens)")
    resolved = resolve_field(field)
    if parsed is not Aggregation.UNIQUE and not resolved.is_numeric:
        raise InvalidMeterError(
            f"{parsed.value} needs a numeric field; {field} is text (unique works on text)"
        )
    return parsed, resolved


def aggregate_values(aggregation: Aggregation, values: Iterable[Any]) -> Decimal | None:
    """The Python meaning of ``aggregation`` over the field values of the matching events."""
    items = list(values)
    if aggregation is Aggregation.COUNT:
        return Decimal(len(items))
    present = [v for v in items if v is not None]
    if aggregation is Aggregation.UNIQUE:
        return Decimal(len({str(v) for v in present}))
    numbers = [_to_decimal(v) for v in present]
    if aggregation is Aggregation.SUM:
        return sum(numbers, Decimal(0))
    if not numbers:
        return None
    if aggregation is Aggregation.MAX:
        return max(numbers)
    if aggregation is Aggregation.MIN:
        return min(numbers)
    return _average(sum(numbers, Decimal(0)), len(numbers))


def _average(total: Decimal | None, count: int) -> Decimal | None:
    if not count or total is None:
        return None
    return _canonical((total / count).quantize(Decimal(1).scaleb(-AVERAGE_PLACES), rounding=ROUND_HALF_EVEN))


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return _canonical(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Only metadata numbers stored as JSON floats reach here; repr keeps their shortest form.
        return _canonical(Decimal(repr(value)))
    return _canonical(Decimal(str(value)))


def _canonical(value: Decimal) -> Decimal:
    """One spelling per number, so both databases print the same digits (``1.5``, ``100``)."""
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()
