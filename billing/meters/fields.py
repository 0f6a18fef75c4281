"""The event fields a meter can filter on, aggregate or group by, and their SQL expressions.

A field is either a column of the usage event (``provider``, ``input_tokens``, ``upstream_cost``…),
a derived field (``model`` = response model, else request model; ``total_tokens`` = input +
output, NULL when both are unknown; ``customer`` = the external customer id), or a metadata key
written ``metadata.<key>`` (for example ``metadata.service.name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, null
from sqlalchemy.sql.elements import KeyedColumnElement

from spanledger.billing.errors import InvalidMeterError
from spanledger.billing.models import Customer, EventRecord

__all__ = ["FIELD_KINDS", "FieldKind", "MeterField", "resolve_field"]

METADATA_PREFIX = "metadata."


class FieldKind(Enum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    METADATA = "metadata"


_events = EventRecord.__table__.c

FIELD_KINDS: dict[str, FieldKind] = {
    "event_name": FieldKind.TEXT,
    "customer": FieldKind.TEXT,
    "provider": FieldKind.TEXT,
    "operation": FieldKind.TEXT,
    "model": FieldKind.TEXT,
    "request_model": FieldKind.TEXT,
    "response_model": FieldKind.TEXT,
    "response_id": FieldKind.TEXT,
    "trace_id": FieldKind.TEXT,
    "input_tokens": FieldKind.INTEGER,
    "cache_read_input_tokens": FieldKind.INTEGER,
    "cache_write_input_tokens": FieldKind.INTEGER,
    "output_tokens": FieldKind.INTEGER,
    "reasoning_tokens": FieldKind.INTEGER,
    "total_tokens": FieldKind.INTEGER,
    "upstream_cost": FieldKind.DECIMAL,
}


@dataclass(frozen=True, slots=True)
class MeterField:
    """A resolved field: its name, kind and how to read it in SQL."""

    name: str
    kind: FieldKind

    @property
    def is_numeric(self) -> bool:
        return self.kind in (FieldKind.INTEGER, FieldKind.DECIMAL, FieldKind.METADATA)

    @property
    def metadata_key(self) -> str:
        return self.name.removeprefix(METADATA_PREFIX)

    def text_expression(self) -> ColumnElement[Any]:
        """The field as text (for eq/ne/like/in against strings, ``unique`` and grouping)."""
        if self.kind is FieldKind.METADATA:
            return _events.metadata[self.metadata_key].as_string()
        return self.expression()

    def numeric_expression(self) -> ColumnElement[Any]:
        """The field as a number (for sums and numeric comparisons)."""
        if self.kind is FieldKind.METADATA:
            return _events.metadata[self.metadata_key].as_numeric(38, 12)
        return self.expression()

    def expression(self) -> ColumnElement[Any]:
        if self.kind is FieldKind.METADATA:
            return self.text_expression()
        if self.name == "model":
            return func.coalesce(_events.response_model, _events.request_model)
        if self.name == "customer":
            return Customer.__table__.c.external_id
        if self.name == "total_tokens":
            return case(
                (and_(_events.input_tokens.is_(None), _events.output_tokens.is_(None)), null()),
                else_=func.coalesce(_events.input_tokens, 0) + func.coalesce(_events.output_tokens, 0),
            )
        column: KeyedColumnElement[Any] = _events[self.name]
        return column

    def coerce(self, value: Any) -> Any:
        """Convert a filter value to this field's type, or raise :class:`InvalidMeterError`."""
        if self.kind is FieldKind.TEXT:
            if not isinstance(value, str):
                raise InvalidMeterError(f"{self.name} is text; compare it with a string, not {value!r}")
            return value
        if isinstance(value, (bool, float)):
            raise InvalidMeterError(
                f"{self.name}: give numbers as integers or decimal strings, not {value!r}"
            )
        if self.kind is FieldKind.METADATA:
            return value
        try:
            number = Decimal(value) if isinstance(value, str | int | Decimal) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise InvalidMeterError(f"{self.name} is numeric; {value!r} is not a number")
        if self.kind is FieldKind.INTEGER:
            if number != number.to_integral_value():
                raise InvalidMeterError(f"{self.name} counts whole tokens; {value!r} is not a whole number")
            return int(number)
        return number


def resolve_field(name: str) -> MeterField:
    """The field called ``name``; raises :class:`InvalidMeterError` naming the valid choices."""
    if not isinstance(name, str):
        raise InvalidMeterError(f"a field name must be a string, not {name!r}")
    if name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX):
        return MeterField(name, FieldKind.METADATA)
    kind = FIELD_KINDS.get(name)
    if kind is None:
        choices = ", ".join(sorted(FIELD_KINDS))
        raise InvalidMeterError(f"unknown field {name!r}; use one of {choices}, or metadata.<key>")
    return MeterField(name, kind)
