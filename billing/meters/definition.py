"""A meter as plain data: name + event name + filter + aggregation (+ field)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spanledger.billing.errors import InvalidMeterError
from spanledger.billing.meters.aggregations import Aggregation, validate_aggregation
from spanledger.billing.meters.fields import resolve_field
from spanledger.billing.meters.filters import Filter, filter_to_json, parse_filter
from spanledger.billing.usage_event import DEFAULT_EVENT_NAME

__all__ = ["MeterDefinition", "validate_group_by"]

_MAX_NAME_LENGTH = 128


@dataclass(frozen=True, slots=True)
class MeterDefinition:
    """A validated meter. Build it with :meth:`parse` from user input or stored JSON."""

    name: str
    aggregation: Aggregation
    field: str | None = None
    event_name: str = DEFAULT_EVENT_NAME
    filter: Filter | None = None
    description: str | None = None

    @classmethod
    def parse(
        cls,
        name: str,
        aggregation: str,
        field: str | None = None,
        *,
        event_name: str | None = None,
        filter: object = None,
        description: str | None = None,
    ) -> MeterDefinition:
        if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME_LENGTH:
            raise InvalidMeterError(f"a meter name must be 1 to {_MAX_NAME_LENGTH} characters")
        parsed_aggregation, _ = validate_aggregation(aggregation, field)
        return cls(
            name=name.strip(),
            aggregation=parsed_aggregation,
            field=field or None,
            event_name=event_name or DEFAULT_EVENT_NAME,
            filter=parse_filter(filter),
            description=description,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "event_name": self.event_name,
            "aggregation": self.aggregation.value,
            "field": self.field,
            "filter": filter_to_json(self.filter),
        }


def validate_group_by(group_by: str | None) -> str | None:
    """Check a group-by field (``model``, ``provider``, ``metadata.<key>`` …)."""
    if group_by is None:
        return None
    resolve_field(group_by)
    return group_by
