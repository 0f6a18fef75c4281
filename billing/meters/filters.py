"""Meter filters: property clauses combined with and/or, stored as JSON, compiled to SQL.

The JSON grammar (what ``spanledger meters create --filter`` and the catalog accept)::

    filter  := clause | {"and": [filter, ...]} | {"or": [filter, ...]}
    clause  := {"field": FIELD, "op": OP, "value": VALUE}
    OP      := eq | ne | gt | gte | lt | lte | like | in

``like`` takes an SQL pattern (``%`` and ``_``) on text fields; ``in`` takes a list. Numeric
comparisons on metadata keys compare the stored JSON value as a number. ``ne`` does not match an
event where the field is missing (SQL semantics, the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, or_

from spanledger.billing.errors import InvalidMeterError
from spanledger.billing.meters.fields import FieldKind, resolve_field

__all__ = ["OPERATORS", "Clause", "Filter", "Group", "compile_filter", "filter_to_json", "parse_filter"]

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "like", "in")
_ORDERING = ("gt", "gte", "lt", "lte")


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Group:
    combinator: Literal["and", "or"]
    members: tuple[Filter, ...]


Filter = Clause | Group


def parse_filter(data: object, path: str = "filter") -> Filter | None:
    """Validate the JSON form of a filter; ``None``/``{}`` means "every event"."""
    if data is None or data == {}:
        return None
    if not isinstance(data, Mapping):
        raise InvalidMeterError(f"{path} must be an object like {{'field': …, 'op': …, 'value': …}}")
    if set(data) in ({"and"}, {"or"}):
        (combinator,) = data
        members = data[combinator]
        if not isinstance(members, list) or not members:
            raise InvalidMeterError(f"{path}.{combinator} must be a non-empty list of filters")
        parsed = [parse_filter(m, f"{path}.{combinator}[{i}]") for i, m in enumerate(members)]
        return Group(combinator, tuple(p for p in parsed if p is not None))
    if set(data) != {"field", "op", "value"}:
        raise InvalidMeterError(
            f"{path} needs exactly the keys field, op and value (or and/or), got {sorted(data)}"
        )
    field = resolve_field(data["field"])
    op = data["op"]
    if op not in OPERATORS:
        raise InvalidMeterError(f"{path}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    value = data["value"]
    if op == "in":
        if not isinstance(value, list) or not value:
            raise InvalidMeterError(f"{path}: 'in' takes a non-empty list of values")
        value = [field.coerce(v) for v in value]
    elif op == "like":
        if field.kind not in (FieldKind.TEXT, FieldKind.METADATA) or not isinstance(value, str):
            raise InvalidMeterError(f"{path}: 'like' compares a text field with a string pattern")
    elif op in _ORDERING and field.kind is FieldKind.TEXT:
        raise InvalidMeterError(f"{path}: {op} needs a numeric field; {field.name} is text")
    else:
        value = field.coerce(value)
    return Clause(field.name, op, value)


def filter_to_json(filter_: Filter | None) -> dict[str, Any] | None:
    """The JSON form of a parsed filter (what is stored on the meter)."""
    if filter_ is None:
        return None
    if isinstance(filter_, Group):
        return {filter_.combinator: [filter_to_json(m) for m in filter_.members]}
    value = filter_.value
    value = [_json_value(v) for v in value] if isinstance(value, list) else _json_value(value)
    return {"field": filter_.field, "op": filter_.op, "value": value}


def _json_value(value: Any) -> Any:
    return value if isinstance(value, str | int) else str(value)


def compile_filter(filter_: Filter | None) -> ColumnElement[bool] | None:
    """The SQL condition of ``filter_`` over ``usage_events`` joined with ``customers``."""
    if filter_ is None:
        return None
    if isinstance(filter_, Group):
        compiled = [c for c in (compile_filter(m) for m in filter_.members) if c is not None]
        return and_(*compiled) if filter_.combinator == "and" else or_(*compiled)
    field = resolve_field(filter_.field)
    numeric_value = _is_number(filter_.value) or (
        isinstance(filter_.value, list) and all(_is_number(v) for v in filter_.value)
    )
    if field.kind is FieldKind.METADATA and numeric_value:
        expression = field.numeric_expression()
    elif field.kind is FieldKind.METADATA:
        expression = field.text_expression()
    else:
        expression = field.expression()
    value = filter_.value
    match filter_.op:
        case "eq":
            return expression == value
        case "ne":
            return expression != value
        case "gt":
            return expression > value
        case "gte":
            return expression >= value
        case "lt":
            return expression < value
        case "lte":
            return expression <= value
        case "like":
            return expression.like(value)
        case "in":
            return expression.in_(value)
    raise InvalidMeterError(f"unknown operator {filter_.op!r}")  # pragma: no cover - parse_filter checks


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)
